"""Secrets from the config (webhook URLs, passwords): values that print as `***`, and redaction of
every known one from any text that leaves the process (errors, logs, status, digests)."""

from __future__ import annotations

from urllib.parse import urlsplit


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
