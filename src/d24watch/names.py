"""How names and words are written in the texts d24watch reads, for the matcher: letters a legacy
encoding lost to `?`, VIQR and Telex typing, sentences, and what a capitalised name looks like
beside its neighbours. Pure."""

from __future__ import annotations

import re
import unicodedata

from d24watch.text import Token, has_marks, tokenize, within_one_edit

DAMAGE = "ʔ"  # stands for a letter lost to "?" by a legacy encoding (a letter, so tokens stay whole)
LOST = re.compile("[?\ufffd]+(?=\\w)")
# VIQR, Vietnamese typed in ASCII (`Nguye^~n`, `Va(n`): its marks become the combining marks they
# stand for, one character for one, so offsets hold and folding removes them. Only sequences with
# ^ ( + or ~ after a vowel and before a letter are taken for VIQR; a lone ' or . is left alone.
_VIQR = re.compile(r"(?<=[aeiouyAEIOUY])([\^(+]?)([~'`?.]?)(?=[A-Za-z])")
_VIQR_MARKS = str.maketrans(
    {
        "^": "\u0302",
        "(": "\u0306",
        "+": "\u031b",
        "~": "\u0303",
        "'": "\u0301",
        "`": "\u0300",
        "?": "\u0309",
        ".": "\u0323",
    }
)
# Telex, Vietnamese typed with its keys left in (`Nguyeenx Vawn Binhf`): each name word's Telex
# spelling is worked out once, so reading it back is one lookup per word of the text.
_TELEX_SHAPES = {"\u0302": {"a": "aa", "e": "ee", "o": "oo"}, "\u0306": {"a": "aw"}, "\u031b": {"o": "ow", "u": "uw"}}
_TELEX_TONES = {"\u0301": "s", "\u0300": "f", "\u0309": "r", "\u0303": "x", "\u0323": "j"}


def viqr_text(text: str) -> str:
    """The text with its VIQR marks as combining marks, when it is VIQR: at least two sequences with
    ^ ( + or ~ (then `Bi`nh` and `cu?a` are read too); any other text unchanged."""
    strong = sum(1 for m in _VIQR.finditer(text) if m.group(1) or m.group(2) == "~")
    if strong < 2:
        return text
    return _VIQR.sub(lambda m: (m.group(1) + m.group(2)).translate(_VIQR_MARKS), text)


def telex(word: str) -> str:
    """How `word` (Vietnamese, with its marks) is typed in Telex, lower-cased: Nguyễn -> nguyeenx."""
    out: list[str] = []
    tone = ""
    for ch in unicodedata.normalize("NFD", word.casefold()):
        if ch in _TELEX_TONES:
            tone = _TELEX_TONES[ch]
        elif ch in _TELEX_SHAPES:
            last = out[-1] if out else ""
            out[-1:] = [_TELEX_SHAPES[ch].get(last, last)]
        elif ch == "đ":
            out.append("dd")
        else:
            out.append(ch)
    return "".join(out) + tone


_SENTENCE_END = re.compile(r"[.!?…]\s|[.!?…][\"'”’)]\s|\n")
HONORIFICS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "sir",
        "madam",
        "ong",
        "ba",
        "anh",
        "chi",
        "em",
        "co",
        "chu",
        "bac",
        "luat",
        "su",
        "nha",
        "bao",
        "blogger",
        "lawyer",
        "activist",
        "tnlt",
    ]
)
_ABBREVIATIONS = HONORIFICS | {"no", "st", "jr", "sr", "gen", "lt", "col", "tp", "tx", "q", "p", "co", "inc", "vs"}


class Sentences:
    """Which sentence each token is in, worked out on first use."""

    def __init__(self, document: str, tokens: list[Token]) -> None:
        self.document = document
        self.tokens = tokens
        self._index: list[int] | None = None

    def of(self, token: int) -> int:
        if self._index is None:
            index, current = [0] * len(self.tokens), 0
            for i in range(1, len(self.tokens)):
                gap = self.document[self.tokens[i - 1].end : self.tokens[i].start] + " "
                if _SENTENCE_END.search(gap) and self.tokens[i - 1].folded not in _ABBREVIATIONS:
                    current += 1
                index[i] = current
            self._index = index
        return self._index[token]


def phrase_of(term: str) -> tuple[str, ...]:
    return tuple(t.folded for t in tokenize(term))


def is_damaged(got: str, want: str) -> bool:
    """Only the damage seen in the wild: a dropped letter, two letters swapped, or letters lost to `?`."""
    if DAMAGE in got:
        return len(got) == len(want) and all(g in (w, DAMAGE) for g, w in zip(got, want, strict=True))
    if len(got) > len(want) or not within_one_edit(got, want):
        return False
    return len(got) != len(want) or sorted(got) == sorted(want)


def starts_a_sentence(document: str, tokens: list[Token], i: int) -> bool:
    before = document[: tokens[i].start].rstrip()
    return not before or before[-1] in ".!?:;\"'“”‘’\n"


def written_as_a_name(document: str, tokens: list[Token], first: int, last: int) -> bool:
    """Every word capitalised, with only spaces between: `Thai Van Duong`, not `Thực, Trần`."""
    if not all(is_capitalised(document, tokens, k) for k in range(first, last + 1)):
        return False
    return all(not document[tokens[k].end : tokens[k + 1].start].strip() for k in range(first, last))


def is_capitalised(document: str, tokens: list[Token], i: int) -> bool:
    return document[tokens[i].start : tokens[i].start + 1].isupper()


def standalone(document: str, tokens: list[Token], first: int, last: int) -> bool:
    """A capitalised span with no capitalised name word right beside it (honorifics aside)."""
    if not written_as_a_name(document, tokens, first, last):
        return False
    return not (
        capitalised_neighbour(document, tokens, first - 1, first)
        or capitalised_neighbour(document, tokens, last, last + 1)
    )


def capitalised_neighbour(document: str, tokens: list[Token], left: int, right: int) -> bool:
    """True when tokens `left` and `right` stand side by side (only spaces between) and the other
    one is a capitalised word that is not an honorific: "Thái Bình", "Bình Dương"."""
    if left < 0 or right >= len(tokens):
        return False
    gap = document[tokens[left].end : tokens[right].start]
    if gap.strip():
        return False
    if not all(document[tokens[k].start : tokens[k].start + 1].isupper() for k in (left, right)):
        return False
    if tokens[left].folded in HONORIFICS:
        return False
    # A capitalised word that opens a sentence ("Later Binh said") is no part of a name, unless it
    # carries Vietnamese marks ("Thái Bình").
    before = document[: tokens[left].start].rstrip()
    opens_sentence = not before or before[-1] in ".!?:;\"'“”‘’\n"
    left_word = document[tokens[left].start : tokens[left].end]
    return not (opens_sentence and not has_marks(left_word))
