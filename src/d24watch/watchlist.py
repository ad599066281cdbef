"""The watchlist file (SPEC section 4) to frozen entities, validated; errors name file and key."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
    given_name: str | None = None  # counted only after a full-name hit in the same article


@dataclass(frozen=True, slots=True)
class Watchlist:
    path: Path
    entities: tuple[Entity, ...]

    def get(self, entity_id: str) -> Entity | None:
        return next((e for e in self.entities if e.id == entity_id), None)


def load_watchlist(path: Path) -> Watchlist:
    data = load_toml(path)
    r = Reader(path)
    for unknown in sorted(set(data) - {"entity"}):
        r.problem(unknown, "unknown key")
    raw = data.get("entity", [])
    if not isinstance(raw, list):
        raise ConfigError(str(path), "entity", "must be an array of tables ([[entity]])")
    entities = [e for i, item in enumerate(raw) if (e := _read_entity(r, i, item)) is not None]
    seen: dict[str, int] = {}
    for i, entity in enumerate(entities):
        if entity.id in seen:
            r.problem(f"entity[{i}].id", f"{entity.id!r} is also the id of entity[{seen[entity.id]}]")
        seen.setdefault(entity.id, i)
    if r.problems:
        raise ConfigErrors(r.problems)
    return Watchlist(path, tuple(entities))


def _strings(r: Reader, item: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(f"{key}.{name}", "must be a list of strings")
        return ()
    for j, term in enumerate(value):
        if not folded_key(term):
            r.problem(f"{key}.{name}[{j}]", f"{term!r} has no letters or digits to match")
    return tuple(v for v in value if folded_key(v))


def _read_entity(r: Reader, i: int, item: Any) -> Entity | None:
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
    return Entity(
        id=entity_id,
        label=label,
        kind=kind,
        priority=priority,
        terms=terms,
        aliases=_strings(r, item, key, "aliases"),
        context=_strings(r, item, key, "context"),
        unless=_strings(r, item, key, "unless"),
        exclude=_strings(r, item, key, "exclude"),
        name_order=r.get(item, key, "name_order", bool, is_person),
        fuzzy=r.get(item, key, "fuzzy", bool, is_person),
        given_name=given,
    )
