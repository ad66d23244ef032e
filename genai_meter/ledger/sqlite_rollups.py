"""The SQLite rollups: hourly sums upserted with every batch, daily sums sealed from closed days.

`rollup_hour` gets each batch's sums in the batch's own transaction. `rollup_day` is filled from
`rollup_hour` for whole days once they are over (`seal_days`, in one transaction that also moves
the `day_rollups_until_ns` watermark in `meta`); a batch or correction that touches an hour before
the watermark also adds to `rollup_day` itself, in the same transaction, so the daily sums are
always exact for days before the watermark (queries use hourly rows after it). This keeps the
write path to one rollup upsert per group instead of two. `rollup_field_day` (per day, the base
label set or one dimension's value) is filled from `rollup_day` in the same transactions: when
days are sealed, and rebuilt for a sealed day a late call or a correction touches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from genai_meter.ledger.rows import MONEY_SUMS, SUM_NAMES
from genai_meter.ledger.sqlite_schema import MASK32, field_rollup_sql, rollup_columns

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
SEAL_DAYS_PER_PASS = 7
DAY_MARK = "day_rollups_until_ns"


def _sets() -> str:
    sets = []
    for name in SUM_NAMES:
        if name in MONEY_SUMS:
            hi, lo = f"{name}_hi", f"{name}_lo"
            sets.append(f"{hi} = {hi} + excluded.{hi} + (({lo} + excluded.{lo}) >> 32)")
            sets.append(f"{lo} = ({lo} + excluded.{lo}) & {MASK32}")
        else:
            sets.append(f"{name} = {name} + excluded.{name}")
    return ", ".join(sets)


def upsert_rollup_sql(table: str) -> str:
    """INSERT ... ON CONFLICT DO UPDATE adding one group's sums (money kept normalised as hi/lo)."""
    cols = rollup_columns()
    return (f"INSERT INTO {table} (bucket, labelset, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 2))}) "
            f"ON CONFLICT (bucket, labelset) DO UPDATE SET {_sets()}")


UPSERT_HOUR = upsert_rollup_sql("rollup_hour")


def _upsert_sums_sql(table: str) -> str:
    order = ("calls", "errors", "unmetered", "invalid", *(n for n in SUM_NAMES if n.startswith("t_")), *MONEY_SUMS,
             "duration_us", "weight_micro", "unpriced")
    assert sorted(order) == sorted(SUM_NAMES)
    cols, values = [], []
    for i, name in enumerate(order, start=3):
        if name in MONEY_SUMS:
            cols += [f"{name}_hi", f"{name}_lo"]
            values += [f"?{i} >> 32", f"?{i} & {MASK32}"]
        else:
            cols.append(name)
            values.append(f"?{i}")
    return (f"INSERT INTO {table} (bucket, labelset, {', '.join(cols)}) VALUES (?1, ?2, {', '.join(values)}) "
            f"ON CONFLICT (bucket, labelset) DO UPDATE SET {_sets()}")


# The writer's upsert of one group: (bucket, labelset, calls, errors, unmetered, invalid, the five token
# sums, the seven money sums (COST_CLASSES, list_cost) as plain integers below 2^63, split into _hi/_lo
# here, duration_us, weight_micro, unpriced): the order of the calls insert's summed columns.
UPSERT_HOUR_SUMS = _upsert_sums_sql("rollup_hour")
_FIRST_MONEY = SUM_NAMES.index(MONEY_SUMS[0])
_END_MONEY = SUM_NAMES.index(MONEY_SUMS[-1]) + 1
assert SUM_NAMES[_FIRST_MONEY:_END_MONEY] == MONEY_SUMS and len(MONEY_SUMS) == 7  # contiguous (rollup_params)


def rollup_params(bucket: int, labelset: int, sums: Sequence[int]) -> tuple[int, ...]:
    """The parameters of `upsert_rollup_sql` for one group (sums may be negative: corrections)."""
    a, b, c, d, e, f, g = sums[_FIRST_MONEY:_END_MONEY]
    return (bucket, labelset, *sums[:_FIRST_MONEY], a >> 32, a & MASK32, b >> 32, b & MASK32, c >> 32, c & MASK32,
            d >> 32, d & MASK32, e >> 32, e & MASK32, f >> 32, f & MASK32, g >> 32, g & MASK32, *sums[_END_MONEY:])


def days_sealed_until(conn: sqlite3.Connection) -> int:
    """Days before this instant are complete in `rollup_day` (0: none)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (DAY_MARK,)).fetchone()
    return int(row[0]) if row else 0


def add_rollups(conn: sqlite3.Connection, groups: dict[tuple[int, int], list[int]]) -> None:
    """Add per-(hour start, labelset) sums to rollup_hour, and to rollup_day for sealed days.
    Runs inside the caller's write transaction."""
    conn.executemany(UPSERT_HOUR, [rollup_params(b, ls, s) for (b, ls), s in groups.items()])
    sealed = days_sealed_until(conn)
    days: dict[tuple[int, int], list[int]] = {}
    for (hour, labelset), sums in groups.items():
        if hour < sealed:
            day = days.setdefault((hour - hour % DAY_NS, labelset), [0] * len(SUM_NAMES))
            for i, v in enumerate(sums):
                day[i] += v
    if days:
        conn.executemany(upsert_rollup_sql("rollup_day"), [rollup_params(b, ls, s) for (b, ls), s in days.items()])
        refresh_field_days(conn, sorted({b for b, _ in days}))


def refresh_field_days(conn: sqlite3.Connection, buckets: list[int]) -> None:
    """Rebuild `rollup_field_day` of these sealed days from `rollup_day` (a late call or a correction)."""
    for day in buckets:
        conn.execute("DELETE FROM rollup_field_day WHERE field IN (SELECT DISTINCT field FROM rollup_field_day) "
                     "AND bucket = ?", (day,))
        for statement in field_rollup_sql("r.bucket = ?"):
            conn.execute(statement, (day,))


def seal_days(conn: sqlite3.Connection, now_ns: int) -> int:
    """Fold whole days before `now_ns` (a bounded number per call) from rollup_hour into rollup_day
    and move the watermark, in one IMMEDIATE transaction; returns the watermark."""
    cols = rollup_columns()
    conn.execute("BEGIN IMMEDIATE")
    try:
        until = days_sealed_until(conn)
        if until == 0:
            first = conn.execute("SELECT MIN(bucket) FROM rollup_hour").fetchone()[0]
            until = now_ns - now_ns % DAY_NS if first is None else first - first % DAY_NS
        target = min(now_ns - now_ns % DAY_NS, until + SEAL_DAYS_PER_PASS * DAY_NS)
        if target > until:
            conn.execute(f"INSERT INTO rollup_day (bucket, labelset, {', '.join(cols)}) "
                         f"SELECT bucket - bucket % {DAY_NS}, labelset, {', '.join(f'SUM({c})' for c in cols)} "
                         f"FROM rollup_hour WHERE bucket >= ? AND bucket < ? GROUP BY 1, 2 "
                         f"ON CONFLICT (bucket, labelset) DO UPDATE SET {_sets()}", (until, target))
            for statement in field_rollup_sql("r.bucket >= ? AND r.bucket < ?"):
                conn.execute(statement, (until, target))
        if target >= until:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                         "value = excluded.value", (DAY_MARK, str(max(target, until))))
        conn.execute("COMMIT")
        return max(target, until)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
