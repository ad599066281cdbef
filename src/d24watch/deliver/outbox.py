"""Which channel gets what, decided once when hits are stored (in the same transaction): high
entities go to immediate channels, every entity to digest channels. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from d24watch.config import ChannelConfig
from d24watch.watchlist import Watchlist


@dataclass(frozen=True, slots=True)
class Planned:
    channel: str
    delivery_id: str
    entity_ids: tuple[str, ...]


def delivery_id(channel: str, article_id: int, event: str, entity_ids: Iterable[str]) -> str:
    """Stable for the same channel, article, event and entities: retries and re-runs reuse it."""
    key = "|".join([channel, str(article_id), event, *sorted(entity_ids)])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_immediate(
    channels: Iterable[ChannelConfig], watchlist: Watchlist, article_id: int, entity_ids: Iterable[str], event: str
) -> list[Planned]:
    """One message per immediate channel holding every high-priority entity found together."""
    high = tuple(sorted(e for e in set(entity_ids) if (ent := watchlist.get(e)) is not None and ent.priority == "high"))
    if not high:
        return []
    return [
        Planned(c.name, delivery_id(c.name, article_id, event, high), high) for c in channels if c.mode == "immediate"
    ]


def digest_channels(channels: Iterable[ChannelConfig]) -> list[str]:
    return [c.name for c in channels if c.mode == "digest"]


def digest_delivery_id(channel: str, batched_at: str) -> str:
    return hashlib.sha256(f"{channel}|digest|{batched_at}".encode()).hexdigest()[:32]


def retry_delay(failures: int, initial: timedelta, longest: timedelta, retry_after_s: float | None = None) -> timedelta:
    """The wait after the `failures`-th failure in a row: `initial`, doubled each time, at most
    `longest`; never shorter than the receiver's Retry-After (itself capped at a day)."""
    wait: timedelta = min(longest, initial * (2 ** min(max(failures - 1, 0), 30)))
    if retry_after_s is not None and retry_after_s > 0:
        wait = max(wait, min(timedelta(days=1), timedelta(seconds=retry_after_s)))
    return wait
