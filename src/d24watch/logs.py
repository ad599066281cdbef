"""Structured log events: `event key=value` lines on a terminal, one JSON object per line when
asked. Every known secret is redacted from every line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from d24watch.config import redact


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        error = self.formatException(record.exc_info) if record.exc_info else None
        if self.as_json:
            event, _, rest = message.partition(" ")
            fields: dict[str, object] = {"time": when, "level": record.levelname.lower(), "event": event}
            for pair in rest.split(" "):
                key, sep, value = pair.partition("=")
                if sep:
                    fields[key] = value
                elif pair:
                    fields.setdefault("message", "")
                    fields["message"] = f"{fields['message']} {pair}".strip()
            if error:
                fields["traceback"] = error
            return redact(json.dumps(fields, ensure_ascii=False))
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
