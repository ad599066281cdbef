"""Deterministic filler prose, so test articles are distinct texts of realistic length."""

from __future__ import annotations

import random

WORDS = (
    "the a of in on for with from by at about after before during under over between among government "
    "ministry officials report reports said says statement press conference province city district village "
    "farmers workers teachers students company companies market prices rice coffee exports imports trade "
    "bridge road railway port airport flood storm rain season harvest water electricity power plant energy "
    "solar wind coal project projects plan plans budget investment investors bank banks loan loans growth "
    "quarter year month week morning evening night weekend festival tourism visitors hotel hotels museum "
    "school schools hospital hospitals doctors nurses patients health vaccine program programs training "
    "football match team coach players league cup season goal goals stadium fans local national regional "
    "new old large small first second third last next many several some most few more less higher lower "
    "announced approved opened closed increased decreased expected planned completed started continued "
    "discussed reviewed proposed launched built repaired supplied delivered reached visited welcomed"
).split()


def prose(seed: int, words: int = 400) -> list[str]:
    """Paragraphs of pseudo-random sentences, the same for the same seed."""
    rng = random.Random(seed)
    paragraphs, sentence, paragraph = [], [], []
    for _ in range(words):
        sentence.append(rng.choice(WORDS))
        if len(sentence) >= rng.randint(9, 18):
            paragraph.append(" ".join(sentence).capitalize() + ".")
            sentence = []
            if len(paragraph) >= 4:
                paragraphs.append(" ".join(paragraph))
                paragraph = []
    if sentence:
        paragraph.append(" ".join(sentence).capitalize() + ".")
    if paragraph:
        paragraphs.append(" ".join(paragraph))
    return paragraphs
