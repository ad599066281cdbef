"""The watchlist compiled once: every name, variant, context word and descriptor as a key of one
Aho-Corasick automaton over the folded token stream (" tok tok tok "), so a span starts and ends on
token boundaries and the cost per article does not grow with the watchlist; damaged forms are
found only where exact neighbours anchor them. Finds spans; judging them is the matcher's. Pure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import ahocorasick

from d24watch.names import (
    DAMAGE,
    is_damaged,
    phrase_of,
    telex,
)
from d24watch.text import Token, has_marks, tokenize, tone_key
from d24watch.watchlist import Entity, Watchlist

TERM, CONTEXT, UNLESS, EXCLUDE, DESCRIPTOR, GUARD = range(6)
DIRECT = frozenset({"term", "alias", "order", "fuzzy"})  # full names: context when the entity needs it
GUARDED = frozenset({"variant"})  # riskier forms: context always
SHORT = frozenset({"given", "pair", "initials", "surname", "reference"})  # short forms: a full name or a descriptor
GUARD_ENTITY = -1  # the shared context words that guard entities with none of their own


@dataclass(frozen=True, slots=True)
class _Fuzzy:
    entity: int
    tokens: tuple[str, ...]
    slot: int  # the one token allowed to be damaged
    role: int = TERM
    anchor: int = 0  # for context phrases: the position of the exact token that finds them


@dataclass(frozen=True, slots=True)
class FieldHit:
    """A span before it is tied to a field: token span in the combined title+body document."""

    entity: int
    first: int
    last: int
    how: str  # term, alias, pen, order, fuzzy, variant, given, pair, initials, reference, rule


class NameIndex:
    """The compiled watchlist and the spans it finds in a text."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self.entities = watchlist.entities
        self._automaton = ahocorasick.Automaton()
        keys: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        self._term_keys: set[tuple[str, ...]] = set()
        for e in self.entities:
            for term in (*e.terms, *e.aliases, *e.pen_names):
                self._term_keys.add(phrase_of(term))
        self._pair: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._skip: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._anchored: dict[str, list[_Fuzzy]] = defaultdict(list)  # damaged context and descriptors
        self._by_word: dict[str, list[tuple[int, tuple[str, ...], str]]] = defaultdict(list)  # for lost letters
        self._telex_words: dict[str, str] = {}  # a name word as typed in Telex -> the folded word
        self._indexed: set[tuple[int, tuple[str, ...], str]] = set()  # phrases already in _by_word
        self._given: dict[int, tuple[str, str | None]] = {}
        self._names: dict[int, tuple[str, ...]] = {}  # a person's name as folded syllables
        self._unguarded: set[int] = set()  # entities whose riskier forms the shared guard words allow
        variants = self._variants()
        for index, entity in enumerate(self.entities):
            self._compile_entity(index, entity, keys, variants.get(index, []))
        for word in watchlist.guard_words():
            keys[" " + " ".join(phrase_of(word)) + " "].append((GUARD_ENTITY, GUARD, len(phrase_of(word)), "rule"))
        for key, values in keys.items():
            self._automaton.add_word(key, tuple(values))
        if keys:
            self._automaton.make_automaton()
        self._empty = not keys

    # -- compiling ---------------------------------------------------------------------------

    def _variants(self) -> dict[int, list[tuple[str, ...]]]:
        """The riskier name forms of each person, kept only when no other entity has the same form
        and it spells no entity's own name: other syllable orders of a three-syllable name, the
        two-syllable Western order (Hieu Bui), and a long name without a middle or final syllable."""
        owners: dict[tuple[str, ...], set[int]] = defaultdict(set)
        for index, entity in enumerate(self.entities):
            if entity.kind != "person" or not entity.name_order:
                continue
            for term in entity.terms:
                phrase = phrase_of(term)
                forms: set[tuple[str, ...]] = set()
                if len(phrase) == 3:
                    a, b, c = phrase
                    forms |= {(b, a, c), (c, b, a), (c, a, b), (a, c, b), (b, a), (c, a)}
                if len(phrase) >= 4:
                    forms.add((phrase[-1], phrase[0]))
                    forms.add(phrase[:-1])
                    forms |= {phrase[:k] + phrase[k + 1 :] for k in range(1, len(phrase) - 1)}
                for form in forms - {phrase, (*phrase[1:], phrase[0])}:
                    owners[form].add(index)
        out: dict[int, list[tuple[str, ...]]] = defaultdict(list)
        for form, who in owners.items():
            if len(who) == 1 and form not in self._term_keys:
                out[next(iter(who))].append(form)
        return out

    def _compile_entity(
        self,
        index: int,
        entity: Entity,
        keys: dict[str, list[tuple[int, int, int, str]]],
        variants: list[tuple[str, ...]],
    ) -> None:
        def add(phrase: tuple[str, ...], role: int, how: str) -> None:
            # Two spellings that fold alike (Nguyễn Văn Bình, Nguyen Van Binh) are one key, one span.
            values = keys[" " + " ".join(phrase) + " "]
            if (index, role, len(phrase), how) not in values:
                values.append((index, role, len(phrase), how))

        names: list[tuple[str, ...]] = []
        for how, group in (("term", entity.terms), ("alias", entity.aliases), ("pen", entity.pen_names)):
            for term in group:
                phrase = phrase_of(term)
                add(phrase, TERM, how)
                if (index, phrase, how) not in self._indexed:
                    self._indexed.add((index, phrase, how))
                    for word in set(phrase):
                        self._by_word[word].append((index, phrase, how))
                for token in tokenize(term):
                    typed = telex(term[token.start : token.end])
                    if typed != token.folded:
                        self._telex_words.setdefault(typed, token.folded)
                if how != "pen" and phrase not in names:
                    names.append(phrase)
        for term in entity.references:
            add(phrase_of(term), TERM, "reference")
        for role, group in (
            (CONTEXT, entity.context),
            (UNLESS, entity.unless),
            (EXCLUDE, entity.exclude),
            (DESCRIPTOR, entity.descriptors),
        ):
            for term in group:
                phrase = phrase_of(term)
                add(phrase, role, "rule")
                if role in (CONTEXT, DESCRIPTOR):
                    self._add_damaged_phrase(index, phrase, role)
        if not entity.context:
            self._unguarded.add(index)
        if entity.kind != "person":
            return
        if entity.terms:
            self._names[index] = phrase_of(entity.terms[0])
        for phrase in variants:
            add(phrase, TERM, "variant")
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

    def _add_damaged_phrase(self, index: int, phrase: tuple[str, ...], role: int) -> None:
        """A context phrase or descriptor of two or more words is also found with one word damaged
        (`V pháp chế`, `B Lao động`), anchored on its longest other word."""
        if len(phrase) < 2:
            return
        for slot in range(len(phrase)):
            others = [k for k in range(len(phrase)) if k != slot]
            anchor = max(others, key=lambda k: len(phrase[k]))
            if len(phrase[anchor]) < 3:
                continue
            self._anchored[phrase[anchor]].append(_Fuzzy(index, phrase, slot, role, anchor))

    # -- matching ----------------------------------------------------------------------------

    def _feed_context(self, context: str) -> dict[int, list[tuple[int, str]]]:
        """Context, descriptors and `unless` words found in the feed's own text: (role, word) per entity."""
        found: dict[int, list[tuple[int, str]]] = defaultdict(list)
        if not context:
            return found
        folded = [t.folded for t in tokenize(context)]
        spans = self._exact_spans(folded)
        for role in (CONTEXT, DESCRIPTOR, UNLESS, GUARD):
            for s in spans[role]:
                found[s.entity].append((role, " ".join(folded[s.first : s.last + 1])))
        return found

    def _exact_spans(self, folded: list[str]) -> dict[int, list[FieldHit]]:
        haystack = " " + " ".join(folded) + " "
        space_to_token: dict[int, int] = {}
        position = 0
        for i, word in enumerate(folded):
            space_to_token[position] = i
            position += len(word) + 1
        space_to_token[position] = len(folded)
        spans: dict[int, list[FieldHit]] = {role: [] for role in (TERM, CONTEXT, UNLESS, EXCLUDE, DESCRIPTOR, GUARD)}
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
                if not is_damaged(window[fz.slot], fz.tokens[fz.slot]) or tuple(window) in self._term_keys:
                    continue
                out.append(FieldHit(fz.entity, first, last, "fuzzy"))
        return out

    def _telex_spans(self, folded: list[str]) -> list[FieldHit]:
        """Names typed in Telex with the keys left in: each word that is no name word as it stands
        but is one once its keys are read back (`nguyeenx` -> `nguyen`) stands for that word."""
        if not self._telex_words:
            return []
        decoded, changed = list(folded), False
        for i, word in enumerate(folded):
            plain = self._telex_words.get(word)
            if plain is not None and word not in self._by_word:
                decoded[i], changed = plain, True
        if not changed:
            return []
        return [
            FieldHit(s.entity, s.first, s.last, "fuzzy" if s.how in DIRECT else s.how)
            for s in self._exact_spans(decoded)[TERM]
            if any(decoded[k] != folded[k] for k in range(s.first, s.last + 1))
        ]

    def _lost_letter_spans(self, folded: list[str]) -> list[FieldHit]:
        """Names whose letters a legacy encoding lost to `?` (`Hoàng ??c Bình`, `�ặng �ình Bách`):
        every other word exact, each damaged word as long as the one it stands for."""
        out: list[FieldHit] = []
        n = len(folded)
        for i, word in enumerate(folded):
            if DAMAGE not in word:
                continue
            seen: set[tuple[int, tuple[str, ...]]] = set()
            for j in range(max(0, i - 3), min(n, i + 4)):
                for entity, phrase, how in self._by_word.get(folded[j], ()):
                    if (entity, phrase) in seen:
                        continue
                    seen.add((entity, phrase))
                    for first in range(i - len(phrase) + 1, i + 1):
                        window = folded[first : first + len(phrase)]
                        if (
                            first >= 0
                            and len(window) == len(phrase)
                            and all(
                                g == w or (DAMAGE in g and is_damaged(g, w))
                                for g, w in zip(window, phrase, strict=True)
                            )
                        ):
                            out.append(
                                FieldHit(entity, first, first + len(phrase) - 1, "fuzzy" if how != "pen" else how)
                            )
        return out

    def _damaged_phrases(self, folded: list[str]) -> list[tuple[int, FieldHit]]:
        if not self._anchored:
            return []
        out: list[tuple[int, FieldHit]] = []
        n = len(folded)
        for i, word in enumerate(folded):
            for fz in self._anchored.get(word, ()):
                first = i - fz.anchor
                last = first + len(fz.tokens) - 1
                if first < 0 or last >= n:
                    continue
                window = folded[first : last + 1]
                if all(window[k] == fz.tokens[k] for k in range(len(window)) if k != fz.slot) and is_damaged(
                    window[fz.slot], fz.tokens[fz.slot]
                ):
                    out.append((fz.role, FieldHit(fz.entity, first, last, "rule")))
        return out

    # -- judging -----------------------------------------------------------------------------
