"""A time limit on the ledger queries of the current thread (the report service sets one per request).

`set_deadline(at)` (a `time.monotonic()` instant, None for none) applies to the calling thread only.
Interruptible SQLite read connections call `sqlite_progress` every few thousand VM steps
(`open_read`): past the deadline it returns 1 and SQLite stops the statement ("interrupted", an
`sqlite3.OperationalError`). ClickHouse queries carry `max_execution_time` set to the time left
(`clickhouse_settings`). `check()` raises `QueryTimeout` between queries, and `checked(items)` every
few thousand items of the Python loops that add up query rows. Callers turn either into their own
answer (`passed()` says whether an interrupted statement ran out of time).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

PROGRESS_STEPS = 20_000  # SQLite VM steps between two deadline checks (a few hundred per millisecond)
CHECK_EVERY = 4096  # items of a Python loop between two deadline checks
_local = threading.local()
T = TypeVar("T")


class QueryTimeout(Exception):
    """A ledger query of this thread ran past its deadline."""


def set_deadline(at: float | None) -> None:
    """Queries of the calling thread stop at `at` (`time.monotonic()`); None lifts the limit."""
    _local.at = at


def deadline() -> float | None:
    return getattr(_local, "at", None)


def passed() -> bool:
    """True when the calling thread has a deadline and it is over."""
    at = getattr(_local, "at", None)
    return at is not None and time.monotonic() >= at


def check() -> None:
    """Raise `QueryTimeout` when the calling thread's deadline is over."""
    if passed():
        raise QueryTimeout("the ledger query ran past the request's time limit")


def checked(items: Iterable[T]) -> Iterator[T]:
    """`items`, raising `QueryTimeout` at every CHECK_EVERY-th item once the thread's deadline has passed
    (no cost per item when the thread has no deadline)."""
    if getattr(_local, "at", None) is None:
        yield from items
        return
    for i, item in enumerate(items):
        if not i % CHECK_EVERY:
            check()
        yield item


def sqlite_progress() -> int:
    """SQLite progress handler: nonzero (stop the statement) once the thread's deadline is over."""
    return 1 if passed() else 0


def clickhouse_settings() -> dict[str, int]:
    """`max_execution_time` (whole seconds left, at least 1) when the thread has a deadline, else nothing."""
    at = getattr(_local, "at", None)
    if at is None:
        return {}
    return {"max_execution_time": max(1, math.ceil(at - time.monotonic()))}
