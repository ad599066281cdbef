"""What would have kept a namesake out: from the snippets of an entity's mentions marked not relevant
and of the others, the capitalised names that stood beside the hit only in the former (a club, a
bank, a province), proposed as `unless` terms for the researcher to copy into the watchlist. Pure;
the watchlist file is never edited from here."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from d24watch.text import folded_key

_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
MAX_RUN = 4  # capitalised words in a row taken as one name
STOP = frozenset(
    folded_key(w)
    for w in [
        "The",
        "A",
        "An",
        "In",
        "On",
        "At",
        "Of",
        "For",
        "And",
        "But",
        "Or",
        "He",
        "She",
        "They",
        "It",
        "This",
        "That",
        "These",
        "Those",
        "His",
        "Her",
        "Their",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
        "Ông",
        "Bà",
        "Theo",
        "Trong",
        "Khi",
        "Sau",
        "Trước",
        "Tại",
        "Với",
        "Của",
        "Và",
        "Là",
        "Các",
        "Những",
        "Một",
        "Người",
        "Ngày",
        "Năm",
        "Tháng",
    ]
)


@dataclass(frozen=True, slots=True)
class Proposal:
    words: tuple[str, ...]  # the names proposed, most telling first
    not_relevant: int  # snippets of mentions marked not relevant that were read
    others: int  # snippets of the other mentions

    def toml(self, current: Iterable[str]) -> str:
        """The `unless = [...]` line with the current terms and the proposed ones."""
        terms = [*current, *(w for w in self.words if w not in set(current))]
        return "unless = [" + ", ".join(_quote(t) for t in terms) + "]"


def _quote(term: str) -> str:
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'


def names_beside(snippet: str, hit: str) -> set[str]:
    """The runs of capitalised words in a snippet (up to MAX_RUN words), other than the hit itself,
    common words, and a lone word that only opens a sentence."""
    own = set(folded_key(hit).split())
    found: set[str] = set()
    run: list[str] = []
    opens = False  # the run's first word opens a sentence
    last_end = 0
    for match in [*_WORD.finditer(snippet), None]:
        word = match.group(0) if match else ""
        gap = snippet[last_end : match.start()] if match else "."
        sentence_start = last_end == 0 or bool(re.search(r"[.!?…:]\s*$", gap))
        if run and gap.strip():  # punctuation between two words ends a name
            if not (opens and len(run) == 1):
                found.add(" ".join(run[:MAX_RUN]))
            run = []
        if match is not None:
            last_end = match.end()
        folded = folded_key(word)
        if word and word[0].isupper() and folded not in own and folded not in STOP:
            if not run:
                opens = sentence_start
            run.append(word)
            continue
        if run and not (opens and len(run) == 1):
            found.add(" ".join(run[:MAX_RUN]))
        run = []
    return {name for name in found if len(name) > 2}


def propose_unless(
    snippets: Iterable[tuple[str | None, str, str]], known: Iterable[str] = (), *, limit: int = 5
) -> Proposal | None:
    """From (verdict, hit text, snippet) of an entity's hits: the names seen beside it in at least
    one mention marked not relevant and in none of the others, by how often. None when nothing was
    marked not relevant."""
    against: Counter[str] = Counter()
    beside_others: set[str] = set()
    bad = good = 0
    for verdict, hit, snippet in snippets:
        names = names_beside(snippet, hit)
        if verdict == "not-relevant":
            bad += 1
            against.update(names)
        else:
            good += 1
            beside_others.update(folded_key(n) for n in names)
    if not bad:
        return None
    already = {folded_key(k) for k in known}
    ranked = [
        name
        for name, _ in sorted(against.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
        if folded_key(name) not in beside_others and folded_key(name) not in already
    ]
    return Proposal(tuple(ranked[:limit]), bad, good)
