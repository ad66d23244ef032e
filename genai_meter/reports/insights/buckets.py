"""Series without holes: every step of the requested range, with zeros where no call fell.

The ledger answers only the steps that hold calls (`LedgerReader.series`); a chart or a CSV of those
points skips time. `filled_series` adds a zero point for every other step of [start, end), for
every group, at the ledger's own step boundaries (`ledger.parts.step_starts`: minutes and hours on
the clock, days, weeks and months from local midnight in the offset). Beyond `FILL_LIMIT` points
(many groups x many steps) the answer is left as the ledger gave it: bounded memory wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_meter.ledger import deadline
from genai_meter.ledger.model import Filters, LedgerReader, Point, Step, Totals
from genai_meter.ledger.parts import step_starts

FILL_LIMIT = 200_000  # most points a filled answer may hold (groups x steps)
_TOKEN_CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning")


def zero_point(start_ns: int, key: tuple[str, ...]) -> Point:
    return Point(start_ns, Totals(key=key, tokens=dict.fromkeys(_TOKEN_CLASSES, 0),
                                  cost_pico=dict.fromkeys((*_TOKEN_CLASSES, "request"), 0)))


def fill(series: dict[tuple[str, ...], list[Point]], starts: Sequence[int],
         grouped: bool) -> dict[tuple[str, ...], list[Point]]:
    """`series` with a zero point at every one of `starts` a group lacks (oldest first).

    Ungrouped (`grouped` False), the single key () is filled even when the ledger had no call."""
    if not grouped and not series:
        series = {(): []}
    if len(series) * len(starts) > FILL_LIMIT:
        return series
    out: dict[tuple[str, ...], list[Point]] = {}
    known = set(starts)
    for key, points in deadline.checked(series.items()):
        by_start = {p.start_ns: p for p in points}
        out[key] = [by_start.get(s) or zero_point(s, key) for s in starts]
        out[key] += [p for p in points if p.start_ns not in known]  # never drop a point the ledger gave
        out[key].sort(key=lambda p: p.start_ns)
    return out


def filled_series(reader: LedgerReader, start_ns: int, end_ns: int, step: Step, filters: Filters,
                  group_by: Sequence[str] = (), utc_offset_s: int = 0) -> dict[tuple[str, ...], list[Point]]:
    """`reader.series(...)` with every step of [start_ns, end_ns) present in every group."""
    series = reader.series(start_ns, end_ns, step, filters, group_by, utc_offset_s)
    return fill(series, step_starts(start_ns, end_ns, step, utc_offset_s), bool(group_by))
