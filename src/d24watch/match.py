"""The watchlist compiled once into a token automaton; an article in, hits out. Pure: no I/O.

Names, context words, descriptors and every variant form are keys of one Aho-Corasick automaton
over the folded token stream (" tok tok tok "), so a match starts and ends on token boundaries
and the cost per article does not grow with the watchlist. Damaged forms (a dropped or swapped
letter, letters lost to `?`) are checked only where exact neighbours anchor them. Each entity is
then judged by `assess`, which `explain` shows in full:

- a name (term, alias, Western order, one damaged letter) counts when the entity needs no context,
  or when its context or a descriptor occurs (in the text, or in the feed's own title and summary);
- a pen name counts without context;
- a riskier form (other orders, two-syllable Western order, a dropped syllable of a long name)
  counts only beside context (the entity's own, or any context set's when it has none);
- a short form (the given name, `ông Bình`, `Mr. Loi`, `Ms. Doan Trang`, surname and given name
  without the middle, a topic's reference) counts after a full-name hit, or with a descriptor
  in the same sentence or the one before;
- `unless` anywhere drops the entity; `exclude` drops the hits inside it."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

import ahocorasick

from d24watch.models import EntityMatch, Hit
from d24watch.text import Token, has_marks, snippet, tokenize, tone_key, within_one_edit
from d24watch.watchlist import Entity, Watchlist

TERM, CONTEXT, UNLESS, EXCLUDE, DESCRIPTOR, GUARD = range(6)
DIRECT = frozenset({"term", "alias", "order", "fuzzy"})  # full names: context when the entity needs it
GUARDED = frozenset({"variant"})  # riskier forms: context always
SHORT = frozenset({"given", "pair", "initials", "surname", "reference"})  # short forms: a full name or a descriptor
GUARD_ENTITY = -1  # the shared context words that guard entities with none of their own
DAMAGE = "ʔ"  # stands for a letter lost to "?" by a legacy encoding (a letter, so tokens stay whole)
_LOST = re.compile("[?\ufffd]+(?=\\w)")
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


def _viqr_text(text: str) -> str:
    """The text with its VIQR marks as combining marks, when it is VIQR: at least two sequences with
    ^ ( + or ~ (then `Bi`nh` and `cu?a` are read too); any other text unchanged."""
    strong = sum(1 for m in _VIQR.finditer(text) if m.group(1) or m.group(2) == "~")
    if strong < 2:
        return text
    return _VIQR.sub(lambda m: (m.group(1) + m.group(2)).translate(_VIQR_MARKS), text)


def _telex(word: str) -> str:
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


@dataclass
class Assessment:
    """How one entity fared in one article: every form, context word and rule found, and the verdict."""

    entity: Entity
    forms: list[FieldHit] = field(default_factory=list)
    context: list[FieldHit] = field(default_factory=list)
    descriptors: list[FieldHit] = field(default_factory=list)
    unless: list[FieldHit] = field(default_factory=list)
    excluded: list[FieldHit] = field(default_factory=list)
    context_from_feed: list[str] = field(default_factory=list)
    hits: list[FieldHit] = field(default_factory=list)
    verdict: str = ""


class Matcher:
    """Compiled watchlist. `match(title, text)` returns one EntityMatch per entity found."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self.entities = watchlist.entities
        self._automaton = ahocorasick.Automaton()
        keys: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        self._term_keys: set[tuple[str, ...]] = set()
        for e in self.entities:
            for term in (*e.terms, *e.aliases, *e.pen_names):
                self._term_keys.add(_phrase(term))
        self._pair: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._skip: dict[tuple[str, str], list[_Fuzzy]] = defaultdict(list)
        self._anchored: dict[str, list[_Fuzzy]] = defaultdict(list)  # damaged context and descriptors
        self._by_word: dict[str, list[tuple[int, tuple[str, ...], str]]] = defaultdict(list)  # for lost letters
        self._telex_words: dict[str, str] = {}  # a name word as typed in Telex -> the folded word
        self._given: dict[int, tuple[str, str | None]] = {}
        self._names: dict[int, tuple[str, ...]] = {}  # a person's name as folded syllables
        self._unguarded: set[int] = set()  # entities whose riskier forms the shared guard words allow
        variants = self._variants()
        for index, entity in enumerate(self.entities):
            self._compile_entity(index, entity, keys, variants.get(index, []))
        for word in watchlist.guard_words():
            keys[" " + " ".join(_phrase(word)) + " "].append((GUARD_ENTITY, GUARD, len(_phrase(word)), "rule"))
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
                phrase = _phrase(term)
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
            keys[" " + " ".join(phrase) + " "].append((index, role, len(phrase), how))

        names: list[tuple[str, ...]] = []
        for how, group in (("term", entity.terms), ("alias", entity.aliases), ("pen", entity.pen_names)):
            for term in group:
                phrase = _phrase(term)
                add(phrase, TERM, how)
                for word in set(phrase):
                    self._by_word[word].append((index, phrase, how))
                for token in tokenize(term):
                    typed = _telex(term[token.start : token.end])
                    if typed != token.folded:
                        self._telex_words.setdefault(typed, token.folded)
                if how != "pen":
                    names.append(phrase)
        for term in entity.references:
            add(_phrase(term), TERM, "reference")
        for role, group in (
            (CONTEXT, entity.context),
            (UNLESS, entity.unless),
            (EXCLUDE, entity.exclude),
            (DESCRIPTOR, entity.descriptors),
        ):
            for term in group:
                phrase = _phrase(term)
                add(phrase, role, "rule")
                if role in (CONTEXT, DESCRIPTOR):
                    self._add_damaged_phrase(index, phrase, role)
        if not entity.context:
            self._unguarded.add(index)
        if entity.kind != "person":
            return
        if entity.terms:
            self._names[index] = _phrase(entity.terms[0])
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

    def match(self, title: str, text: str, context: str = "") -> list[EntityMatch]:
        """Every entity the article mentions, with its hits (offsets into `title` or `text`).
        `context` (the feed's own title and summary) may supply context, never hits."""
        found: list[EntityMatch] = []
        for assessment, _document, tokens, body_offset in self._assess_all(title, text, context):
            if assessment.hits:
                entity = assessment.entity
                found.append(
                    EntityMatch(
                        entity.id,
                        tuple(_to_hit(entity.id, h, tokens, title, text, body_offset) for h in assessment.hits),
                    )
                )
        return found

    def explain(self, title: str, text: str, context: str = "") -> list[dict[str, object]]:
        """How every entity with a form or a descriptor in the article fared, rule by rule: the forms
        found (with offsets, as hits have them), the context and descriptors found, `unless` and
        `exclude` hits, and the verdict. For `d24watch explain`."""
        out: list[dict[str, object]] = []
        for a, _, tokens, body_offset in self._assess_all(title, text, context, everything=True):
            entity = a.entity

            def spans(
                found: list[FieldHit], a: Assessment = a, tokens: list[Token] = tokens, offset: int = body_offset
            ) -> list[dict[str, object]]:
                rows = []
                for h in found:
                    hit = _to_hit(a.entity.id, h, tokens, title, text, offset)
                    rows.append(
                        {"how": h.how, "text": hit.text, "field": hit.field, "start": hit.start, "end": hit.end}
                    )
                return rows

            out.append(
                {
                    "id": entity.id,
                    "label": entity.label,
                    "verdict": a.verdict,
                    "matched": bool(a.hits),
                    "hits": spans(a.hits),
                    "forms": spans(a.forms),
                    "needs_context": entity.needs_context,
                    "context": sorted({str(r["text"]) for r in spans(a.context)}),
                    "context_from_feed": sorted(set(a.context_from_feed)),
                    "descriptors": sorted({str(r["text"]) for r in spans(a.descriptors)}),
                    "unless": sorted({str(r["text"]) for r in spans(a.unless)}),
                    "excluded": spans(a.excluded),
                }
            )
        return out

    def _assess_all(
        self, title: str, text: str, context: str, *, everything: bool = False
    ) -> list[tuple[Assessment, str, list[Token], int]]:
        if self._empty:
            return []
        document = f"{title}\n{text}" if title else text
        damaged = "?" in document or "\ufffd" in document
        readable = _LOST.sub(lambda m: DAMAGE * len(m.group(0)), document) if damaged else document
        if any(c in readable for c in "^(+~"):
            readable = _viqr_text(readable)
        tokens = tokenize(readable)
        if not tokens:
            return []
        folded = [t.folded for t in tokens]
        spans = self._exact_spans(folded)
        spans[TERM].extend(self._fuzzy_spans(folded, document, tokens))
        if damaged:
            spans[TERM].extend(self._lost_letter_spans(folded))
        spans[TERM].extend(self._telex_spans(folded))
        for role, span in self._damaged_phrases(folded):
            spans[role].append(span)
        feed = self._feed_context(context)
        body_offset = len(title) + 1 if title else 0
        candidates = {s.entity for s in spans[TERM]} | {s.entity for s in spans[DESCRIPTOR]}
        candidates.discard(GUARD_ENTITY)
        sentences = _Sentences(document, tokens)
        out = []
        for index in sorted(candidates):
            assessment = self._assess(index, spans, feed, document, tokens, folded, sentences)
            if assessment.hits or everything:
                out.append((assessment, document, tokens, body_offset))
        _drop_overlaps(out)
        return out

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
                if not _damaged(window[fz.slot], fz.tokens[fz.slot]) or tuple(window) in self._term_keys:
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
                                g == w or (DAMAGE in g and _damaged(g, w)) for g, w in zip(window, phrase, strict=True)
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
                if all(window[k] == fz.tokens[k] for k in range(len(window)) if k != fz.slot) and _damaged(
                    window[fz.slot], fz.tokens[fz.slot]
                ):
                    out.append((fz.role, FieldHit(fz.entity, first, last, "rule")))
        return out

    # -- judging -----------------------------------------------------------------------------

    def _assess(
        self,
        index: int,
        spans: dict[int, list[FieldHit]],
        feed: dict[int, list[tuple[int, str]]],
        document: str,
        tokens: list[Token],
        folded: list[str],
        sentences: _Sentences,
    ) -> Assessment:
        entity = self.entities[index]
        a = Assessment(entity)
        a.forms = [s for s in spans[TERM] if s.entity == index]
        a.context = [s for s in spans[CONTEXT] if s.entity == index]
        a.descriptors = [s for s in spans[DESCRIPTOR] if s.entity == index]
        a.unless = [s for s in spans[UNLESS] if s.entity == index]
        excluders = [s for s in spans[EXCLUDE] if s.entity == index]
        from_feed = feed.get(index, [])
        a.context_from_feed = [w for role, w in from_feed if role in (CONTEXT, DESCRIPTOR)]
        if a.unless or any(role == UNLESS for role, _ in from_feed):
            a.verdict = "left out: an `unless` word occurs"
            return a
        has_context = bool(a.context or a.descriptors or a.context_from_feed)
        guarded = has_context or (index in self._unguarded and (bool(spans[GUARD]) or bool(feed.get(GUARD_ENTITY))))
        kept: list[FieldHit] = []
        for form in a.forms:
            if any(x.first <= form.first and form.last <= x.last for x in excluders):
                a.excluded.append(form)
                continue
            if (
                form.how == "pen"
                or (form.how in DIRECT and (has_context or not entity.needs_context))
                or (form.how in GUARDED and guarded and _written_as_a_name(document, tokens, form.first, form.last))
            ):
                kept.append(form)
        direct = _longest_first(kept)
        if direct:
            hits = list(direct)
            if index in self._given:
                taken = [(s.first, s.last) for s in spans[TERM]]
                hits.extend(self._given_hits(index, direct[0].first, taken, document, tokens, folded))
                hits.sort(key=lambda h: h.first)
            a.hits = hits
            a.verdict = "named"
            return a
        short = self._short_forms(index, a.descriptors, spans, document, tokens, folded, sentences)
        short = [s for s in short if not any(x.first <= s.first and s.last <= x.last for x in excluders)]
        if entity.needs_context and not (a.context or a.context_from_feed):
            # A surname alone is the weakest form: beside a descriptor, it also needs a context word.
            short = [s for s in short if s.how != "surname"]
        if short:
            a.forms.extend(short)
            a.hits = _longest_first(short)
            a.verdict = "named by a short form beside a descriptor"
            return a
        if a.forms and not has_context and entity.needs_context:
            a.verdict = "left out: no context word"
        elif a.forms and a.excluded and not kept:
            a.verdict = "left out: every form lies inside an `exclude` phrase"
        elif a.forms:
            a.verdict = "left out: only forms that need context, a full name or a descriptor"
        else:
            a.verdict = "not named"
        return a

    def _short_forms(
        self,
        index: int,
        descriptors: list[FieldHit],
        spans: dict[int, list[FieldHit]],
        document: str,
        tokens: list[Token],
        folded: list[str],
        sentences: _Sentences,
    ) -> list[FieldHit]:
        """Short forms of the entity in the sentence of one of its descriptors or the next one."""
        if not descriptors:
            return []
        allowed: set[int] = set()
        for d in descriptors:
            s = sentences.of(d.first)
            allowed |= {s, s + 1}
        out = [s for s in spans[TERM] if s.entity == index and s.how == "reference"]
        out = [s for s in out if sentences.of(s.first) in allowed]
        name = self._names.get(index)
        if index in self._given:
            taken = [(s.first, s.last) for s in spans[TERM] if s.entity != index]
            out.extend(
                h
                for h in self._given_hits(index, -1, taken, document, tokens, folded)
                if sentences.of(h.first) in allowed
            )
        if name and len(name) >= 3:
            out.extend(
                h for h in self._name_parts(index, name, document, tokens, folded) if sentences.of(h.first) in allowed
            )
        return out

    def _name_parts(
        self, index: int, name: tuple[str, ...], document: str, tokens: list[Token], folded: list[str]
    ) -> list[FieldHit]:
        """`Doan Trang` (the name without its surname) and `Nguyen Son`, `Le Duc Anh` (surname and
        given name around a missing or different middle), standing alone."""
        out = []
        n = len(folded)
        tail = name[1:]
        for i in range(n):
            end = i + len(tail) - 1
            if (
                folded[i : end + 1] == list(tail)
                and _standalone(document, tokens, i, end)
                and self._tones_agree(index, document, tokens, end)
            ):
                out.append(FieldHit(index, i, end, "pair"))
            if (
                folded[i] == name[0]
                and _standalone(document, tokens, i, i)
                and not _starts_a_sentence(document, tokens, i)
            ):
                # The surname alone, as English reporting writes it ("Nguyen and Huynh were arrested").
                out.append(FieldHit(index, i, i, "surname"))
            if folded[i] == name[0] and _is_capitalised(document, tokens, i):
                for gap in (1, 2):
                    j = i + gap
                    if j >= n or folded[j] != name[-1]:
                        continue
                    middle_ok = all(_is_capitalised(document, tokens, k) for k in range(i + 1, j))
                    if (
                        middle_ok
                        and _standalone(document, tokens, i, j)
                        and self._tones_agree(index, document, tokens, j)
                    ):
                        out.append(FieldHit(index, i, j, "initials"))
        return out

    def _tones_agree(self, index: int, document: str, tokens: list[Token], i: int) -> bool:
        given = self._given.get(index)
        if given is None or given[1] is None:
            return True
        original = document[tokens[i].start : tokens[i].end]
        return not has_marks(original) or tone_key(original) == given[1]

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


class _Sentences:
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


def _phrase(term: str) -> tuple[str, ...]:
    return tuple(t.folded for t in tokenize(term))


def _damaged(got: str, want: str) -> bool:
    """Only the damage seen in the wild: a dropped letter, two letters swapped, or letters lost to `?`."""
    if DAMAGE in got:
        return len(got) == len(want) and all(g in (w, DAMAGE) for g, w in zip(got, want, strict=True))
    if len(got) > len(want) or not within_one_edit(got, want):
        return False
    return len(got) != len(want) or sorted(got) == sorted(want)


def _starts_a_sentence(document: str, tokens: list[Token], i: int) -> bool:
    before = document[: tokens[i].start].rstrip()
    return not before or before[-1] in ".!?:;\"'“”‘’\n"


def _written_as_a_name(document: str, tokens: list[Token], first: int, last: int) -> bool:
    """Every word capitalised, with only spaces between: `Thai Van Duong`, not `Thực, Trần`."""
    if not all(_is_capitalised(document, tokens, k) for k in range(first, last + 1)):
        return False
    return all(not document[tokens[k].end : tokens[k + 1].start].strip() for k in range(first, last))


def _is_capitalised(document: str, tokens: list[Token], i: int) -> bool:
    return document[tokens[i].start : tokens[i].start + 1].isupper()


def _standalone(document: str, tokens: list[Token], first: int, last: int) -> bool:
    """A capitalised span with no capitalised name word right beside it (honorifics aside)."""
    if not _written_as_a_name(document, tokens, first, last):
        return False
    return not (
        _capitalised_neighbour(document, tokens, first - 1, first)
        or _capitalised_neighbour(document, tokens, last, last + 1)
    )


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


def _drop_overlaps(assessed: list[tuple[Assessment, str, list[Token], int]]) -> None:
    """A riskier or short form inside another entity's full name is that entity's, not ours; and a
    surname alone yields to another entity's given name there (Bach: Bách, not Bạch Hùng Dương)."""
    names = [(a.entity.id, h) for a, _, _, _ in assessed for h in a.hits if h.how in DIRECT or h.how == "pen"]
    given = [(a.entity.id, h) for a, _, _, _ in assessed for h in a.hits if h.how in ("given", "pair")]
    if not names and not given:
        return

    def overlaps(entity_id: str, h: FieldHit, others: list[tuple[str, FieldHit]]) -> bool:
        return any(other != entity_id and n.first <= h.last and h.first <= n.last for other, n in others)

    for a, _, _, _ in assessed:
        weak = [
            h
            for h in a.hits
            if (h.how not in DIRECT and h.how != "pen" and overlaps(a.entity.id, h, names))
            or (h.how == "surname" and overlaps(a.entity.id, h, given))
        ]
        if weak:
            a.hits = [h for h in a.hits if h not in weak]
            if not a.hits:
                a.verdict = "left out: its only forms lie inside another entity's name"


def _to_hit(entity_id: str, h: FieldHit, tokens: list[Token], title: str, text: str, body_offset: int) -> Hit:
    start, end = tokens[h.first].start, tokens[h.last].end
    if title and start < len(title):
        return Hit(entity_id, title[start:end], start, end, snippet(title, start, end), field="title")
    start, end = start - body_offset, end - body_offset
    return Hit(entity_id, text[start:end], start, end, snippet(text, start, end))
