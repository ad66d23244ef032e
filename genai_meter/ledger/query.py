"""The one query interface (`LedgerReader`) over any backend's `Source`: planning and exact merging.

A backend only answers a few primitive questions (`Source`); this module decides which parts of a
range come from the daily rollups, the hourly rollups or the raw calls, assigns the rows to series
steps and merges the integer sums, so every backend gives the same answer to the last digit.
Rollups serve the bucket-aligned middle of a range; the unaligned edges, and every query that
filters or groups by `conversation` or `user` (not in rollups), read raw calls.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol

from genai_meter.ledger import deadline
from genai_meter.ledger.model import (
    BASE_FIELDS,
    CallKey,
    CallRecords,
    CallRow,
    Conversation,
    Coverage,
    Filters,
    Latency,
    Metric,
    Page,
    Point,
    Ranked,
    Step,
    Totals,
)
from genai_meter.ledger.parts import HOUR_NS, Table, plan, step_starts
from genai_meter.ledger.ranking import metric_columns, rank_groups
from genai_meter.ledger.rows import COST_CLASSES, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.units import UnitSums

RAW_ONLY = frozenset({"conversation", "user"})
AggRow = tuple[int, tuple[str, ...], Sequence[int]]  # (bucket start or 0, group key, SUM_NAMES sums)
UnitRow = tuple[int, tuple[str, ...], str, int, int]  # (bucket start or 0, group key, unit, quantity, cost pico)
_N = len(SUM_NAMES)


class Source(Protocol):
    """What a backend answers; filters arrive validated, values as lists of strings."""

    def fields(self) -> tuple[str, ...]: ...

    def rollups_before_ns(self) -> tuple[int, int]:
        """(W: the hourly rollups hold exactly the calls that end before W, which need not be hour-aligned;
        the daily rollups are complete for the days before this)."""

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        """Sums of calls in [start, end) of `table` per group (and per bucket: minute for raw when
        `by_time`, else the table's bucket; 0 when not `by_time`). Rollup ranges are bucket-aligned."""

    def aggregate_units(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                        by_time: bool) -> Iterable[UnitRow]:
        """`aggregate` for the billed units and flags (`ledger.units`): per group (and bucket) and unit."""

    def durations(self, start_ns: int, end_ns: int, filters: Filters,
                  group_by: Sequence[str]) -> Iterable[tuple[tuple[str, ...], int]]:
        """(group key, duration in microseconds) of every raw call in the range."""

    def calls(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: tuple[int, bytes, bytes] | None,
              limit: int, conversation: str | None = None) -> list[CallRow]:
        """Raw calls newest first (oldest first when `conversation` is given), below the `before` position."""

    def call_records(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: CallKey | None,
                     limit: int) -> CallRecords:
        """`calls` (newest first, below `before`) as raw columns; `next_cursor` left empty."""

    def conversation_groups(self, start_ns: int, end_ns: int, filters: Filters, before: tuple[int, str] | None,
                            limit: int) -> list[Conversation]:
        """Conversations with a call in the range, ordered by (last_ns, conversation) descending."""

    def coverage(self) -> Coverage: ...

    def close(self) -> None: ...


_AT = {name: i for i, name in enumerate(SUM_NAMES)}
_TOKENS = [_AT[f"t_{c}"] for c in TOKEN_CLASSES]
_COSTS = [_AT[f"c_{c}"] for c in COST_CLASSES]
(_CALLS, _ERRORS, _UNPRICED, _UNMETERED, _INVALID, _LIST_COST, _DURATION, _WEIGHT) = (
    _AT[n] for n in ("calls", "errors", "unpriced", "unmetered", "invalid", "list_cost", "duration_us", "weight_micro"))


def to_totals(key: tuple[str, ...], sums: Sequence[int], units: UnitSums | None = None) -> Totals:
    """The `Totals` of a group from its SUM_NAMES sums."""
    return Totals(key=key, calls=sums[_CALLS], errors=sums[_ERRORS], unpriced=sums[_UNPRICED],
                  unmetered=sums[_UNMETERED], invalid=sums[_INVALID],
                  tokens={c: sums[i] for c, i in zip(TOKEN_CLASSES, _TOKENS)},
                  cost_pico={c: sums[i] for c, i in zip(COST_CLASSES, _COSTS)}, list_cost_pico=sums[_LIST_COST],
                  duration_s_sum=sums[_DURATION] / 1_000_000, weighted_calls=sums[_WEIGHT] / 1_000_000,
                  units=units if units is not None else UnitSums())


def _add(into: list[int], sums: Sequence[int]) -> None:
    for i in range(_N):
        into[i] += sums[i]


def encode_cursor(parts: Sequence[object]) -> str:
    return ":".join(p.hex() if isinstance(p, bytes) else str(p) for p in parts)


MAX_RECORDS = 20_000  # calls per page of `call_records`


def _call_position(cursor: str) -> CallKey | None:
    """The position a calls cursor (`events`, `call_records`) names, None for ""; ValueError naming `cursor`."""
    if not cursor:
        return None
    try:
        end_text, trace, span = cursor.split(":")
        return int(end_text), bytes.fromhex(trace), bytes.fromhex(span)
    except ValueError:
        raise ValueError(f"cursor: not a cursor of this ledger: {cursor!r}") from None


class Reader:
    """`LedgerReader` over a `Source`. Not thread-safe: one per thread (each holds a connection)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def fields(self) -> tuple[str, ...]:
        return self.source.fields()

    def _check(self, filters: Filters, group_by: Sequence[str] = ()) -> dict[str, list[str]]:
        known = set(self.source.fields())
        for name in list(filters) + list(group_by):
            if name not in known:
                raise ValueError(f"unknown field {name!r} (known: {', '.join(sorted(known))})")
        clean: dict[str, list[str]] = {}
        for name, values in filters.items():
            if isinstance(values, str) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"filter {name!r} takes a list of strings")
            clean[name] = list(values)
        return clean

    def _rows(self, start_ns: int, end_ns: int, filters: dict[str, list[str]], group_by: Sequence[str],
              hour_ok: bool, day_ok: bool, by_time: bool) -> tuple[list[AggRow], list[UnitRow]]:
        """The sums and the unit sums of the range, read from the same parts of the same plan."""
        rollups = not (RAW_ONLY & (set(filters) | set(group_by)))
        hour_ok, day_ok = hour_ok and rollups, day_ok and rollups
        hours_before, days_before = self.source.rollups_before_ns()
        parts = plan(start_ns, end_ns, hour_ok, day_ok, hours_before, days_before)
        rows = self._read(parts, filters, group_by, by_time)
        if any(table == "hour" and e > hours_before for table, _, e in parts) \
                and self.source.rollups_before_ns()[0] != hours_before:
            # a seal pass added to the partial hour's row while we read raw calls from W: read again without
            # that row (nothing a seal pass changes: hour rows before its hour, raw calls, days before the mark)
            aligned = hours_before - hours_before % HOUR_NS
            rows = self._read(plan(start_ns, end_ns, hour_ok, day_ok, aligned, days_before), filters, group_by,
                              by_time)
        return rows

    def _read(self, parts: list[tuple[Table, int, int]], filters: dict[str, list[str]], group_by: Sequence[str],
              by_time: bool) -> tuple[list[AggRow], list[UnitRow]]:
        sums = [r for table, s, e in parts for r in self.source.aggregate(table, s, e, filters, group_by, by_time)]
        units = [r for table, s, e in parts
                 for r in self.source.aggregate_units(table, s, e, filters, group_by, by_time)]
        return sums, units

    def _groups(self, start_ns: int, end_ns: int, clean: dict[str, list[str]], group_by: Sequence[str]
                ) -> tuple[dict[tuple[str, ...], list[int]], dict[tuple[str, ...], UnitSums]]:
        """SUM_NAMES sums and billed units per group of the range."""
        groups: dict[tuple[str, ...], list[int]] = {}
        rows, unit_rows = self._rows(start_ns, end_ns, clean, group_by, True, True, False)
        for _, key, sums in deadline.checked(rows):
            _add(groups.setdefault(key, [0] * _N), sums)
        units: dict[tuple[str, ...], UnitSums] = {}
        for _, key, name, quantity, cost in unit_rows:
            units.setdefault(key, UnitSums()).add(name, quantity, cost)
        return groups, units

    def totals(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Totals]:
        clean = self._check(filters, group_by)
        if getattr(self.source, "ranked", None) is not None:  # ranked decides: the engine, or Python with units
            rows = sorted(self.ranked(start_ns, end_ns, clean, group_by, None).rows, key=lambda t: t.key)
            return rows or ([] if group_by else [to_totals((), [0] * _N)])
        groups, units = self._groups(start_ns, end_ns, clean, group_by)
        if not groups and not group_by:
            return [Totals(key=(), tokens=dict.fromkeys(TOKEN_CLASSES, 0), cost_pico=dict.fromkeys(COST_CLASSES, 0))]
        return [to_totals(k, v, units.get(k)) for k, v in deadline.checked(sorted(groups.items()))]

    def series(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str] = (),
               utc_offset_s: int = 0) -> dict[tuple[str, ...], list[Point]]:
        clean = self._check(filters, group_by)
        if utc_offset_s % 60:
            raise ValueError("utc_offset_s must be whole minutes")
        starts = step_starts(start_ns, end_ns, step, utc_offset_s)
        hour_ok = step != "1m" and utc_offset_s % 3600 == 0
        day_ok = step in ("1d", "1w", "1mo") and utc_offset_s == 0
        groups: dict[tuple[str, ...], dict[int, list[int]]] = {}
        rows, unit_rows = self._rows(start_ns, end_ns, clean, group_by, hour_ok, day_ok, True)
        for bucket, key, sums in deadline.checked(rows):
            point = starts[bisect.bisect_right(starts, max(bucket, start_ns)) - 1]
            _add(groups.setdefault(key, {}).setdefault(point, [0] * _N), sums)
        units: dict[tuple[tuple[str, ...], int], UnitSums] = {}
        for bucket, key, name, quantity, cost in unit_rows:
            point = starts[bisect.bisect_right(starts, max(bucket, start_ns)) - 1]
            units.setdefault((key, point), UnitSums()).add(name, quantity, cost)
        return {key: [Point(p, to_totals(key, s, units.get((key, p)))) for p, s in sorted(points.items())]
                for key, points in deadline.checked(sorted(groups.items()))}

    def top(self, start_ns: int, end_ns: int, by: str, metric: Literal["cost", "tokens", "calls"], k: int,
            filters: Filters) -> list[Totals]:
        return self.ranked(start_ns, end_ns, filters, (by,), max(k, 0), metric).rows

    def _engine_parts(self, start_ns: int, end_ns: int, clean: dict[str, list[str]], group_by: Sequence[str],
                      hour_ok: bool = True, day_ok: bool = True
                      ) -> tuple[list[tuple[Table, int, int]], tuple[int, int] | None]:
        """The plan of a range answered in the engine, and the marks to check after reading (None: none
        to check). Rollup hours are read up to W's hour when the raw calls of [that hour, W) are kept: a
        seal pass meanwhile only adds to hours from there on, read from raw calls. Else (a prune cut into
        that hour) the partial hour's row is read and raw calls from W: the caller reads again if W moved."""
        rollups = not (RAW_ONLY & (set(clean) | set(group_by)))
        hour_ok, day_ok = hour_ok and rollups, day_ok and rollups
        marks = self.source.rollups_before_ns()
        hours_before, days_before = marks
        aligned = hours_before - hours_before % HOUR_NS
        if aligned == hours_before or (self.source.coverage().raw_since_ns or 0) <= aligned:
            return plan(start_ns, end_ns, hour_ok, day_ok, aligned, days_before), None
        return plan(start_ns, end_ns, hour_ok, day_ok, hours_before, days_before), marks

    def _engine_ranks(self, start_ns: int, end_ns: int, clean: dict[str, list[str]],
                      name: str) -> Callable[..., Any] | None:
        """The source's engine method `name` when it answers this range: the range holds no billed units
        or flags, or the source ranks them too (`ranks_units`); None: ranked here (`rank_groups`)."""
        engine = getattr(self.source, name, None)
        if engine is None or getattr(self.source, "ranks_units", False):
            return engine
        return None if self._has_units(start_ns, end_ns, clean) else engine

    def ranked(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: Metric = "cost") -> Ranked:
        clean = self._check(filters, group_by)
        metric_columns(metric)
        engine = self._engine_ranks(start_ns, end_ns, clean, "ranked")
        if engine is None:
            return rank_groups(*self._groups(start_ns, end_ns, clean, group_by), limit, metric, to_totals)
        while True:
            parts, marks = self._engine_parts(start_ns, end_ns, clean, group_by)
            ranked: Ranked = engine(parts, clean, group_by, limit, metric)
            if marks is None or self.source.rollups_before_ns() == marks:  # no seal pass meanwhile
                return ranked

    def each_group(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   metric: Metric = "cost") -> Iterator[Totals]:
        clean = self._check(filters, group_by)
        metric_columns(metric)
        engine = self._engine_ranks(start_ns, end_ns, clean, "each_group")
        if engine is None:
            return iter(rank_groups(*self._groups(start_ns, end_ns, clean, group_by), None, metric, to_totals).rows)
        parts, marks = self._engine_parts(start_ns, end_ns, clean, group_by)
        if marks is not None:  # a streamed answer cannot be read again: every group, checked, then streamed
            return iter(self.ranked(start_ns, end_ns, clean, group_by, None, metric).rows)
        groups: Iterator[Totals] = engine(parts, clean, group_by, metric)
        return groups

    def _has_units(self, start_ns: int, end_ns: int, clean: dict[str, list[str]]) -> bool:
        """Whether calls of the range carry billed units or flags: the statements of a source without
        `ranks_units` rank the six classes only, so such ranges are ranked here, units included."""
        parts, _ = self._engine_parts(start_ns, end_ns, clean, ())
        return any(True for table, s, e in parts for _ in self.source.aggregate_units(table, s, e, clean, (), False))

    def series_ranked(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str],
                      limit: int | None, utc_offset_s: int = 0) -> Iterator[tuple[int, Ranked]]:
        clean = self._check(filters, group_by)
        if utc_offset_s % 60:
            raise ValueError("utc_offset_s must be whole minutes")
        starts = step_starts(start_ns, end_ns, step, utc_offset_s)
        engine = getattr(self.source, "series_ranked", None)
        if engine is not None and getattr(self.source, "ranks_units", False):  # one statement for every step
            hour_ok = step != "1m" and utc_offset_s % 3600 == 0  # a rollup row lies within one step
            day_ok = step in ("1d", "1w", "1mo") and utc_offset_s == 0
            parts, marks = self._engine_parts(start_ns, end_ns, clean, group_by, hour_ok, day_ok)
            if marks is None:
                yield from engine(parts, clean, group_by, limit, step, utc_offset_s)
                return
        for i, first in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else end_ns
            ranked = self.ranked(max(first, start_ns), min(stop, end_ns), filters, group_by, limit)
            if ranked.groups:
                yield first, ranked

    def events(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None, cursor: str = "",
               limit: int = 50) -> Page:
        clean = self._check(filters)
        limit = max(1, min(limit, 1000))
        rows = self.source.calls(clean, start_ns, end_ns, _call_position(cursor), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        nxt = encode_cursor((last.end_ns, last.trace_id, last.span_id)) if more and last else ""
        return Page(rows, nxt)

    def call_records(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None,
                     cursor: str = "", limit: int = 5000) -> CallRecords:
        clean = self._check(filters)
        limit = max(1, min(limit, MAX_RECORDS))
        records = self.source.call_records(clean, start_ns, end_ns, _call_position(cursor), limit + 1)
        if len(records.rows) > limit:
            del records.rows[limit:]
            last = records.rows[-1]
            records.next_cursor = encode_cursor(last[:3])
        return records

    def conversations(self, start_ns: int, end_ns: int, filters: Filters, *, limit: int = 50,
                      cursor: str = "") -> tuple[list[Conversation], str]:
        clean = self._check(filters)
        before: tuple[int, str] | None = None
        if cursor:
            last_text, _, conv = cursor.partition(":")
            try:
                before = (int(last_text), bytes.fromhex(conv).decode())
            except ValueError:
                raise ValueError(f"cursor: not a cursor of this ledger: {cursor!r}") from None
        limit = max(1, min(limit, 1000))
        rows = self.source.conversation_groups(start_ns, end_ns, clean, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = f"{rows[-1].last_ns}:{rows[-1].conversation.encode().hex()}" if more and rows else ""
        return rows, nxt

    def conversation(self, conversation: str, filters: Filters) -> list[CallRow]:
        clean = self._check(filters)
        return self.source.calls(clean, None, None, None, 100_000, conversation=conversation)

    def latency(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Latency]:
        clean = self._check(filters, group_by)
        groups: dict[tuple[str, ...], list[int]] = {}
        for key, us in deadline.checked(self.source.durations(start_ns, end_ns, clean, group_by)):
            groups.setdefault(key, []).append(us)
        out = []
        for key, values in deadline.checked(sorted(groups.items())):
            values.sort()
            n = len(values)

            def rank(q: float, values: list[int] = values, n: int = n) -> float:
                return values[max(0, math.ceil(q * n) - 1)] / 1_000_000

            out.append(Latency(key, n, sum(values) / n / 1_000_000, rank(0.5), rank(0.95), rank(0.99)))
        return out

    def dimension_values(self, name: str, start_ns: int, end_ns: int, filters: Filters, limit: int = 1000) -> list[str]:
        values = [t.key[0] for t in self.totals(start_ns, end_ns, filters, (name,))]
        return sorted(v for v in values if v != "")[:limit]

    def coverage(self) -> Coverage:
        return self.source.coverage()

    def close(self) -> None:
        self.source.close()


__all__ = ["BASE_FIELDS", "Reader", "Source", "plan", "step_starts", "to_totals"]
