"""The watchlist compiled once into a token automaton; an article in, hits out. Pure: no I/O.

Terms, aliases and name-order variants are keys of one Aho-Corasick automaton over the folded
token stream (" tok tok tok "), so a match always starts and ends on token boundaries and the
cost per article does not grow with the watchlist. Fuzzy names and given-name references are
checked only where an exact neighbour anchors them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import ahocorasick

from d24watch.models import EntityMatch, Hit
from d24watch.text import Token, has_marks, snippet, tokenize, tone_key, within_one_edit
from d24watch.watchlist import Entity, Watchlist

TERM, CONTEXT, UNLESS, EXCLUDE = 0, 1, 2, 3
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
    ]
)


@dataclass(frozen=True, slots=True)
class _Fuzzy:
    entity: int
    tokens: tuple[str, ...]
    slot: int  # the one token allowed to differ by one letter


@dataclass(frozen=True, slots=True)
class FieldHit:
    """A hit before it is tied to a field: token span in the combined title+body document."""

    entity: int
    first: int
    last: int
    how: str  # term, alias, order, fuzzy, given


class Matcher:
    """Compiled watchlist. `match(title, text)` returns one EntityMatch per entity found."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self.entities = watchlist.entities
        self._automaton = ahocorasick.Automaton()
        keys: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        self._term_keys: set[tuple[str, ...]] = set()
        for e in self.entities:
            for term in (*e.terms, *e.aliases):
                self._term_keys.add(tuple(t.folded for t in tokenize(term)))
        self._pair: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._skip: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._given: dict[int, tuple[str, str | None]] = {}
        for index, entity in enumerate(self.entities):
            self._compile_entity(index, entity, keys)
        for key, values in keys.items():
            self._automaton.add_word(key, tuple(values))
        if keys:
            self._automaton.make_automaton()
        self._empty = not keys

    def _compile_entity(self, index: int, entity: Entity, keys: dict[str, list[tuple[int, int, int, str]]]) -> None:
        def add(phrase: tuple[str, ...], role: int, how: str) -> None:
            keys[" " + " ".join(phrase) + " "].append((index, role, len(phrase), how))

        names: list[tuple[str, ...]] = []
        for how, group in (("term", entity.terms), ("alias", entity.aliases)):
            for term in group:
                phrase = tuple(t.folded for t in tokenize(term))
                add(phrase, TERM, how)
                names.append(phrase)
        for role, group in ((CONTEXT, entity.context), (UNLESS, entity.unless), (EXCLUDE, entity.exclude)):
            for term in group:
                add(tuple(t.folded for t in tokenize(term)), role, "rule")
        if entity.kind != "person":
            return
        for phrase in names:
            if entity.name_order and 2 <= len(phrase) <= 4:
                reordered = (*phrase[1:], phrase[0])
                # Guard: a reordering that spells another entity's term is that entity's, not ours.
                if reordered not in self._term_keys:
                    add(reordered, TERM, "order")
            if entity.fuzzy and len(phrase) >= 3:
                for slot in range(len(phrase)):
                    if len(phrase[slot]) < 3:
                        continue
                    fuzzy = _Fuzzy(index, phrase, slot)
                    anchor = 0 if slot != 0 else 1
                    if anchor + 1 != slot:
                        self._pair[(phrase[anchor], phrase[anchor + 1])].append(fuzzy)
                    else:
                        self._skip[(phrase[anchor], phrase[anchor + 2])].append(fuzzy)
        if entity.given_name:
            given = entity.given_name
            self._given[index] = (tokenize(given)[0].folded, tone_key(given) if has_marks(given) else None)

    def match(self, title: str, text: str) -> list[EntityMatch]:
        """Every entity the article mentions, with its hits (offsets into `title` or `text`)."""
        if self._empty:
            return []
        document = f"{title}\n{text}" if title else text
        tokens = tokenize(document)
        if not tokens:
            return []
        folded = [t.folded for t in tokens]
        spans = self._exact_spans(folded)
        spans[TERM].extend(self._fuzzy_spans(folded, document, tokens))
        found: list[EntityMatch] = []
        body_offset = len(title) + 1 if title else 0
        for index in sorted({s.entity for s in spans[TERM]}):
            hits = self._entity_hits(index, spans, document, tokens, folded)
            if hits:
                entity = self.entities[index]
                found.append(
                    EntityMatch(
                        entity.id,
                        tuple(_to_hit(entity.id, h, tokens, title, text, body_offset) for h in hits),
                    )
                )
        return found

    def _exact_spans(self, folded: list[str]) -> dict[int, list[FieldHit]]:
        haystack = " " + " ".join(folded) + " "
        space_to_token: dict[int, int] = {}
        position = 0
        for i, word in enumerate(folded):
            space_to_token[position] = i
            position += len(word) + 1
        space_to_token[position] = len(folded)
        spans: dict[int, list[FieldHit]] = {TERM: [], CONTEXT: [], UNLESS: [], EXCLUDE: []}
        for end, values in self._automaton.iter(haystack):
            after = space_to_token[end]
            for entity, role, length, how in values:
                spans[role].append(FieldHit(entity, after - length, after - 1, how))
        return spans

    def _fuzzy_spans(self, folded: list[str], document: str, tokens: list[Token]) -> list[FieldHit]:
        if not self._pair and not self._skip:
            return []
        out: list[FieldHit] = []
        n = len(folded)
        for i in range(n - 1):
            candidates = self._pair.get((folded[i], folded[i + 1]), [])
            if i + 2 < n:
                candidates = candidates + self._skip.get((folded[i], folded[i + 2]), [])
            for fz in candidates:
                anchor = 0 if fz.slot != 0 else 1
                first = i - anchor
                last = first + len(fz.tokens) - 1
                if first < 0 or last >= n:
                    continue
                window = folded[first : last + 1]
                if not all(window[k] == fz.tokens[k] for k in range(len(window)) if k != fz.slot):
                    continue
                got, want = window[fz.slot], fz.tokens[fz.slot]
                # Only the damage seen in the wild: a dropped letter, or two letters swapped.
                if len(got) > len(want) or not within_one_edit(got, want):
                    continue
                if len(got) == len(want) and sorted(got) != sorted(want):
                    continue
                if tuple(window) in self._term_keys:
                    continue
                out.append(FieldHit(fz.entity, first, last, "fuzzy"))
        return out

    def _entity_hits(
        self,
        index: int,
        spans: dict[int, list[FieldHit]],
        document: str,
        tokens: list[Token],
        folded: list[str],
    ) -> list[FieldHit]:
        entity = self.entities[index]
        if entity.unless and any(s.entity == index for s in spans[UNLESS]):
            return []
        if entity.context and not any(s.entity == index for s in spans[CONTEXT]):
            return []
        excluded = [s for s in spans[EXCLUDE] if s.entity == index]
        hits = [
            h
            for h in spans[TERM]
            if h.entity == index and not any(x.first <= h.first and h.last <= x.last for x in excluded)
        ]
        hits = _longest_first(hits)
        if not hits:
            return []
        if index in self._given:
            taken = [(s.first, s.last) for s in spans[TERM]]
            hits.extend(self._given_hits(index, hits[0].first, taken, document, tokens, folded))
            hits.sort(key=lambda h: h.first)
        return hits

    def _given_hits(
        self,
        index: int,
        after: int,
        taken: list[tuple[int, int]],
        document: str,
        tokens: list[Token],
        folded: list[str],
    ) -> list[FieldHit]:
        word, tone = self._given[index]
        out = []
        for i in range(after + 1, len(folded)):
            if folded[i] != word or any(a <= i <= b for a, b in taken):
                continue
            original = document[tokens[i].start : tokens[i].end]
            if not original[:1].isupper():
                continue
            # Bình is not Bính, Bách is not Bạch: when the text carries marks, they must agree.
            if tone is not None and has_marks(original) and tone_key(original) != tone:
                continue
            if _capitalised_neighbour(document, tokens, i - 1, i) or _capitalised_neighbour(document, tokens, i, i + 1):
                continue
            out.append(FieldHit(index, i, i, "given"))
        return out


def _capitalised_neighbour(document: str, tokens: list[Token], left: int, right: int) -> bool:
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


def _longest_first(hits: list[FieldHit]) -> list[FieldHit]:
    """Drop hits that lie inside a longer hit of the same entity; order by position."""
    kept: list[FieldHit] = []
    for h in sorted(hits, key=lambda h: (h.first, -(h.last - h.first))):
        if kept and kept[-1].first <= h.first and h.last <= kept[-1].last:
            continue
        if kept and h.first <= kept[-1].last:  # overlapping: keep the longer one
            if h.last - h.first > kept[-1].last - kept[-1].first:
                kept[-1] = h
            continue
        kept.append(h)
    return kept


def _to_hit(entity_id: str, h: FieldHit, tokens: list[Token], title: str, text: str, body_offset: int) -> Hit:
    start, end = tokens[h.first].start, tokens[h.last].end
    if title and start < len(title):
        return Hit(entity_id, title[start:end], start, end, snippet(title, start, end), field="title")
    start, end = start - body_offset, end - body_offset
    return Hit(entity_id, text[start:end], start, end, snippet(text, start, end))
