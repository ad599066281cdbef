"""The alert rule, in one place: given what was matched and what the article already named, which
hits to record and which deliveries and digest lines to queue, for every occasion. Pure.

| occasion   | hits recorded            | entities alerted                   | as            |
|------------|--------------------------|------------------------------------|---------------|
| `new`      | all                      | those matched                      | mention       |
| `revision` | all                      | those the article did not name     | mention       |
| `rematch`  | those it did not name    | those it did not name              | mention       |
| `baseline` | all                      | none (a watched page's first look) | —             |
| `changed`  | all                      | every one it names, old and new    | changed event |
| `removed`  | none                     | those it named and no longer does  | removed event |

A seed document never alerts. High-priority entities go to every immediate channel, the entities
found together in one message; every entity goes to every digest channel."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from d24watch.channels import ChannelConfig
from d24watch.models import MENTION, EntityMatch, EventRef
from d24watch.watchlist import Watchlist

Occasion = Literal["new", "revision", "rematch", "baseline", "changed", "removed"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One immediate message to queue."""

    channel: str
    delivery_id: str
    event: EventRef
    entity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DigestEntry:
    channel: str
    entity_id: str
    event: EventRef


@dataclass(frozen=True, slots=True)
class AlertPlan:
    hits: tuple[EntityMatch, ...]  # to record at the article's current revision
    entities: tuple[str, ...]  # the entities this occasion alerts, sorted
    deliveries: tuple[Delivery, ...]
    digest: tuple[DigestEntry, ...]


def delivery_id(channel: str, article_id: int, event: EventRef, entity_ids: Iterable[str]) -> str:
    """Stable for the same channel, article, event and entities: retries and re-runs reuse it."""
    key = "|".join([channel, str(article_id), event.key, *sorted(entity_ids)])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_alerts(
    occasion: Occasion,
    *,
    article_id: int,
    matches: Sequence[EntityMatch],
    had: frozenset[str],
    channels: Sequence[ChannelConfig],
    watchlist: Watchlist,
    event: EventRef = MENTION,
    is_seed: bool = False,
) -> AlertPlan:
    """What to record and queue for `matches` of the article `article_id`, which named `had`
    before. `event` names the article event of a `changed` or `removed` occasion."""
    named = {m.entity_id for m in matches}
    hits: tuple[EntityMatch, ...]
    if occasion == "rematch":
        hits = tuple(m for m in matches if m.entity_id not in had)
    elif occasion == "removed":
        hits = ()
    else:
        hits = tuple(matches)
    alerted: set[str] = set()
    if is_seed or occasion == "baseline":
        pass
    elif occasion == "changed":
        alerted = named | had
    elif occasion == "removed":
        alerted = set(had - named)
    else:
        alerted = named - had
    entities = tuple(sorted(alerted))
    if occasion in ("new", "revision", "rematch"):
        event = MENTION
    return AlertPlan(
        hits=hits,
        entities=entities,
        deliveries=tuple(_immediate(channels, watchlist, article_id, entities, event)),
        digest=tuple(
            DigestEntry(c.name, entity_id, event) for c in channels if c.mode == "digest" for entity_id in entities
        ),
    )


def _immediate(
    channels: Sequence[ChannelConfig],
    watchlist: Watchlist,
    article_id: int,
    entity_ids: tuple[str, ...],
    event: EventRef,
) -> list[Delivery]:
    """One message per immediate channel holding every high-priority entity found together."""
    high = tuple(e for e in entity_ids if (entity := watchlist.get(e)) is not None and entity.priority == "high")
    if not high:
        return []
    return [
        Delivery(c.name, delivery_id(c.name, article_id, event, high), event, high)
        for c in channels
        if c.mode == "immediate"
    ]
