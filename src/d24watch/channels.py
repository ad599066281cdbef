"""The [notify] channels: one frozen class per channel type (email, Slack, webhook, file), read and
checked once when the config is loaded; every sender takes its own class as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from d24watch.secret import Secret
from d24watch.tomlfile import Reader

CHANNEL_TYPES = ("email", "slack", "webhook", "file")
Mode = Literal["digest", "immediate"]
Security = Literal["none", "starttls", "tls"]
_MODES: dict[str, Mode] = {"digest": "digest", "immediate": "immediate"}
_SECURITY: dict[str, Security] = {"none": "none", "starttls": "starttls", "tls": "tls"}


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


def read_channels(r: Reader, raw: Any, base: Path, env: Mapping[str, str]) -> tuple[ChannelConfig, ...]:
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
