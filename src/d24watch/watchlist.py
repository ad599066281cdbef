"""The watchlist file (SPEC section 4) to frozen entities, validated; errors name file and key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from d24watch.errors import ConfigError, ConfigErrors
from d24watch.text import folded_key
from d24watch.tomlfile import Reader, load_toml

EntityKind = Literal["topic", "person"]
Priority = Literal["high", "normal"]
_KINDS: dict[str, EntityKind] = {"topic": "topic", "person": "person"}
_PRIORITIES: dict[str, Priority] = {"high": "high", "normal": "normal"}

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ENTITY_KEYS = {
    "id",
    "label",
    "kind",
    "priority",
    "terms",
    "aliases",
    "context",
    "unless",
    "exclude",
    "name_order",
    "fuzzy",
    "given_name",
    "context_sets",
    "descriptors",
    "pen_names",
    "references",
}


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    label: str
    kind: EntityKind
    priority: Priority
    terms: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    name_order: bool = False  # also match "Given Middle Family" (Van Binh Nguyen)
    fuzzy: bool = False  # one dropped or swapped letter in one syllable of a 3+ syllable name
    given_name: str | None = None  # after a full-name hit, or beside a descriptor
    # What identifies this entity and no other (a post, an organisation, a case, a co-defendant, a
    # date): it counts as context, and lets a short form (the given name, `ông Bình`, `Mr. Loi`)
    # stand for the entity when it is in the same sentence or the one before.
    descriptors: tuple[str, ...] = ()
    pen_names: tuple[str, ...] = ()  # names only this entity goes by: matched without context
    references: tuple[str, ...] = ()  # short forms of a topic ("the secret directive"), beside a descriptor
    context_sets: tuple[str, ...] = ()  # the named sets whose words were added to `context`

    @property
    def needs_context(self) -> bool:
        return bool(self.context)


@dataclass(frozen=True, slots=True)
class Watchlist:
    path: Path
    entities: tuple[Entity, ...]
    context_sets: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, words), as defined
    by_id: dict[str, Entity] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {e.id: e for e in self.entities})

    def get(self, entity_id: str) -> Entity | None:
        return self.by_id.get(entity_id)

    def guard_words(self) -> tuple[str, ...]:
        """What stands in for context beside the riskier forms of an entity that has none of its
        own (a reordered or shortened name): every word of every context set."""
        return tuple(dict.fromkeys(w for _, words in self.context_sets for w in words))


def load_watchlist(path: Path) -> Watchlist:
    data = load_toml(path)
    r = Reader(path)
    for unknown in sorted(set(data) - {"entity", "context_sets"}):
        r.problem(unknown, "unknown key")
    sets = _read_context_sets(r, data.get("context_sets", {}))
    raw = data.get("entity", [])
    if not isinstance(raw, list):
        raise ConfigError(str(path), "entity", "must be an array of tables ([[entity]])")
    entities = [e for i, item in enumerate(raw) if (e := _read_entity(r, i, item, sets)) is not None]
    seen: dict[str, int] = {}
    for i, entity in enumerate(entities):
        if entity.id in seen:
            r.problem(f"entity[{i}].id", f"{entity.id!r} is also the id of entity[{seen[entity.id]}]")
        seen.setdefault(entity.id, i)
    if r.problems:
        raise ConfigErrors(r.problems)
    return Watchlist(path, tuple(entities), tuple(sets.items()))


def _read_context_sets(r: Reader, raw: Any) -> dict[str, tuple[str, ...]]:
    """`[context_sets]`: named lists of context words, defined once and referenced by entities."""
    if not isinstance(raw, dict):
        r.problem("context_sets", "must be a table of named lists ([context_sets] detention = [...])")
        return {}
    sets: dict[str, tuple[str, ...]] = {}
    for name in raw:
        if not _ID.match(str(name)):
            r.problem(f"context_sets.{name}", "the name must be a lower-case slug such as detention")
            continue
        sets[name] = _strings(r, raw, "context_sets", name)
    return sets


def _strings(r: Reader, item: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(f"{key}.{name}", "must be a list of strings")
        return ()
    for j, term in enumerate(value):
        if not folded_key(term):
            r.problem(f"{key}.{name}[{j}]", f"{term!r} has no letters or digits to match")
    return tuple(v for v in value if folded_key(v))


def _read_entity(r: Reader, i: int, item: Any, sets: dict[str, tuple[str, ...]]) -> Entity | None:
    key = f"entity[{i}]"
    if not isinstance(item, dict):
        r.problem(key, "must be a table")
        return None
    for unknown in sorted(set(item) - _ENTITY_KEYS):
        r.problem(f"{key}.{unknown}", "unknown key")
    entity_id = r.get(item, key, "id", str, "")
    if not _ID.match(entity_id):
        r.problem(f"{key}.id", f"{entity_id!r} must be a lower-case slug such as nguyen-van-binh")
    label = r.get(item, key, "label", str, entity_id)
    kind = r.choice(item, key, "kind", _KINDS, "topic")
    priority = r.choice(item, key, "priority", _PRIORITIES, "normal")
    terms = _strings(r, item, key, "terms")
    if "terms" not in item or not terms:
        r.problem(f"{key}.terms", "needs at least one term")
    is_person = kind == "person"
    given_default = label.split()[-1] if is_person and len(label.split()) >= 2 else None
    given = item.get("given_name", given_default)
    if given is False:
        given = None
    elif given is not None and (not isinstance(given, str) or len(folded_key(given).split()) != 1):
        r.problem(f"{key}.given_name", "must be one word, or false")
        given = None
    set_names = _strings(r, item, key, "context_sets")
    context = list(_strings(r, item, key, "context"))
    for j, name in enumerate(set_names):
        if name not in sets:
            known = ", ".join(sorted(sets)) or "none is defined"
            r.problem(f"{key}.context_sets[{j}]", f"{name!r} is not a context set ({known})")
            continue
        context.extend(sets[name])
    descriptors = _strings(r, item, key, "descriptors")
    references = _strings(r, item, key, "references")
    if references and not descriptors:
        r.problem(f"{key}.references", "counts only beside a descriptor: add descriptors")
    return Entity(
        id=entity_id,
        label=label,
        kind=kind,
        priority=priority,
        terms=terms,
        aliases=_strings(r, item, key, "aliases"),
        context=tuple(dict.fromkeys(context)),
        descriptors=descriptors,
        pen_names=_strings(r, item, key, "pen_names"),
        references=references,
        context_sets=set_names,
        unless=_strings(r, item, key, "unless"),
        exclude=_strings(r, item, key, "exclude"),
        name_order=r.get(item, key, "name_order", bool, is_person),
        fuzzy=r.get(item, key, "fuzzy", bool, is_person),
        given_name=given,
    )
