"""TOML configuration to frozen values, validated at start-up. Every problem is named by file
and key; secrets are read from the environment and never printed."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from d24watch import __version__
from d24watch.errors import ConfigError

DEFAULT_CONFIG = "config/d24watch.toml"
DEFAULT_USER_AGENT = f"d24watch/{__version__} (+https://github.com/d24watch/d24watch)"
CHANNEL_TYPES = ("email", "slack", "webhook", "file")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Secret:
    """A value that prints as `***`. Every Secret made is remembered so logs can redact it."""

    known: set[str] = set()  # noqa: RUF012 - process-wide registry of values to redact

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            Secret.known.add(value)
        Secret.known.update(_secret_parts(value))

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret_parts(value: str) -> set[str]:
    """The pieces of a secret URL that a receiver may echo on their own (a Slack webhook's path, a
    token segment, a password): redacted too. Plain words such as `services` are left alone."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return set()
    pieces = {parts.path + (f"?{parts.query}" if parts.query else ""), parts.query, parts.password or ""}
    pieces.update(seg for seg in parts.path.split("/") if any(c.isdigit() for c in seg) or len(seg) >= 20)
    return {p for p in pieces if len(p) >= 8 and p != "/"}


def redact(text: str) -> str:
    """`text` with every known secret value replaced by ***, longest first."""
    for value in sorted(Secret.known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "***")
    return text


def parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (use 90s, 30m, 2h or 1d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def schedule_interval(schedule: str) -> timedelta | None:
    """A digest schedule given as a duration (`12h`: every twelve hours) instead of a cron
    expression; None when it is not one."""
    try:
        interval = parse_duration(schedule)
    except ValueError:
        return None
    return interval if interval.total_seconds() > 0 else None


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


def validate_cron(expr: str) -> None:
    """Raise ValueError unless `expr` is a five-field crontab expression of numbers, `*`, lists,
    ranges and steps."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"{expr!r} is not a cron expression of five fields (minute hour day month weekday)")
    for part, (name, lo, hi) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"{expr!r}: bad step {step!r} in the {name} field")
            if base == "*":
                continue
            ends = base.split("-")
            if len(ends) > 2 or not all(e.isdigit() for e in ends):
                raise ValueError(f"{expr!r}: {item!r} is not valid in the {name} field")
            if any(not lo <= int(e) <= hi for e in ends):
                raise ValueError(f"{expr!r}: {item!r} is outside {lo}-{hi} in the {name} field")


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


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: str
    url: str
    interval: timedelta
    enabled: bool = True
    language: str | None = None
    watch: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    type: str
    mode: str
    options: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)


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
    log_format: str = "auto"
    log_level: str = "info"

    @property
    def state_dir(self) -> Path:
        return self.database.parent

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)


class _Reader:
    """Walks one TOML document, collecting every problem with its key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[ConfigError] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigError(str(self.path), key, message))

    def table(self, data: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
        value = data.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.problem(key, "must be a table")
            return {}
        for unknown in sorted(set(value) - allowed):
            self.problem(f"{key}.{unknown}", "unknown key")
        return value

    def get(self, table: Mapping[str, Any], prefix: str, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = False if isinstance(value, bool) and bool not in kinds else isinstance(value, kinds)
        if not ok:
            names = " or ".join(k.__name__.replace("str", "string").replace("int", "integer") for k in kinds)
            self.problem(f"{prefix}.{key}", f"must be a {names}, not {value!r}")
            return default
        return value

    def duration(self, table: Mapping[str, Any], prefix: str, key: str, default: str) -> timedelta:
        raw = self.get(table, prefix, key, str, default)
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            self.problem(f"{prefix}.{key}", str(exc))
            return parse_duration(default)
        if value <= timedelta(0):
            self.problem(f"{prefix}.{key}", "must be longer than zero")
            return parse_duration(default)
        return value

    def positive(self, table: Mapping[str, Any], prefix: str, key: str, default: int) -> int:
        value: int = self.get(table, prefix, key, int, default)
        if value <= 0:
            self.problem(f"{prefix}.{key}", f"must be a positive integer, not {value}")
            return default
        return value


def resolve_config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("D24WATCH_CONFIG") or DEFAULT_CONFIG)


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(str(path), "", "cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"invalid TOML ({exc})") from None


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
}
_SOURCE = {"name", "kind", "url", "interval", "enabled", "language", "watch"}
_CHANNEL_KEYS = {
    "email": {
        "smtp_host",
        "smtp_port",
        "security",
        "username",
        "password",
        "from",
        "to",
        "timeout",
        "ca_file",
    },
    "slack": {"webhook_url", "timeout"},
    "webhook": {"url", "secret", "timeout"},
    "file": {"directory"},
}
_SECRET_KEYS = {"password", "webhook_url", "secret"}


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config at `path`; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    data = load_toml(path)
    r = _Reader(path)
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
    )
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

    server = r.table(data, "server", {"listen"})
    listen = r.get(server, "server", "listen", str, "127.0.0.1:8024")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        r.problem("server.listen", f"{listen!r} is not HOST:PORT")

    delivery = r.table(data, "delivery", {"retry_initial", "retry_max"})
    retry_initial = r.duration(delivery, "delivery", "retry_initial", "1m")
    retry_max = r.duration(delivery, "delivery", "retry_max", "6h")

    channels = _read_channels(r, data.get("notify"), base, env)

    evidence = r.table(data, "evidence", {"recheck"})
    recheck_raw = r.get(evidence, "evidence", "recheck", list, ["1d", "7d", "30d"])
    recheck: list[timedelta] = []
    for i, item in enumerate(recheck_raw):
        try:
            recheck.append(parse_duration(str(item)))
        except ValueError as exc:
            r.problem(f"evidence.recheck[{i}]", str(exc))

    log = r.table(data, "log", {"format", "level"})
    log_format = r.get(log, "log", "format", str, "auto")
    if log_format not in ("auto", "text", "json"):
        r.problem("log.format", f'must be "auto", "text" or "json", not {log_format!r}')
    log_level = r.get(log, "log", "level", str, "info")
    if log_level not in ("debug", "info", "warning", "error"):
        r.problem("log.level", f'must be "debug", "info", "warning" or "error", not {log_level!r}')

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
    )


class ConfigErrors(ConfigError):
    """Several problems at once; the message is the first, `problems` holds them all."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.path, first.key, first.problem)
        more = len(problems) - 1
        if more:
            self.args = (f"{first} (and {more} more problem{'s' if more > 1 else ''}; run check-config)",)


def _read_sources(r: _Reader, raw: Any) -> tuple[SourceConfig, ...]:
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
        kind = r.get(item, key, "kind", str, "feed")
        if kind not in ("feed", "page"):
            r.problem(f"{key}.kind", f'must be "feed" or "page", not {kind!r}')
        url = r.get(item, key, "url", str, "")
        if not re.match(r"^https?://[^/\s]+", url):
            r.problem(f"{key}.url", f"{url!r} is not an http(s) URL")
        interval = r.duration(item, key, "interval", "30m")
        if interval < timedelta(seconds=1):
            r.problem(f"{key}.interval", "must be at least 1s")
        watch = item.get("watch")
        if watch is not None and (watch != "removal" or kind != "page"):
            r.problem(f"{key}.watch", 'only "removal", and only for kind = "page"')
        language = r.get(item, key, "language", str, None)
        enabled = r.get(item, key, "enabled", bool, True)
        sources.append(SourceConfig(name, kind, url, interval, enabled, language, watch))
    return tuple(sources)


def _read_channels(r: _Reader, raw: Any, base: Path, env: Mapping[str, str]) -> tuple[ChannelConfig, ...]:
    if raw is None:
        return (ChannelConfig("file", "file", "digest", {"directory": base / "state/outbox"}),)
    if not isinstance(raw, dict):
        r.problem("notify", "must be a table of channels ([notify.NAME])")
        return ()
    channels: list[ChannelConfig] = []
    for name, table in raw.items():
        key = f"notify.{name}"
        if not isinstance(table, dict):
            r.problem(key, "must be a table")
            continue
        ctype = table.get("type", name if name in CHANNEL_TYPES else None)
        if ctype not in CHANNEL_TYPES:
            r.problem(f"{key}.type", f"must be one of {', '.join(CHANNEL_TYPES)}")
            continue
        allowed = _CHANNEL_KEYS[ctype] | {"type", "mode", "enabled"} | {f"{k}_env" for k in _SECRET_KEYS}
        for unknown in sorted(set(table) - allowed):
            r.problem(f"{key}.{unknown}", "unknown key")
        if not r.get(table, key, "enabled", bool, True):
            continue
        mode = r.get(table, key, "mode", str, "digest")
        if mode not in ("digest", "immediate"):
            r.problem(f"{key}.mode", f'must be "digest" or "immediate", not {mode!r}')
        options: dict[str, Any] = {}
        secrets: dict[str, Secret] = {}
        for option in _CHANNEL_KEYS[ctype]:
            if option in _SECRET_KEYS:
                env_name = table.get(f"{option}_env")
                if env_name is not None:
                    if not isinstance(env_name, str):
                        r.problem(f"{key}.{option}_env", "must be the name of an environment variable")
                    elif env.get(env_name):
                        secrets[option] = Secret(env[env_name])
                    elif option != "secret":
                        r.problem(f"{key}.{option}_env", f"environment variable {env_name} is not set")
                elif option in table:
                    literal = r.get(table, key, option, str, "")
                    secrets[option] = Secret(literal)
            elif option in table:
                options[option] = table[option]
        _check_channel(r, key, ctype, options, secrets)
        if ctype == "file":
            options["directory"] = base / str(options.get("directory", "state/outbox"))
        if "ca_file" in options:
            options["ca_file"] = base / str(options["ca_file"])
            if not options["ca_file"].is_file():
                r.problem(f"{key}.ca_file", f"{options['ca_file']} is not a readable file")
        channels.append(ChannelConfig(name, ctype, mode, options, secrets))
    return tuple(channels)


def _check_channel(r: _Reader, key: str, ctype: str, options: dict[str, Any], secrets: dict[str, Secret]) -> None:
    if ctype == "email":
        for required in ("smtp_host", "from", "to"):
            if required not in options:
                r.problem(f"{key}.{required}", "is required for an email channel")
        to = options.get("to", [])
        if isinstance(to, str):
            options["to"] = [to]
        elif not (isinstance(to, list) and to and all(isinstance(t, str) and "@" in t for t in to)):
            r.problem(f"{key}.to", "must be a list of email addresses")
        security = options.setdefault("security", "starttls")
        if security not in ("none", "starttls", "tls"):
            r.problem(f"{key}.security", f'must be "none", "starttls" or "tls", not {security!r}')
        port = options.setdefault("smtp_port", {"tls": 465, "starttls": 587}.get(str(security), 25))
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            r.problem(f"{key}.smtp_port", f"must be a port number, not {port!r}")
        if "password" in secrets and "username" not in options:
            r.problem(f"{key}.username", "is required when a password is given")
    elif ctype == "slack":
        if "webhook_url" not in secrets:
            r.problem(f"{key}.webhook_url_env", "a Slack channel needs webhook_url_env (or webhook_url)")
        elif not secrets["webhook_url"].reveal().startswith(("https://", "http://")):
            r.problem(f"{key}.webhook_url", "is not an http(s) URL")
    elif ctype == "webhook":
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            r.problem(f"{key}.url", "is required and must be an http(s) URL")
    if "timeout" in options and (not isinstance(options["timeout"], int | float) or options["timeout"] <= 0):
        r.problem(f"{key}.timeout", "must be a number of seconds above zero")
