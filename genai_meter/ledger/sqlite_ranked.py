"""Ranked groupings of a range on SQLite (`ranked`, `each_group`): the statements of `sqlite_grouped` run,
and their few rows turned into `Totals`, billed units included.

When the file has billed units or flags (`sqlite_units.has_units`), the cost that ranks is the six
classes plus the units' cost: every grouping carries unit branches (the units of raw calls and held
late calls from `call_units`, of rollup parts from the unit rollups per label set, whole days included),
money as 32-bit halves like every other sum, so the rank is exact. The units themselves (quantity and
cost per unit name, flags) are read by one more grouped statement (`sqlite_grouped.unit_sums_sql`):
for the top groups alone (their keys narrow it like their sums), and for the remainder the range's
units minus the top groups', per unit name. `each_group` reads the units of every group that has any
(memory grows with the groups that have units, not with all groups) and attaches them while it streams;
those units and the streamed statement share one snapshot (a cursor keeps its snapshot after the read
transaction that started it commits).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence

from genai_meter.ledger.model import Ranked, Totals
from genai_meter.ledger.sqlite_grouped import (
    COLS,
    RAW_ONLY,
    Binds,
    Part,
    grouped_sql,
    order_sql,
    planned_parts,
    top_sql,
    unit_sums_sql,
)
from genai_meter.ledger.sqlite_late import snapshot
from genai_meter.ledger.sqlite_units import has_units
from genai_meter.ledger.units import UnitSums

Key = tuple[str, ...]
ToTotals = Callable[[Key, Sequence[int | None], UnitSums | None], Totals]
Amounts = dict[str, list[int]]  # unit name -> [quantity, cost]
PAGE = 1000


def _key(row: Sequence[object], n: int) -> Key:
    return tuple(str(v) for v in row[:n])


def unit_amounts(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
                 group_by: Sequence[str]) -> dict[Key, Amounts]:
    """Per group with billed units or flags: unit name -> [quantity, cost]."""
    b = Binds()
    sql = unit_sums_sql(parts, filters, group_by, b)
    out: dict[Key, Amounts] = {}
    if sql is None:
        return out
    n = len(group_by)
    for row in conn.execute(sql, b.values):
        name, quantity, hi, lo = row[n:]
        out.setdefault(_key(row, n), {})[name] = [quantity or 0, ((hi or 0) << 32) + (lo or 0)]
    return out


def unit_sums(amounts: Amounts | None) -> UnitSums | None:
    """The `UnitSums` of a group's amounts (None: none), names of no quantity and no cost left out."""
    if amounts is None:
        return None
    out = UnitSums()
    for name, (quantity, cost) in sorted(amounts.items()):
        if quantity or cost:
            out.add(name, quantity, cost)
    return out


def remainder(total: Amounts, top: Sequence[Amounts | None]) -> Amounts:
    """The range's units minus the top groups', per unit name."""
    rest = {name: list(v) for name, v in total.items()}
    for amounts in top:
        for name, (quantity, cost) in (amounts or {}).items():
            acc = rest.setdefault(name, [0, 0])
            acc[0] -= quantity
            acc[1] -= cost
    return rest


def ranked(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
           group_by: Sequence[str], limit: int | None, metric: str, to_totals: ToTotals) -> Ranked:
    """The top `limit` groups and the exact remainder, read in one snapshot: the top keys ranked on the
    narrow sums (`top_sql`), their full sums and units read for those keys alone, and the remainder = the
    range's total minus them (sums and units)."""
    if not parts:
        return Ranked([], None, 0, limit)
    with snapshot(conn):
        return _ranked(conn, parts, filters, group_by, limit, metric, to_totals)


def _ranked(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
            group_by: Sequence[str], limit: int | None, metric: str, to_totals: ToTotals) -> Ranked:
    n = len(group_by)
    units = has_units(conn)
    grouped_parts = planned_parts(conn, parts, filters, group_by)
    if limit is None:
        rows = list(_every(conn, grouped_parts, filters, group_by, metric, to_totals, units))
        return Ranked(rows, None, len(rows), limit)
    b = Binds()
    narrow = grouped_sql(grouped_parts, filters, group_by, b, narrow=True, units=units)
    top = conn.execute(top_sql(narrow, metric, n, max(limit, 1), b), b.values).fetchall()
    if not top:  # (at least one row otherwise: it carries the count of groups)
        return Ranked([], None, 0, limit)
    groups = top[0][n]
    keys = [_key(r, n) for r in top[:max(limit, 0)]]
    narrowed = {**filters}
    for i, g in enumerate(group_by):
        if g in RAW_ONLY or groups <= len(keys):  # every group is wanted: nothing to narrow
            continue  # (a filter on a raw field leaves out '', calls without one: the group stays whole)
        wanted = sorted({k[i] for k in keys})
        narrowed[g] = [v for v in filters[g] if v in wanted] if g in filters else wanted
    full: dict[Key, Sequence[int | None]] = {}
    top_units: dict[Key, Amounts] = {}
    if keys:
        narrowed_parts = planned_parts(conn, parts, narrowed, group_by)
        b = Binds()
        full = {_key(r, n): r[n:] for r in conn.execute(grouped_sql(narrowed_parts, narrowed, group_by, b), b.values)}
        top_units = unit_amounts(conn, narrowed_parts, narrowed, group_by) if units else {}
    rows = [to_totals(k, full[k], unit_sums(top_units.get(k))) for k in keys]
    if groups <= len(rows):
        return Ranked(rows, None, groups, limit)
    whole_parts = planned_parts(conn, parts, filters, ())
    b = Binds()
    whole = conn.execute(grouped_sql(whole_parts, filters, (), b), b.values).fetchone()
    rest = [a - sum(int(r[i] or 0) for r in (full[k] for k in keys)) for i, a in enumerate(whole)]
    rest_units = UnitSums()
    if units:
        total = unit_amounts(conn, whole_parts, filters, ()).get((), {})
        rest_units = unit_sums(remainder(total, [top_units.get(k) for k in keys])) or rest_units
    return Ranked(rows, to_totals((), rest, rest_units), groups, limit)


def _every(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
           group_by: Sequence[str], metric: str, to_totals: ToTotals, units: bool) -> Iterator[Totals]:
    """Every group of the (planned) parts, ranked, streamed a page at a time, each with its units: the units
    and the first page are read in one snapshot, which the cursor keeps to its last row."""
    b = Binds()
    n = len(group_by)
    grouped = grouped_sql(parts, filters, group_by, b, units=units)
    with snapshot(conn):
        amounts = unit_amounts(conn, parts, filters, group_by) if units else {}
        cursor = conn.execute(f"SELECT * FROM ({grouped}) ORDER BY {order_sql(metric, n, units)}", b.values)
        page = cursor.fetchmany(PAGE)
    while page:
        for r in page:
            key = _key(r, n)
            yield to_totals(key, r[n:n + len(COLS)], unit_sums(amounts.get(key)))
        page = cursor.fetchmany(PAGE)


def each_group(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
               group_by: Sequence[str], metric: str, to_totals: ToTotals) -> Iterator[Totals]:
    """Every group, ranked, streamed from the cursor a page at a time."""
    if not parts:
        return iter(())
    return _every(conn, planned_parts(conn, parts, filters, group_by), filters, group_by, metric, to_totals,
                  has_units(conn))
