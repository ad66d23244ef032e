"""Late calls of the SQLite ledger (ending before the hourly watermark W): held, then rolled up in groups.

A batch's commit stores a late call in `calls` like any other and its identity in `late_calls`
(schema version 10), and nothing else: rolling each batch up in its own commit (per-row upserts into
`rollup_hour`, `rollup_day`, `rollup_field_day` and the unit rollups, scattered over the days the
batch covers) dirtied about seven times the pages of its inserts. `fold` rolls the held calls up with
a few grouped statements and deletes them from `late_calls`, in the caller's write transaction: the
writer thread's upkeep (`fold_pass`, every seal interval, bounded by `FOLD_ROWS_PER_PASS`), and
re-pricing and pruning before they correct or delete rolled-up calls (`fold(conn)`: all of them).

Invariant (each change in one transaction): a call that ends before W is in the rollups or in
`late_calls`, never both. Readers add the held calls of a rollup part's range to its rollup rows, in
the same statement or read snapshot (`held_calls`, `HELD_UNITS`), so every answer counts an
acknowledged call exactly once, from its commit on, whatever folds meanwhile. Which rollups a fold
adds a call to is decided when it folds (the day watermark then), so folds and seal passes commute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from genai_meter.ledger.rows import LABEL_FIELDS
from genai_meter.ledger.sqlite_rollups import DAY_NS, HOUR_NS, add_sets, call_sums, days_sealed_until
from genai_meter.ledger.sqlite_schema import MASK32, rollup_columns
from genai_meter.ledger.sqlite_units import HELD_UNITS, UNIT_ADD_SETS

FOLD_ROWS_PER_PASS = 50_000  # held calls one upkeep pass folds, about (~30 us each, holding the write lock)
NO_BOUND = 2**63 - 1
HOLD = "INSERT INTO late_calls (end_ns, trace_id, span_id) VALUES (?, ?, ?)"


def held_calls(start: str, end: str) -> str:
    """A source shaped like `calls` holding the held calls that end in [start, end) (SQL expressions,
    e.g. placeholders): `late_calls` read first, then each call by its key."""
    return (f"(SELECT c.* FROM late_calls h CROSS JOIN calls c ON c.end_ns = h.end_ns AND c.trace_id = h.trace_id "
            f"AND c.span_id = h.span_id WHERE h.end_ns >= {start} AND h.end_ns < {end})")


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """The statements inside read one state of the file (a read transaction on an autocommit connection;
    inside a transaction already, that one): a rollup range and its held calls, never a fold between."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def hold(conn: sqlite3.Connection, keys: Sequence[tuple[int, bytearray, bytearray]]) -> None:
    """Hold newly stored late calls (their keys) for `fold`, in the batch's own transaction."""
    conn.executemany(HOLD, keys)


_COLS = ", ".join(rollup_columns())
_SUMS = call_sums("c.", "SUM(l.status <> 'ok')")
_FROM = ("FROM late_calls h CROSS JOIN calls c ON c.end_ns = h.end_ns AND c.trace_id = h.trace_id "
         "AND c.span_id = h.span_id JOIN labelsets l ON l.id = c.labelset")
_HELD = f"{_FROM} WHERE h.end_ns < :bound"
_KEYED = f" ON CONFLICT (bucket, labelset) DO UPDATE SET {add_sets()}"
_FIELD = f" ON CONFLICT (field, bucket, value) DO UPDATE SET {add_sets()}"
FOLD_HOURS = (f"INSERT INTO rollup_hour (bucket, labelset, {_COLS}) SELECT c.end_ns - c.end_ns % {HOUR_NS}, "
              f"c.labelset, {_SUMS} {_HELD} GROUP BY 1, 2" + _KEYED)
FOLD_DAYS = (f"INSERT INTO rollup_day (bucket, labelset, {_COLS}) SELECT c.end_ns - c.end_ns % {DAY_NS}, c.labelset, "
             f"{_SUMS} {_HELD} AND h.end_ns < :days GROUP BY 1, 2" + _KEYED)
# the field rows of a fold go through a delta table: what they add to the planner's statistics
# (`field_day_rows`: rows new to each day and field, and their calls) is counted before they are added
FIELD_DELTA = (f"CREATE TEMP TABLE IF NOT EXISTS field_delta (bucket INTEGER NOT NULL, field TEXT NOT NULL, "
               f"value TEXT NOT NULL, {', '.join(c + ' INTEGER NOT NULL' for c in rollup_columns())})")
_TO_DELTA = f"INSERT INTO temp.field_delta (bucket, field, value, {_COLS}) SELECT c.end_ns - c.end_ns % {DAY_NS}, "
FOLD_FIELD_BASE = (f"{_TO_DELTA}'', json_array({', '.join(f'l.{f}' for f in LABEL_FIELDS)}), {_SUMS} {_HELD} "
                   "AND h.end_ns < :days GROUP BY 1, 3")
FOLD_FIELD_DIMS = (f"{_TO_DELTA}d.field, d.value, {_SUMS} {_FROM} JOIN labelset_dims d ON d.labelset = c.labelset "
                   "WHERE h.end_ns < :bound AND h.end_ns < :days GROUP BY 1, 2, 3")
FIELD_STATS_ADD = ("INSERT INTO field_day_rows (field, bucket, rows, calls) SELECT t.field, t.bucket, "
                   "SUM(r.field IS NULL), SUM(t.calls) FROM (SELECT field, bucket, value, SUM(calls) AS calls "
                   "FROM temp.field_delta GROUP BY 1, 2, 3) t LEFT JOIN rollup_field_day r ON r.field = t.field "
                   "AND r.bucket = t.bucket AND r.value = t.value GROUP BY 1, 2 ON CONFLICT (field, bucket) "
                   "DO UPDATE SET rows = rows + excluded.rows, calls = calls + excluded.calls")
FIELD_DELTA_ADD = (f"INSERT INTO rollup_field_day (bucket, field, value, {_COLS}) SELECT bucket, field, value, "
                   f"{_COLS} FROM temp.field_delta WHERE true" + _FIELD)


def _fold_units(table: str, bucket_ns: int, days: bool) -> str:
    return (f"INSERT INTO {table} (bucket, labelset, unit, quantity, cost_hi, cost_lo) "
            f"SELECT u.end_ns - u.end_ns % {bucket_ns}, c.labelset, u.unit, SUM(u.quantity), "
            f"SUM(u.cost >> 32) + (SUM(u.cost & {MASK32}) >> 32), SUM(u.cost & {MASK32}) & {MASK32} "
            f"FROM {HELD_UNITS} WHERE h.end_ns < :bound{' AND h.end_ns < :days' if days else ''} "
            f"GROUP BY 1, c.labelset, u.unit ON CONFLICT (bucket, labelset, unit) DO UPDATE SET {UNIT_ADD_SETS}")


FOLD_UNIT_HOURS = _fold_units("rollup_unit_hour", HOUR_NS, False)
FOLD_UNIT_DAYS = _fold_units("rollup_unit_day", DAY_NS, True)


def fold(conn: sqlite3.Connection, limit: int | None = None) -> bool:
    """Roll the held late calls up (at most about `limit` of them, the earliest; all when None) and
    release them, in the caller's write transaction: `rollup_hour`, and for days before the day watermark
    `rollup_day` and `rollup_field_day` (the base label set and each dimension; `field_day_rows` counts what
    they add), and the unit rollups likewise, by grouped statements. True when none is left held."""
    first = conn.execute("SELECT end_ns FROM late_calls ORDER BY end_ns LIMIT 1").fetchone()
    if first is None:
        return True
    bound = NO_BOUND
    if limit is not None:
        row = conn.execute("SELECT end_ns FROM late_calls ORDER BY end_ns LIMIT 1 OFFSET ?", (limit,)).fetchone()
        if row is not None:
            bound = max(row[0], first[0] + 1)
    marks = {"bound": bound, "days": days_sealed_until(conn)}
    conn.execute(FOLD_HOURS, marks)
    units = conn.execute("SELECT 1 FROM units LIMIT 1").fetchone() is not None
    if units:
        conn.execute(FOLD_UNIT_HOURS, marks)
    if first[0] < marks["days"]:
        for statement in (FOLD_DAYS, *((FOLD_UNIT_DAYS,) if units else ())):
            conn.execute(statement, marks)
        _fold_fields(conn, marks)
    conn.execute("DELETE FROM late_calls WHERE end_ns < ?", (bound,))
    return bound == NO_BOUND


def _fold_fields(conn: sqlite3.Connection, marks: dict[str, int]) -> None:
    """The held calls of sealed days into `rollup_field_day`, and their rows and calls into `field_day_rows`."""
    conn.execute(FIELD_DELTA)
    conn.execute("DELETE FROM temp.field_delta")
    conn.execute(FOLD_FIELD_BASE, marks)
    conn.execute(FOLD_FIELD_DIMS, marks)
    conn.execute(FIELD_STATS_ADD)
    conn.execute(FIELD_DELTA_ADD)
    conn.execute("DELETE FROM temp.field_delta")


def fold_pass(conn: sqlite3.Connection) -> bool:
    """One bounded `fold` in its own IMMEDIATE transaction (the writer thread's upkeep); True when none is
    left held."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = fold(conn, FOLD_ROWS_PER_PASS)
        conn.execute("COMMIT")
        return done
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
