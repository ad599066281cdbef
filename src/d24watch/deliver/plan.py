"""The delivery rules that are not the alert rule: how long a failed delivery waits, and the id of
a digest. Pure."""

from __future__ import annotations

import hashlib
from datetime import timedelta


def digest_delivery_id(channel: str, batched_at: str) -> str:
    return hashlib.sha256(f"{channel}|digest|{batched_at}".encode()).hexdigest()[:32]


def retry_delay(failures: int, initial: timedelta, longest: timedelta, retry_after_s: float | None = None) -> timedelta:
    """The wait after the `failures`-th failure in a row: `initial`, doubled each time, at most
    `longest`; never shorter than the receiver's Retry-After (itself capped at a day)."""
    wait: timedelta = min(longest, initial * (2 ** min(max(failures - 1, 0), 30)))
    if retry_after_s is not None and retry_after_s > 0:
        wait = max(wait, min(timedelta(days=1), timedelta(seconds=retry_after_s)))
    return wait
