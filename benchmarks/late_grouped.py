"""Prototype: late calls rolled up in groups, by a few statements per batch instead of per-row upserts
and per-day rebuilds (the write path's `add_rollups` + `refresh_field_days`).

Called in the batch's write transaction after its calls were inserted: the late calls' keys go to a
temporary table, then one grouped INSERT ... SELECT ... ON CONFLICT DO UPDATE per rollup table adds
exactly their sums: `rollup_hour` per (hour, label set), `rollup_day` per (day, label set) for sealed
days, and `rollup_field_day` per (day, '' + base labels) and per (day, dimension, value) for sealed
days (deltas added to the rows, where `refresh_field_days` deletes and rebuilds each touched day
from all of its `rollup_day` rows). Money is summed as 32-bit halves and kept normalised, as the seal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from genai_meter.ledger.rows import LABEL_FIELDS, MONEY_SUMS, SUM_NAMES
from genai_meter.ledger.sqlite_rollups import (
    DAY_NS,
    HOUR_NS,
    add_sets,
    call_sums,
    days_sealed_until,
    hours_sealed_until,
)
from genai_meter.ledger.sqlite_schema import rollup_columns


def _upsert(conflict: str) -> str:
    return f" ON CONFLICT ({conflict}) DO UPDATE SET {add_sets()}"


_COLS = ", ".join(rollup_columns())
_LATE = ("FROM temp.late_keys k JOIN calls c ON c.end_ns = k.end_ns AND c.trace_id = k.trace_id "
         "AND c.span_id = k.span_id JOIN labelsets l ON l.id = c.labelset")
_SUMS = call_sums("c.", "SUM(l.status <> 'ok')")
HOURS = (f"INSERT INTO rollup_hour (bucket, labelset, {_COLS}) SELECT c.end_ns - c.end_ns % {HOUR_NS}, c.labelset, "
         f"{_SUMS} {_LATE} GROUP BY 1, 2" + _upsert("bucket, labelset"))
DAYS = (f"INSERT INTO rollup_day (bucket, labelset, {_COLS}) SELECT c.end_ns - c.end_ns % {DAY_NS}, c.labelset, "
        f"{_SUMS} {_LATE} WHERE c.end_ns < ? GROUP BY 1, 2" + _upsert("bucket, labelset"))
FIELD_BASE = (f"INSERT INTO rollup_field_day (bucket, field, value, {_COLS}) SELECT c.end_ns - c.end_ns % {DAY_NS}, "
              f"'', json_array({', '.join(f'l.{f}' for f in LABEL_FIELDS)}), {_SUMS} {_LATE} WHERE c.end_ns < ? "
              f"GROUP BY 1, 3" + _upsert("field, bucket, value"))
FIELD_DIMS = (f"INSERT INTO rollup_field_day (bucket, field, value, {_COLS}) SELECT c.end_ns - c.end_ns % {DAY_NS}, "
              f"j.key, j.value, {_SUMS} {_LATE}, json_each(l.dims) j WHERE c.end_ns < ? AND j.type = 'text' "
              f"GROUP BY 1, 2, 3" + _upsert("field, bucket, value"))


def late_grouped(conn: sqlite3.Connection, params: Sequence[tuple[Any, ...]]) -> int:
    """Roll the batch's late calls (insert parameters; those ending before the hourly watermark) up in
    groups, in the caller's transaction; returns how many were late."""
    hours, days = hours_sealed_until(conn), days_sealed_until(conn)
    late = [(p[0], p[1], p[2]) for p in params if p[0] < hours]
    if not late:
        return 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS late_keys (end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, "
                 "span_id BLOB NOT NULL, PRIMARY KEY (end_ns, trace_id, span_id)) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.late_keys")
    conn.executemany("INSERT OR IGNORE INTO temp.late_keys VALUES (?, ?, ?)", late)
    conn.execute(HOURS)
    if min(k[0] for k in late) < days:
        for statement in (DAYS, FIELD_BASE, FIELD_DIMS):
            conn.execute(statement, (days,))
    return len(late)


def rollup_digest(conn: sqlite3.Connection, days: list[int]) -> list[tuple[Any, ...]]:
    """Every rollup row of these days (hour, day and field-day tables) as (table, key..., SUM_NAMES values),
    money pairs joined (`rollup_field_day` keeps its low halves unnormalised: same value, other pair),
    in key order (rows of zero calls left out: a rebuild drops them, an upsert of deltas keeps them)."""
    cols = rollup_columns()
    pairs = [(cols.index(f"{n}_hi"), cols.index(f"{n}_lo")) if n in MONEY_SUMS else (cols.index(n), -1)
             for n in SUM_NAMES]
    rows: list[tuple[Any, ...]] = []
    for day in days:
        for table, keys in (("rollup_hour", "bucket, labelset"), ("rollup_day", "bucket, labelset"),
                            ("rollup_field_day", "field, bucket, value")):
            width = len(keys.split(", "))
            for row in conn.execute(f"SELECT {keys}, {', '.join(cols)} FROM {table} WHERE bucket >= ? AND "
                                    f"bucket < ? AND calls <> 0 ORDER BY {keys}", (day, day + DAY_NS)):
                sums = row[width:]
                rows.append((table, *row[:width], *((sums[a] << 32) + sums[b] if b >= 0 else sums[a]
                                                    for a, b in pairs)))
    return rows
