"""Reading a TOML file into checked values, shared by the config and the watchlist: the file itself,
a reader that collects every problem under its key, durations and cron expressions. Pure but for
reading the one file it is given."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from d24watch.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


class Reader:
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

    def choice(self, table: Mapping[str, Any], prefix: str, key: str, allowed: Mapping[str, Any], default: str) -> Any:
        """One of `allowed`'s keys, returned as its value (a Literal); the default when it is not."""
        value = self.get(table, prefix, key, str, default)
        if value not in allowed:
            names = ", ".join(f'"{a}"' for a in allowed)
            self.problem(f"{prefix}.{key}", f"must be {_or(names)}, not {value!r}")
            return allowed[default]
        return allowed[value]

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


def _or(names: str) -> str:
    """`"a", "b" or "c"` from `"a", "b", "c"`."""
    head, _, last = names.rpartition(", ")
    return f"{head} or {last}" if head else last
