"""TOML configuration to frozen values, validated at start-up. Every problem is named by file
and key; secrets are read from the environment and never printed."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from d24watch import __version__
from d24watch.errors import ConfigErrors
from d24watch.tomlfile import Reader, load_toml, parse_duration, schedule_interval, validate_cron

DEFAULT_CONFIG = "config/d24watch.toml"
DEFAULT_USER_AGENT = f"d24watch/{__version__} (+https://github.com/d24watch/d24watch)"
CHANNEL_TYPES = ("email", "slack", "webhook", "file")

SourceKind = Literal["feed", "page"]
Watch = Literal["removal"]
Mode = Literal["digest", "immediate"]
Security = Literal["none", "starttls", "tls"]
LogFormat = Literal["auto", "text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
_KINDS: dict[str, SourceKind] = {"feed": "feed", "page": "page"}
_MODES: dict[str, Mode] = {"digest": "digest", "immediate": "immediate"}
_SECURITY: dict[str, Security] = {"none": "none", "starttls": "starttls", "tls": "tls"}
_LOG_FORMATS: dict[str, LogFormat] = {"auto": "auto", "text": "text", "json": "json"}
_LOG_LEVELS: dict[str, LogLevel] = {"debug": "debug", "info": "info", "warning": "warning", "error": "error"}


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
    kind: SourceKind
    url: str
    interval: timedelta
    enabled: bool = True
    language: str | None = None
    watch: Watch | None = None


# One class per channel type, built and checked once when the config is read; senders take them as they are.


@dataclass(frozen=True, slots=True)
class EmailChannel:
    name: str
    mode: Mode
    smtp_host: str
    sender: str  # the From address (`from` in the config)
    to: tuple[str, ...]
    security: Security = "starttls"
    smtp_port: int = 587
    username: str | None = None
    password: Secret | None = None
    timeout_s: float = 30.0
    ca_file: Path | None = None
    type: Literal["email"] = field(default="email", init=False)


@dataclass(frozen=True, slots=True)
class SlackChannel:
    name: str
    mode: Mode
    webhook_url: Secret
    timeout_s: float = 10.0
    type: Literal["slack"] = field(default="slack", init=False)


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    name: str
    mode: Mode
    url: str
    secret: Secret | None = None
    timeout_s: float = 10.0
    type: Literal["webhook"] = field(default="webhook", init=False)


@dataclass(frozen=True, slots=True)
class FileChannel:
    name: str
    mode: Mode
    directory: Path
    type: Literal["file"] = field(default="file", init=False)


ChannelConfig = EmailChannel | SlackChannel | WebhookChannel | FileChannel


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

    @property
    def state_dir(self) -> Path:
        return self.database.parent

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
        sources.append(SourceConfig(name, kind, url, interval, enabled, language, watch))
    return tuple(sources)


def _read_channels(r: Reader, raw: Any, base: Path, env: Mapping[str, str]) -> tuple[ChannelConfig, ...]:
    if raw is None:
        return (FileChannel("file", "digest", base / "state/outbox"),)
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
        mode = r.choice(table, key, "mode", _MODES, "digest")
        secrets = _channel_secrets(r, key, table, _CHANNEL_KEYS[ctype] & _SECRET_KEYS, env)
        timeout = table.get("timeout")
        if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
            r.problem(f"{key}.timeout", "must be a number of seconds above zero")
            timeout = None
        channel: ChannelConfig | None
        if ctype == "email":
            channel = _email_channel(r, key, name, mode, table, secrets, base, timeout)
        elif ctype == "slack":
            channel = _slack_channel(r, key, name, mode, secrets, timeout)
        elif ctype == "webhook":
            url = table.get("url")
            channel = None
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                r.problem(f"{key}.url", "is required and must be an http(s) URL")
            else:
                channel = WebhookChannel(name, mode, url, secrets.get("secret"), float(timeout or 10))
        else:
            channel = FileChannel(name, mode, base / str(table.get("directory", "state/outbox")))
        if channel is not None:
            channels.append(channel)
    return tuple(channels)


def _channel_secrets(
    r: Reader, key: str, table: Mapping[str, Any], names: set[str], env: Mapping[str, str]
) -> dict[str, Secret]:
    """Each secret option, from the environment variable named by `<option>_env` or, less safely,
    from the file itself. A webhook's `secret` is optional: an unset variable leaves it unsigned."""
    secrets: dict[str, Secret] = {}
    for option in sorted(names):
        env_name = table.get(f"{option}_env")
        if env_name is not None:
            if not isinstance(env_name, str):
                r.problem(f"{key}.{option}_env", "must be the name of an environment variable")
            elif env.get(env_name):
                secrets[option] = Secret(env[env_name])
            elif option != "secret":
                r.problem(f"{key}.{option}_env", f"environment variable {env_name} is not set")
        elif option in table:
            secrets[option] = Secret(r.get(table, key, option, str, ""))
    return secrets


def _email_channel(
    r: Reader,
    key: str,
    name: str,
    mode: Mode,
    table: Mapping[str, Any],
    secrets: Mapping[str, Secret],
    base: Path,
    timeout: float | None,
) -> EmailChannel | None:
    problems = len(r.problems)
    for required in ("smtp_host", "from", "to"):
        if required not in table:
            r.problem(f"{key}.{required}", "is required for an email channel")
    to = table.get("to", [])
    recipients: tuple[str, ...] = ()
    if isinstance(to, str):
        recipients = (to,)
    elif isinstance(to, list) and to and all(isinstance(t, str) and "@" in t for t in to):
        recipients = tuple(to)
    else:
        r.problem(f"{key}.to", "must be a list of email addresses")
    security = r.choice(table, key, "security", _SECURITY, "starttls")
    port = table.get("smtp_port", {"tls": 465, "starttls": 587}.get(security, 25))
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        r.problem(f"{key}.smtp_port", f"must be a port number, not {port!r}")
    username = table.get("username")
    if "password" in secrets and username is None:
        r.problem(f"{key}.username", "is required when a password is given")
    ca_file = base / str(table["ca_file"]) if "ca_file" in table else None
    if ca_file is not None and not ca_file.is_file():
        r.problem(f"{key}.ca_file", f"{ca_file} is not a readable file")
    if len(r.problems) > problems:
        return None
    return EmailChannel(
        name,
        mode,
        smtp_host=str(table["smtp_host"]),
        sender=str(table["from"]),
        to=recipients,
        security=security,
        smtp_port=int(port),
        username=str(username) if username is not None else None,
        password=secrets.get("password"),
        timeout_s=float(timeout or 30),
        ca_file=ca_file,
    )


def _slack_channel(
    r: Reader, key: str, name: str, mode: Mode, secrets: Mapping[str, Secret], timeout: float | None
) -> SlackChannel | None:
    url = secrets.get("webhook_url")
    if url is None:
        r.problem(f"{key}.webhook_url_env", "a Slack channel needs webhook_url_env (or webhook_url)")
        return None
    if not url.reveal().startswith(("https://", "http://")):
        r.problem(f"{key}.webhook_url", "is not an http(s) URL")
        return None
    return SlackChannel(name, mode, url, float(timeout or 10))
