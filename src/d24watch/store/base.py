"""The one connection to the database: opening it (WAL, a busy timeout), transactions, the meta
table, and the three markers every store method carries, which say how it touches the database
and map `sqlite3.Error` to StorageError:

- `@reads`: a query; runs anywhere.
- `@in_transaction`: a write that must run inside the caller's `transaction()` (it raises at once
  otherwise), so that what belongs together is committed together.
- `@own_transaction`: a write that commits by itself (joining the caller's transaction, if any)."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import sqlite_utils

from d24watch.errors import StorageError

P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound="Base")


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def reads(fn: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
    """A query: sqlite3 errors become StorageError."""

    @functools.wraps(fn)
    def run(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from None

    return run


def in_transaction(fn: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
    """A write that belongs to the caller's transaction; called outside one, it is a bug."""

    @functools.wraps(fn)
    def run(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if not self._depth:
            raise RuntimeError(f"Store.{fn.__name__} must run inside Store.transaction()")
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._failed("write to", exc) from None

    return run


def own_transaction(fn: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
    """A write committed by itself, or with the caller's transaction when there is one."""

    @functools.wraps(fn)
    def run(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.transaction():
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise self._failed("write to", exc) from None

    return run


class Base:
    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 30) -> None:
        self.path = path
        try:
            if not readonly:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                f"file:{path}?mode=ro" if readonly else str(path),
                uri=readonly,
                isolation_level=None,
                timeout=busy_timeout_s,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)  # migrations and dict-shaped queries
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    def _failed(self, verb: str, exc: sqlite3.Error) -> StorageError:
        return StorageError(f"cannot {verb} the database {self.path}: {exc}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction (BEGIN IMMEDIATE: the write lock is taken at once); nested calls join
        the outer one, and nothing of it is kept unless all of it is."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._failed("write to", exc) from None
        self._depth = 1
        try:
            yield
        except sqlite3.Error as exc:
            self._depth = 0
            self._rollback()
            raise self._failed("write to", exc) from None
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._failed("write to", exc) from None

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _rollback(self) -> None:
        # SQLite may have rolled back already (as it does on a full disk); nothing is half-written.
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")

    @reads
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None
