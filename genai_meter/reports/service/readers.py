"""One ledger reader per busy server thread: the ledger's `Reader` is not thread-safe (it holds a connection).

`PerThreadReader` is a `LedgerReader` that gives the calling thread a reader of its own on first use
(waitress serves requests from a pool of threads) until the thread gives it back (`release()`, at the
end of each request): readers, each with its connection and its label-set dictionary, are kept for
requests that are running, not for every thread (most of which wait in the admission queue or idle).
At most `keep` idle readers are kept for reuse; `close()` closes them all. A thread that cannot open
the ledger raises a `LedgerUnavailable` (503): the ledger's `LedgerFileGone` when the file is not
there, else `LedgerNotOpen` (unreadable, not a ledger); it tries again on its next call. Every call
first checks the thread's time limit (`ledger.deadline`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from genai_meter.ledger import deadline
from genai_meter.ledger.model import (
    CallRecords,
    CallRow,
    Conversation,
    Coverage,
    Filters,
    Latency,
    LedgerReader,
    LedgerUnavailable,
    Metric,
    Page,
    Point,
    Ranked,
    Step,
    Totals,
)
from genai_meter.ledger.urls import LedgerOpenError

NOT_OPEN = "the ledger file cannot be opened (unreadable or not a ledger)"


class LedgerNotOpen(LedgerUnavailable):
    """This thread could not open the ledger; `why` is a short public phrase (the message has the details)."""

    why = NOT_OPEN


class PerThreadReader:
    """Delegates every query to the calling thread's reader: its own until `release()`, made by `opener`
    or taken from the idle ones."""

    def __init__(self, opener: Callable[[], LedgerReader], keep: int = 8) -> None:
        self._opener = opener
        self._keep = keep
        self._local = threading.local()
        self._all: list[LedgerReader] = []
        self._idle: list[LedgerReader] = []
        self._lock = threading.Lock()
        self._fields = self._mine().fields()  # opens (and checks) one reader now
        self.release()

    def _mine(self) -> LedgerReader:
        deadline.check()
        reader = getattr(self._local, "reader", None)
        if reader is None:
            with self._lock:
                reader = self._idle.pop() if self._idle else None
            if reader is None:
                try:
                    reader = self._opener()
                except LedgerUnavailable:  # the file is gone (LedgerFileGone): said as such
                    raise
                except LedgerOpenError as exc:
                    raise LedgerNotOpen(str(exc)) from None
                with self._lock:
                    self._all.append(reader)
            self._local.reader = reader
        return reader

    def release(self) -> None:
        """The calling thread is done with its reader (its request ended): kept idle for the next, or closed."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            return
        self._local.reader = None
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(reader)
                return
            self._all.remove(reader)
        reader.close()

    def open_readers(self) -> int:
        """Readers open now (in use and idle)."""
        with self._lock:
            return len(self._all)

    def fields(self) -> tuple[str, ...]:
        return self._fields

    def totals(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Totals]:
        return self._mine().totals(start_ns, end_ns, filters, group_by)

    def series(self, start_ns: int, end_ns: int, step: Step, filters: Filters,
               group_by: Sequence[str] = (), utc_offset_s: int = 0) -> dict[tuple[str, ...], list[Point]]:
        return self._mine().series(start_ns, end_ns, step, filters, group_by, utc_offset_s)

    def top(self, start_ns: int, end_ns: int, by: str, metric: Literal["cost", "tokens", "calls"],
            k: int, filters: Filters) -> list[Totals]:
        return self._mine().top(start_ns, end_ns, by, metric, k, filters)

    def ranked(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: Metric = "cost") -> Ranked:
        return self._mine().ranked(start_ns, end_ns, filters, group_by, limit, metric)

    def each_group(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   metric: Metric = "cost") -> Iterator[Totals]:
        return self._mine().each_group(start_ns, end_ns, filters, group_by, metric)

    def series_ranked(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str],
                      limit: int | None, utc_offset_s: int = 0) -> Iterator[tuple[int, Ranked]]:
        return self._mine().series_ranked(start_ns, end_ns, step, filters, group_by, limit, utc_offset_s)

    def events(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None,
               cursor: str = "", limit: int = 50) -> Page:
        return self._mine().events(filters, start_ns=start_ns, end_ns=end_ns, cursor=cursor, limit=limit)

    def call_records(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None,
                     cursor: str = "", limit: int = 5000) -> CallRecords:
        return self._mine().call_records(filters, start_ns=start_ns, end_ns=end_ns, cursor=cursor, limit=limit)

    def conversations(self, start_ns: int, end_ns: int, filters: Filters, *, limit: int = 50,
                      cursor: str = "") -> tuple[list[Conversation], str]:
        return self._mine().conversations(start_ns, end_ns, filters, limit=limit, cursor=cursor)

    def conversation(self, conversation: str, filters: Filters) -> list[CallRow]:
        return self._mine().conversation(conversation, filters)

    def latency(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Latency]:
        return self._mine().latency(start_ns, end_ns, filters, group_by)

    def dimension_values(self, name: str, start_ns: int, end_ns: int, filters: Filters,
                         limit: int = 1000) -> list[str]:
        return self._mine().dimension_values(name, start_ns, end_ns, filters, limit)

    def coverage(self) -> Coverage:
        return self._mine().coverage()

    def close(self) -> None:
        with self._lock:
            readers, self._all, self._idle = self._all, [], []
        for reader in readers:
            reader.close()
