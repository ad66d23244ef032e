"""One ledger reader per server thread: the ledger's `Reader` is not thread-safe (it holds a connection).

`PerThreadReader` is a `LedgerReader` that opens a reader on first use in each thread (waitress
serves requests from a pool of threads) and closes them all on `close()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from genai_meter.ledger.model import (
    CallRow,
    Conversation,
    Coverage,
    Filters,
    Latency,
    LedgerReader,
    Metric,
    Page,
    Point,
    Ranked,
    Step,
    Totals,
)


class PerThreadReader:
    """Delegates every query to the calling thread's own reader, made by `opener`."""

    def __init__(self, opener: Callable[[], LedgerReader]) -> None:
        self._opener = opener
        self._local = threading.local()
        self._all: list[LedgerReader] = []
        self._lock = threading.Lock()
        self._fields = self._mine().fields()  # opens (and checks) one reader now

    def _mine(self) -> LedgerReader:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._opener()
            self._local.reader = reader
            with self._lock:
                self._all.append(reader)
        return reader

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
            readers, self._all = self._all, []
        for reader in readers:
            reader.close()
