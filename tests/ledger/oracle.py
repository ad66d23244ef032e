"""The reference answers: totals computed in plain Python from the stored rows (no SQL, no rollups)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from genai_meter.config import Config
from genai_meter.ledger.model import Entry, Totals
from genai_meter.ledger.query import to_totals
from genai_meter.ledger.rows import LABEL_FIELDS, SUM_NAMES, Row, RowBuilder
from genai_meter.ledger.units import UnitSums


def stored_rows(entries: Iterable[Entry], config: Config) -> list[Row]:
    """The rows a ledger keeps of `entries`: the first of each (trace id, span id)."""
    seen: set[tuple[bytes, bytes]] = set()
    out = []
    for row in RowBuilder(config).rows(list(entries)):
        if (row.trace_id, row.span_id) not in seen:
            seen.add((row.trace_id, row.span_id))
            out.append(row)
    return out


def value(row: Row, name: str) -> str:
    if name in LABEL_FIELDS:
        return row.labels[LABEL_FIELDS.index(name)]
    if name == "conversation":
        return row.conversation
    if name == "user":
        return row.user
    return dict(row.dims).get(name, "")


def matches(row: Row, filters: Mapping[str, Sequence[str]]) -> bool:
    for name, allowed in filters.items():
        v = value(row, name)
        if v not in allowed or (name in ("conversation", "user") and v == ""):
            return False
    return True


def group_sums(rows: Iterable[Row], start: int, end: int, filters: Mapping[str, Sequence[str]],
               group_by: Sequence[str] = ()) -> dict[tuple[str, ...], list[int]]:
    """SUM_NAMES sums per group of the rows in [start, end) matching `filters`."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for row in rows:
        if start <= row.end_ns < end and matches(row, filters):
            sums = groups.setdefault(tuple(value(row, g) for g in group_by), [0] * len(SUM_NAMES))
            for i, v in enumerate(row.sums()):
                sums[i] += v
    return groups


def totals(rows: Iterable[Row], start: int, end: int, filters: Mapping[str, Sequence[str]],
           group_by: Sequence[str] = ()) -> list[Totals]:
    groups = group_sums(rows, start, end, filters, group_by)
    if not groups and not group_by:
        groups[()] = [0] * len(SUM_NAMES)
    return [to_totals(k, v) for k, v in sorted(groups.items())]


def group_units(rows: Iterable[Row], start: int, end: int, filters: Mapping[str, Sequence[str]],
                group_by: Sequence[str] = ()) -> dict[tuple[str, ...], UnitSums]:
    """The billed units and flags per group of the rows in [start, end) matching `filters` (groups with some)."""
    groups: dict[tuple[str, ...], UnitSums] = {}
    for row in rows:
        if row.units and start <= row.end_ns < end and matches(row, filters):
            sums = groups.setdefault(tuple(value(row, g) for g in group_by), UnitSums())
            for name, quantity, cost in row.units:
                sums.add(name, quantity, cost)
    return groups
