"""Timestamping what was archived: every record without a token is sent to the Time-Stamping
Authority ([evidence] tsa_url), oldest first, after the poll that kept it and never inside it. A TSA
that is down or slow costs one request of `tsa_timeout` and leaves the rest waiting for the next
run; a token, once had, is stored and logged in the article's custody."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from d24watch.config import Config
from d24watch.errors import FetchError
from d24watch.evidence import Archive
from d24watch.fetch import Fetcher
from d24watch.models import Snapshot
from d24watch.store import Store
from d24watch.timestamps import stamp

log = logging.getLogger(__name__)

PER_RUN = 200  # records stamped in one run at most


@dataclass
class StampReport:
    stamped: int = 0
    failed: int = 0
    waiting: int = 0  # records still without a token after this run


async def stamp_pending(config: Config, store: Store, archive: Archive, clock: Callable[[], datetime]) -> StampReport:
    report = StampReport()
    if not config.tsa_url:
        return report
    fetch = replace(config.fetch, timeout_s=config.tsa_timeout_s)
    async with Fetcher(fetch) as fetcher:
        for row in store.unstamped(PER_RUN):
            data = archive.record_bytes(Snapshot(row.warc_file, row.warc_offset, row.warc_length, row.sha256))
            if hashlib.sha256(data).hexdigest() != row.record_sha256:
                store.timestamp_failed(row.id, "the record's bytes on disk no longer match their recorded hash")
                log.error("record_altered evidence=%d warc=%s offset=%d", row.id, row.warc_file, row.warc_offset)
                report.failed += 1
                continue
            try:
                got = await stamp(fetcher, config.tsa_url, data)
            except FetchError as exc:
                store.timestamp_failed(row.id, exc.message)
                log.warning("timestamp_failed evidence=%d error=%s", row.id, exc.message)
                report.failed += 1
                break  # the TSA is down or refusing: the rest wait for the next run
            store.add_timestamp(row.id, got.token, got.gen_time, clock())
            report.stamped += 1
    report.waiting = store.timestamp_counts()[1]
    return report
