"""Structured log events: `event key=value` lines on a terminal, one JSON object per line when
asked. Every known secret is redacted from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from d24watch.secret import redact

_FIELD = re.compile(r"(\w+)=(%[-#0-9.]*[sdifgr])")


def event_fields(record: logging.LogRecord) -> tuple[str, dict[str, str]] | None:
    """(event, fields) of a record logged as `log.info("event key=%s other=%d", a, b)`, read from
    its format string so that values with spaces stay whole; None for any other message."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple):
        return None
    event, _, rest = record.msg.partition(" ")
    pairs = _FIELD.findall(rest)
    if not event.isidentifier() or len(pairs) != len(record.args) or _FIELD.sub("", rest).strip():
        return None
    return event, {key: spec % (arg,) for (key, spec), arg in zip(pairs, record.args, strict=True)}


_RESERVED = frozenset({"time", "level", "event", "message", "traceback"})


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if (not value or any(c in value for c in ' "=\n')) else value


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        error = self.formatException(record.exc_info) if record.exc_info else None
        parsed = event_fields(record)
        if self.as_json:
            fields: dict[str, object] = {"time": when, "level": record.levelname.lower()}
            if parsed:
                fields["event"] = parsed[0]
                for key, value in parsed[1].items():
                    # A field may not overwrite the line's own keys: `event=` becomes `event_field`.
                    fields[f"{key}_field" if key in _RESERVED else key] = value
            else:
                fields["event"] = record.name
                fields["message"] = message
            if error:
                fields["traceback"] = error
            return redact(json.dumps(fields, ensure_ascii=False))
        if parsed:
            message = " ".join([parsed[0], *(f"{k}={_quoted(v)}" for k, v in parsed[1].items())])
        line = f"{when} {record.levelname.lower():7} {message}"
        if error:
            line += "\n" + error
        return redact(line)


def setup_logging(fmt: str = "auto", level: str = "info", *, debug: bool = False) -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    for noisy in ("httpx", "httpcore", "apscheduler", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
