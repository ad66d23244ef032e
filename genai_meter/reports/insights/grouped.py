"""Tables of groups that are never silently incomplete: every group, or the top groups by cost and one
last row, `(other)`, holding the exact sums of all the others (`Table.remainder` says how many and
the declared limit), so a table's rows always add up to the report's total.

The ledger ranks and sums (`LedgerReader.ranked`, `each_group`, `series_ranked`); this module only
turns its rows into table rows. A table of every group for a CSV export streams them
(`Table.stream`): memory holds a page, whatever the number of groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from genai_meter.ledger.model import Filters, LedgerReader, Point, Ranked, Step, Totals
from genai_meter.ledger.parts import step_starts
from genai_meter.reports.insights.buckets import fill
from genai_meter.reports.render.numbers import integer
from genai_meter.reports.render.tables import Cell, Remainder, Table

OTHER = "(other)"  # the key cells of a remainder row (the JSON table's `remainder` marks the row)
Row = Callable[[Totals], list[Cell]]


def remainder_note(groups: int, limit: int, per: str = "") -> str:
    return (f"The top {integer(limit)} groups by cost{per}, and the other {integer(groups)} summed in the last "
            f"row {OTHER}: the rows add up to the total.")


def rest_key(width: int) -> tuple[str, ...]:
    return (OTHER,) * width


def fill_ranked(table: Table, ranked: Ranked, width: int, row: Row) -> None:
    """`table`'s rows from a ranked grouping: its top groups, then the remainder row if any."""
    table.rows = [row(t) for t in ranked.rows]
    if ranked.rest is not None and ranked.limit is not None:
        ranked.rest.key = rest_key(width)
        table.rows.append(row(ranked.rest))
        table.remainder = Remainder(ranked.groups - len(ranked.rows), ranked.limit)
        table.note = remainder_note(ranked.groups - len(ranked.rows), ranked.limit)


def stream_groups(table: Table, reader: LedgerReader, start_ns: int, end_ns: int, filters: Filters,
                  group_by: Sequence[str], row: Row) -> None:
    """Make `table` stream every group of the range, ranked by cost (read when the table is rendered)."""
    def every() -> Iterator[list[Cell]]:
        return (row(t) for t in reader.each_group(start_ns, end_ns, filters, group_by))
    table.stream = every


def step_limit(limit: int, start_ns: int, end_ns: int, step: Step, utc_offset_s: int) -> int:
    """Groups per step of a grouped series so that the table holds about `limit` rows (at least 1)."""
    return max(1, limit // len(step_starts(start_ns, end_ns, step, utc_offset_s)))


def series_table(table: Table, reader: LedgerReader, start_ns: int, end_ns: int, step: Step, filters: Filters,
                 group_by: Sequence[str], limit: int | None, utc_offset_s: int,
                 row: Callable[[int, Totals], list[Cell]], per_step: int | None = None) -> None:
    """Fill `table` with a grouped series, step by step: per step the top groups (`per_step`, or enough
    for about `limit` rows in all) and the remainder, or every group of every step streamed (no limit)."""
    if limit is None:
        def every() -> Iterator[list[Cell]]:
            for first, ranked in reader.series_ranked(start_ns, end_ns, step, filters, (), None, utc_offset_s):
                del ranked  # the steps that hold calls; their groups are streamed one step at a time
                stop = min(end_ns, _next(first, start_ns, end_ns, step, utc_offset_s))
                for t in reader.each_group(max(first, start_ns), stop, filters, group_by):
                    yield row(first, t)
        table.stream = every
        return
    per_step = per_step or step_limit(limit, start_ns, end_ns, step, utc_offset_s)
    left = 0
    points: list[tuple[int, Totals]] = []
    for first, ranked in reader.series_ranked(start_ns, end_ns, step, filters, group_by, per_step, utc_offset_s):
        points += [(first, t) for t in ranked.rows]
        if ranked.rest is not None:
            ranked.rest.key = rest_key(len(group_by))
            points.append((first, ranked.rest))
            left += ranked.groups - len(ranked.rows)
    if left:
        table.remainder = Remainder(left, per_step)
        table.note = (f"Per {step}: the top {integer(per_step)} groups by cost and the others summed in a row "
                      f"{OTHER} ({integer(left)} groups in all): each step's rows add up to its total.")
    else:  # every group of every step: zeros where a group had no call, when that stays within the limit
        series: dict[tuple[str, ...], list[Point]] = {}
        for first, t in points:
            series.setdefault(t.key, []).append(Point(first, t))
        starts = step_starts(start_ns, end_ns, step, utc_offset_s)
        if len(series) * len(starts) <= limit:
            series = fill(series, starts, grouped=True)
        points = sorted(((p.start_ns, p.totals) for pts in series.values() for p in pts),
                        key=lambda x: (x[0], x[1].key))
    table.rows = [row(first, t) for first, t in points]


def _next(first: int, start_ns: int, end_ns: int, step: Step, utc_offset_s: int) -> int:
    """The start of the step after the one starting at `first`."""
    starts = step_starts(first, end_ns, step, utc_offset_s)
    return starts[1] if len(starts) > 1 else end_ns
