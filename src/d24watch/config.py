"""TOML configuration to frozen values, validated at start-up. Every problem is named by file
and key; secrets are read from the environment and never printed."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from d24watch import __version__
from d24watch.channels import ChannelConfig, read_channels
from d24watch.errors import ConfigErrors
from d24watch.secret import Secret
from d24watch.tomlfile import Reader, load_toml, parse_duration, schedule_interval, validate_cron

DEFAULT_CONFIG = "config/d24watch.toml"
DEFAULT_USER_AGENT = f"d24watch/{__version__} (+https://github.com/d24watch/d24watch)"

SourceKind = Literal["feed", "page", "sitemap", "telegram"]
Aggregator = Literal["google-news"]
Watch = Literal["removal"]
LogFormat = Literal["auto", "text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
_KINDS: dict[str, SourceKind] = {"feed": "feed", "page": "page", "sitemap": "sitemap", "telegram": "telegram"}
_AGGREGATORS: dict[str, Aggregator] = {"google-news": "google-news"}
AGGREGATOR_HOSTS: dict[str, Aggregator] = {"news.google.com": "google-news"}  # set without being asked
_LOG_FORMATS: dict[str, LogFormat] = {"auto": "auto", "text": "text", "json": "json"}
_LOG_LEVELS: dict[str, LogLevel] = {"debug": "debug", "info": "info", "warning": "warning", "error": "error"}


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout_s: float = 20.0
    max_bytes: int = 10_000_000
    concurrency: int = 16
    per_host: int = 2
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_addresses: bool = False
    max_redirects: int = 5
    max_items_per_source: int = 300
    extract_workers: int = 0  # 0: one per core
    aggregator_gap_s: float = 1.0  # the least time between two lookups at one aggregator


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: SourceKind
    url: str
    interval: timedelta
    enabled: bool = True
    language: str | None = None
    watch: Watch | None = None
    aggregator: Aggregator | None = None  # item links are resolved to the publisher's URL
    min_interval: timedelta | None = None  # bounds on the next poll's time; None: derived from interval
    max_interval: timedelta | None = None
    follow_links: bool = False  # telegram: the article a post links to is fetched and stored too

    @property
    def bounds(self) -> tuple[timedelta, timedelta]:
        """How soon and how late the next poll may come: the configured bounds, or half and four
        times the interval."""
        return (self.min_interval or self.interval / 2, self.max_interval or self.interval * 4)


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    database: Path
    fetch: FetchConfig
    sources: tuple[SourceConfig, ...]
    watchlist: Path
    near_duplicate_threshold: float
    digest_schedule: str
    digest_timezone: str
    listen: str
    retry_initial: timedelta
    retry_max: timedelta
    channels: tuple[ChannelConfig, ...]
    recheck: tuple[timedelta, ...]
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    operator: str | None = None  # who runs this d24watch, written into every WARC file's warcinfo
    tsa_url: str | None = None  # an RFC 3161 Time-Stamping Authority for the archived records
    tsa_ca_file: Path | None = None  # the TSA's CA certificate(s), PEM, to verify its tokens
    tsa_timeout_s: float = 10.0
    read_token: Secret | None = None  # the workspace's tokens: reading, and reading and triage
    triage_token: Secret | None = None
    read_token_env: str = "D24WATCH_READ_TOKEN"  # where they come from, to name in messages
    triage_token_env: str = "D24WATCH_TRIAGE_TOKEN"

    @property
    def state_dir(self) -> Path:
        return self.database.parent

    def fingerprint(self) -> str:
        """SHA-256 of the settings, secrets left out (they print as ***): which settings wrote a WARC."""
        import dataclasses
        import hashlib
        import json

        values = dataclasses.asdict(self)
        return hashlib.sha256(json.dumps(values, default=str, sort_keys=True).encode()).hexdigest()

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)


def resolve_config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("D24WATCH_CONFIG") or DEFAULT_CONFIG)


_TOP = {"storage", "fetch", "sources", "watch", "digest", "server", "delivery", "notify", "evidence", "log"}
_FETCH = {
    "timeout",
    "max_bytes",
    "concurrency",
    "per_host",
    "user_agent",
    "allow_private_addresses",
    "max_redirects",
    "max_items_per_source",
    "extract_workers",
    "aggregator_gap",
}
_SOURCE = {
    "name",
    "kind",
    "url",
    "interval",
    "enabled",
    "language",
    "watch",
    "aggregator",
    "min_interval",
    "max_interval",
    "follow_links",
}


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config at `path`; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    data = load_toml(path)
    r = Reader(path)
    base = path.parent
    for unknown in sorted(set(data) - _TOP):
        r.problem(unknown, "unknown key")

    storage = r.table(data, "storage", {"database"})
    database = base / r.get(storage, "storage", "database", str, "state/d24watch.db")

    f = r.table(data, "fetch", _FETCH)
    fetch = FetchConfig(
        timeout_s=float(r.get(f, "fetch", "timeout", (int, float), 20)),
        max_bytes=r.positive(f, "fetch", "max_bytes", 10_000_000),
        concurrency=r.positive(f, "fetch", "concurrency", 16),
        per_host=r.positive(f, "fetch", "per_host", 2),
        user_agent=r.get(f, "fetch", "user_agent", str, DEFAULT_USER_AGENT),
        allow_private_addresses=r.get(f, "fetch", "allow_private_addresses", bool, False),
        max_redirects=r.get(f, "fetch", "max_redirects", int, 5),
        max_items_per_source=r.positive(f, "fetch", "max_items_per_source", 300),
        extract_workers=r.get(f, "fetch", "extract_workers", int, 0),
        aggregator_gap_s=float(r.get(f, "fetch", "aggregator_gap", (int, float), 1.0)),
    )
    if fetch.aggregator_gap_s < 0:
        r.problem("fetch.aggregator_gap", "must not be negative")
    if fetch.timeout_s <= 0:
        r.problem("fetch.timeout", "must be more than zero seconds")

    sources = _read_sources(r, data.get("sources", []))

    watch = r.table(data, "watch", {"watchlist", "near_duplicate_threshold"})
    watchlist = base / r.get(watch, "watch", "watchlist", str, "watchlist.toml")
    if not watchlist.is_file():
        r.problem("watch.watchlist", f"{watchlist}: file not found")
    threshold = float(r.get(watch, "watch", "near_duplicate_threshold", (int, float), 0.8))
    if not 0.5 <= threshold <= 1.0:
        r.problem("watch.near_duplicate_threshold", f"must be between 0.5 and 1.0, not {threshold}")

    digest = r.table(data, "digest", {"schedule", "timezone"})
    schedule = r.get(digest, "digest", "schedule", str, "0 7 * * *")
    if schedule_interval(schedule) is None:
        try:
            validate_cron(schedule)
        except ValueError as exc:
            r.problem("digest.schedule", f"{exc}, or a duration such as 12h")
    timezone = r.get(digest, "digest", "timezone", str, "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("digest.timezone", f"{timezone!r} is not a known time zone")

    server = r.table(data, "server", {"listen", "read_token_env", "triage_token_env", "read_token", "triage_token"})
    listen = r.get(server, "server", "listen", str, "127.0.0.1:8024")
    tokens: dict[str, Secret | None] = {}
    token_envs: dict[str, str] = {}
    for role in ("read", "triage"):
        env_name = r.get(server, "server", f"{role}_token_env", str, f"D24WATCH_{role.upper()}_TOKEN")
        token_envs[role] = env_name
        literal = r.get(server, "server", f"{role}_token", str, "")
        value = env.get(env_name) or literal
        if value and len(value) < 16:
            r.problem(f"server.{role}_token_env", f"the token in {env_name} is too short: use 16 characters or more")
        tokens[role] = Secret(value) if value else None
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        r.problem("server.listen", f"{listen!r} is not HOST:PORT")

    delivery = r.table(data, "delivery", {"retry_initial", "retry_max"})
    retry_initial = r.duration(delivery, "delivery", "retry_initial", "1m")
    retry_max = r.duration(delivery, "delivery", "retry_max", "6h")

    channels = read_channels(r, data.get("notify"), base, env)

    evidence = r.table(data, "evidence", {"recheck", "operator", "tsa_url", "tsa_ca_file", "tsa_timeout"})
    operator = r.get(evidence, "evidence", "operator", str, None)
    tsa_url = r.get(evidence, "evidence", "tsa_url", str, None)
    if tsa_url is not None and not re.match(r"^https?://[^/\s]+", tsa_url):
        r.problem("evidence.tsa_url", f"{tsa_url!r} is not an http(s) URL")
    tsa_ca = r.get(evidence, "evidence", "tsa_ca_file", str, None)
    tsa_ca_file = base / tsa_ca if tsa_ca else None
    if tsa_ca_file is not None and not tsa_ca_file.is_file():
        r.problem("evidence.tsa_ca_file", f"{tsa_ca_file}: file not found")
    tsa_timeout = float(r.get(evidence, "evidence", "tsa_timeout", (int, float), 10))
    recheck_raw = r.get(evidence, "evidence", "recheck", list, ["1d", "7d", "30d"])
    recheck: list[timedelta] = []
    for i, item in enumerate(recheck_raw):
        try:
            recheck.append(parse_duration(str(item)))
        except ValueError as exc:
            r.problem(f"evidence.recheck[{i}]", str(exc))

    log = r.table(data, "log", {"format", "level"})
    log_format = r.choice(log, "log", "format", _LOG_FORMATS, "auto")
    log_level = r.choice(log, "log", "level", _LOG_LEVELS, "info")

    if r.problems:
        raise ConfigErrors(r.problems)
    return Config(
        path=path,
        database=database,
        fetch=fetch,
        sources=sources,
        watchlist=watchlist,
        near_duplicate_threshold=threshold,
        digest_schedule=schedule,
        digest_timezone=timezone,
        listen=listen,
        retry_initial=retry_initial,
        retry_max=retry_max,
        channels=channels,
        recheck=tuple(sorted(recheck)),
        log_format=log_format,
        log_level=log_level,
        operator=operator,
        tsa_url=tsa_url,
        tsa_ca_file=tsa_ca_file,
        tsa_timeout_s=tsa_timeout,
        read_token=tokens["read"],
        triage_token=tokens["triage"],
        read_token_env=token_envs["read"],
        triage_token_env=token_envs["triage"],
    )


def _read_sources(r: Reader, raw: Any) -> tuple[SourceConfig, ...]:
    if not isinstance(raw, list):
        r.problem("sources", "must be an array of tables ([[sources]])")
        return ()
    sources: list[SourceConfig] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        key = f"sources[{i}]"
        if not isinstance(item, dict):
            r.problem(key, "must be a table")
            continue
        for unknown in sorted(set(item) - _SOURCE):
            r.problem(f"{key}.{unknown}", "unknown key")
        name = r.get(item, key, "name", str, "")
        if not name.strip():
            r.problem(f"{key}.name", "is required and must not be empty")
        elif name in names:
            r.problem(f"{key}.name", f"{name!r} is used by another source")
        names.add(name)
        kind = r.choice(item, key, "kind", _KINDS, "feed")
        url = r.get(item, key, "url", str, "")
        if not re.match(r"^https?://[^/\s]+", url):
            r.problem(f"{key}.url", f"{url!r} is not an http(s) URL")
        interval = r.duration(item, key, "interval", "30m")
        if interval < timedelta(seconds=1):
            r.problem(f"{key}.interval", "must be at least 1s")
        watch: Watch | None = None
        if "watch" in item:
            if item["watch"] != "removal" or kind != "page":
                r.problem(f"{key}.watch", 'only "removal", and only for kind = "page"')
            else:
                watch = "removal"
        language = r.get(item, key, "language", str, None)
        enabled = r.get(item, key, "enabled", bool, True)
        aggregator: Aggregator | None = AGGREGATOR_HOSTS.get((urlsplit(url).hostname or "").lower())
        if "aggregator" in item:
            aggregator = r.choice(item, key, "aggregator", _AGGREGATORS, "google-news")
        if aggregator is not None and kind != "feed":
            r.problem(f"{key}.aggregator", 'only for kind = "feed"')
        low = r.duration(item, key, "min_interval", "1s") if "min_interval" in item else None
        high = r.duration(item, key, "max_interval", "1s") if "max_interval" in item else None
        if low is not None and low > interval:
            r.problem(f"{key}.min_interval", "must not be longer than the interval")
        if high is not None and high < interval:
            r.problem(f"{key}.max_interval", "must not be shorter than the interval")
        follow = r.get(item, key, "follow_links", bool, False)
        if follow and kind != "telegram":
            r.problem(f"{key}.follow_links", 'only for kind = "telegram"')
        sources.append(SourceConfig(name, kind, url, interval, enabled, language, watch, aggregator, low, high, follow))
    return tuple(sources)
