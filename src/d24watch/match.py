"""An article in, hits out: the spans the compiled watchlist finds (index.py) judged entity by
entity (`_assess`, which `explain` shows in full). Pure: no I/O.

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

from dataclasses import dataclass, field

from d24watch.index import (
    CONTEXT,
    DESCRIPTOR,
    DIRECT,
    EXCLUDE,
    GUARD,
    GUARD_ENTITY,
    GUARDED,
    TERM,
    UNLESS,
    FieldHit,
    NameIndex,
)
from d24watch.models import EntityMatch, Hit
from d24watch.names import (
    DAMAGE,
    LOST,
    Sentences,
    capitalised_neighbour,
    is_capitalised,
    standalone,
    starts_a_sentence,
    viqr_text,
    written_as_a_name,
)
from d24watch.text import Token, has_marks, snippet, tokenize, tone_key
from d24watch.watchlist import Entity


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


class Matcher(NameIndex):
    """Compiled watchlist. `match(title, text)` returns one EntityMatch per entity found."""

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
        readable = LOST.sub(lambda m: DAMAGE * len(m.group(0)), document) if damaged else document
        if any(c in readable for c in "^(+~"):
            readable = viqr_text(readable)
        tokens = tokenize(readable)
        if not tokens:
            return []
        folded = [t.folded for t in tokens]
        spans = self._exact_spans(folded)
        spans[TERM].extend(self._fuzzy_spans(folded, document, tokens))
        if damaged:
            spans[TERM].extend(self._lost_letter_spans(folded))
        spans[TERM].extend(self._telex_spans(folded))
        spans[TERM] = list(dict.fromkeys(spans[TERM]))  # a damaged name found by two anchors is one span
        for role, span in self._damaged_phrases(folded):
            spans[role].append(span)
        feed = self._feed_context(context)
        body_offset = len(title) + 1 if title else 0
        candidates = {s.entity for s in spans[TERM]} | {s.entity for s in spans[DESCRIPTOR]}
        candidates.discard(GUARD_ENTITY)
        sentences = Sentences(document, tokens)
        out = []
        for index in sorted(candidates):
            assessment = self._assess(index, spans, feed, document, tokens, folded, sentences)
            if assessment.hits or everything:
                out.append((assessment, document, tokens, body_offset))
        _drop_overlaps(out)
        return out

    def _assess(
        self,
        index: int,
        spans: dict[int, list[FieldHit]],
        feed: dict[int, list[tuple[int, str]]],
        document: str,
        tokens: list[Token],
        folded: list[str],
        sentences: Sentences,
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
                or (form.how in GUARDED and guarded and written_as_a_name(document, tokens, form.first, form.last))
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
            a.forms.extend(s for s in short if s not in a.forms)
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
        sentences: Sentences,
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
                and standalone(document, tokens, i, end)
                and self._tones_agree(index, document, tokens, end)
            ):
                out.append(FieldHit(index, i, end, "pair"))
            if (
                folded[i] == name[0]
                and standalone(document, tokens, i, i)
                and not starts_a_sentence(document, tokens, i)
            ):
                # The surname alone, as English reporting writes it ("Nguyen and Huynh were arrested").
                out.append(FieldHit(index, i, i, "surname"))
            if folded[i] == name[0] and is_capitalised(document, tokens, i):
                for gap in (1, 2):
                    j = i + gap
                    if j >= n or folded[j] != name[-1]:
                        continue
                    middle_ok = all(is_capitalised(document, tokens, k) for k in range(i + 1, j))
                    if (
                        middle_ok
                        and standalone(document, tokens, i, j)
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
            if capitalised_neighbour(document, tokens, i - 1, i) or capitalised_neighbour(document, tokens, i, i + 1):
                continue
            out.append(FieldHit(index, i, i, "given"))
        return out


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
