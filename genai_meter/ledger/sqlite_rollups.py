"""The SQLite rollups: hourly sums sealed from raw calls behind a watermark, daily sums from closed days.

`rollup_hour` holds exactly the calls that end before the hourly watermark W (`hour_rollups_until_ns`
in `meta`; not hour-aligned: the row of hour floor_hour(W) holds the calls in [that hour, W)). The
write path only inserts calls; a call that ends before W (read in the batch's own transaction) is
*late*: held in `late_calls` and folded into the rollups in groups later (`sqlite_late`; readers add
the held calls meanwhile). A seal pass (`seal`: the writer
thread every few seconds, up to a grace period before now) rolls the calls in [W, until) up with one
INSERT ... SELECT ... GROUP BY label set per hour, and moves W, in one IMMEDIATE transaction; one pass
takes at most about `SEAL_ROWS_PER_PASS` calls, so a backlog never holds the write lock for long (the
next pass goes on). Doing this in SQL, in bulk, costs the write path nothing per call.

`rollup_day` is filled from `rollup_hour` for whole days before floor_day(W) (`seal_days`, which seals
hours first, in the same transaction that moves the `day_rollups_until_ns` watermark); a fold of late
calls or a correction that touches an hour before that watermark also adds to `rollup_day` itself, in
its own transaction, so the daily sums are always exact for days before the watermark (queries use
hourly rows after it). `rollup_field_day` (per day, the base label set or one dimension's value) is
filled from `rollup_day` in the same transactions: when days are sealed, and by the deltas of a fold
or a correction (`add_rollups`, re-pricing) for a sealed day. The day watermark never passes W, so a
seal pass never touches a sealed day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from genai_meter.ledger import sqlite_units
from genai_meter.ledger.rows import MONEY_SUMS, SUM_NAMES
from genai_meter.ledger.sqlite_schema import HOUR_MARK, MASK32, field_rollup_sql, rollup_columns

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
SEAL_DAYS_PER_PASS = 7
SEAL_ROWS_PER_PASS = 50_000  # calls one hourly seal pass rolls up, about (~2 us each, holding the write lock)
DAY_MARK = "day_rollups_until_ns"


def add_sets() -> str:
    """The SET clause of an upsert adding `excluded`'s sums to a rollup row (money kept normalised as hi/lo)."""
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
            f"ON CONFLICT (bucket, labelset) DO UPDATE SET {add_sets()}")


UPSERT_HOUR = upsert_rollup_sql("rollup_hour")


_FIRST_MONEY = SUM_NAMES.index(MONEY_SUMS[0])
_END_MONEY = SUM_NAMES.index(MONEY_SUMS[-1]) + 1
assert SUM_NAMES[_FIRST_MONEY:_END_MONEY] == MONEY_SUMS and len(MONEY_SUMS) == 7  # contiguous (rollup_params)


def rollup_params(bucket: int, labelset: int, sums: Sequence[int]) -> tuple[int, ...]:
    """The parameters of `upsert_rollup_sql` for one group (sums may be negative: corrections)."""
    a, b, c, d, e, f, g = sums[_FIRST_MONEY:_END_MONEY]
    return (bucket, labelset, *sums[:_FIRST_MONEY], a >> 32, a & MASK32, b >> 32, b & MASK32, c >> 32, c & MASK32,
            d >> 32, d & MASK32, e >> 32, e & MASK32, f >> 32, f & MASK32, g >> 32, g & MASK32, *sums[_END_MONEY:])


def _mark(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_mark(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (key, str(value)))


def days_sealed_until(conn: sqlite3.Connection) -> int:
    """Days before this instant are complete in `rollup_day` (0: none)."""
    return _mark(conn, DAY_MARK)


def hours_sealed_until(conn: sqlite3.Connection) -> int:
    """W: `rollup_hour` holds exactly the calls that end before this instant."""
    return _mark(conn, HOUR_MARK)


def call_sums(alias: str, errors: str, split_money: bool = True) -> str:
    """The rollup columns summed over a group of calls (`alias`: their table's, e.g. "c."): `errors` counts
    the failed ones; unmetered and invalid count non-empty strings; money as normalised 32-bit halves, summed
    as halves (`split_money`: exact for any sum) or whole (faster; SQLite's integer overflow past 2^63)."""
    sums = []
    for name in SUM_NAMES:
        col = f"{alias}{name}"
        if name == "calls":
            sums.append("COUNT(*)")
        elif name == "errors":
            sums.append(errors)
        elif name in ("unmetered", "invalid"):
            sums.append(f"SUM({col} <> '')")
        elif name in MONEY_SUMS and split_money:
            lo = f"SUM({col} & {MASK32})"
            sums += [f"SUM({col} >> 32) + ({lo} >> 32)", f"{lo} & {MASK32}"]
        elif name in MONEY_SUMS:
            sums += [f"SUM({col}) >> 32", f"SUM({col}) & {MASK32}"]
        else:
            sums.append(f"SUM({col})")
    return ", ".join(sums)


def _seal_sql(split_money: bool) -> str:
    """INSERT ... SELECT adding the calls in [?1, ?2) to rollup_hour per (hour, label set), in one statement
    (errors: the calls of a label set whose status is not ok, the flag looked up by id); `call_sums`."""
    sums = call_sums("", "COUNT(*) * (SELECT status <> 'ok' FROM labelsets WHERE id = labelset)", split_money)
    return (f"INSERT INTO rollup_hour (bucket, labelset, {', '.join(rollup_columns())}) "
            f"SELECT end_ns - end_ns % {HOUR_NS}, labelset, {sums} FROM calls "
            f"WHERE end_ns >= ?1 AND end_ns < ?2 GROUP BY 1, 2 ON CONFLICT (bucket, labelset) "
            f"DO UPDATE SET {add_sets()}")


SEAL_HOURS = _seal_sql(split_money=False)
SEAL_HOURS_SPLIT = _seal_sql(split_money=True)


def _seal_range(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> None:
    """Add the calls in [start, end) to rollup_hour with one grouped statement (in the caller's transaction)."""
    try:
        conn.execute("SAVEPOINT seal_hours")
        conn.execute(SEAL_HOURS, (start_ns, end_ns))
    except sqlite3.OperationalError as exc:  # a money sum past 2^63 (over $9.2M in an hour and label set)
        conn.execute("ROLLBACK TO seal_hours")
        if "overflow" not in str(exc):
            raise
        conn.execute(SEAL_HOURS_SPLIT, (start_ns, end_ns))
    conn.execute("RELEASE seal_hours")
    sqlite_units.seal_hours(conn, start_ns, end_ns)


def seal_hours_in(conn: sqlite3.Connection, until_ns: int) -> int:
    """One bounded hourly seal pass in the caller's write transaction: add the calls in [W, until) to
    `rollup_hour` (at most about `SEAL_ROWS_PER_PASS` of them: the pass then stops at an earlier end
    time) and move W there; returns the new W (below `until_ns` when there is more to do)."""
    mark = hours_sealed_until(conn)
    if until_ns <= mark:
        return mark
    target = until_ns
    first = conn.execute("SELECT MIN(end_ns) FROM calls WHERE end_ns >= ?", (mark,)).fetchone()[0]
    if first is not None and first < until_ns:  # from the first call: a new file has W = 0
        bound = conn.execute("SELECT end_ns FROM calls WHERE end_ns >= ? ORDER BY end_ns LIMIT 1 OFFSET ?",
                             (first, SEAL_ROWS_PER_PASS)).fetchone()
        if bound is not None:
            target = min(until_ns, max(bound[0], first + 1))
        _seal_range(conn, first, target)
    _set_mark(conn, HOUR_MARK, target)
    return target


_DELTA_TABLE = (f"CREATE TEMP TABLE IF NOT EXISTS day_delta (bucket INTEGER NOT NULL, labelset INTEGER NOT NULL, "
                f"{', '.join(c + ' INTEGER NOT NULL' for c in rollup_columns())}, PRIMARY KEY (bucket, labelset)) "
                "WITHOUT ROWID")


def add_rollups(conn: sqlite3.Connection, groups: dict[tuple[int, int], list[int]]) -> None:
    """Add per-(hour start, labelset) sums to rollup_hour, and to rollup_day and rollup_field_day for sealed
    days (their deltas, grouped in SQL). Runs inside the caller's write transaction."""
    conn.executemany(UPSERT_HOUR, [rollup_params(b, ls, s) for (b, ls), s in groups.items()])
    sealed = days_sealed_until(conn)
    days: dict[tuple[int, int], list[int]] = {}
    for (hour, labelset), sums in groups.items():
        if hour < sealed:
            day = days.setdefault((hour - hour % DAY_NS, labelset), [0] * len(SUM_NAMES))
            for i, v in enumerate(sums):
                day[i] += v
    if days:
        params = [rollup_params(b, ls, s) for (b, ls), s in days.items()]
        conn.executemany(upsert_rollup_sql("rollup_day"), params)
        conn.execute(_DELTA_TABLE)
        conn.execute("DELETE FROM temp.day_delta")
        conn.executemany(f"INSERT INTO temp.day_delta VALUES ({', '.join('?' * len(params[0]))})", params)
        for statement in field_rollup_sql("1", "temp.day_delta"):
            conn.execute(statement)


# the dimensions' names, by seeks from one name to the next (a DISTINCT scanned the whole table: 0.6 s a pass
# at 1.3M label sets), and '' (the base label set)
FIELD_NAMES = ("WITH RECURSIVE f(name) AS (SELECT '' UNION ALL SELECT (SELECT MIN(field) FROM labelset_dims "
               "WHERE field > f.name) FROM f WHERE f.name IS NOT NULL) SELECT name FROM f WHERE name IS NOT NULL")
FIELD_STATS = ("INSERT OR REPLACE INTO field_day_rows SELECT field, bucket, COUNT(*), SUM(calls) "
               f"FROM rollup_field_day WHERE field IN ({FIELD_NAMES}) "
               "AND bucket >= ? AND bucket < ? GROUP BY 1, 2")  # the planner's statistics of days sealed (schema V7)


def _seal_days_in(conn: sqlite3.Connection, until_ns: int) -> int:
    """Fold whole days before `until_ns` (at most SEAL_DAYS_PER_PASS) from rollup_hour into rollup_day and
    move the day watermark, in the caller's write transaction; returns the day watermark."""
    cols = rollup_columns()
    limit = until_ns - until_ns % DAY_NS
    start = mark = days_sealed_until(conn)
    if mark == 0:
        first = conn.execute("SELECT MIN(bucket) FROM rollup_hour").fetchone()[0]
        start = limit if first is None else min(limit, first - first % DAY_NS)
    target = min(limit, start + SEAL_DAYS_PER_PASS * DAY_NS)
    if target > start:
        conn.execute(f"INSERT INTO rollup_day (bucket, labelset, {', '.join(cols)}) "
                     f"SELECT bucket - bucket % {DAY_NS}, labelset, {', '.join(f'SUM({c})' for c in cols)} "
                     f"FROM rollup_hour WHERE bucket >= ? AND bucket < ? GROUP BY 1, 2 "
                     f"ON CONFLICT (bucket, labelset) DO UPDATE SET {add_sets()}", (start, target))
        for statement in field_rollup_sql("r.bucket >= ? AND r.bucket < ?"):
            conn.execute(statement, (start, target))
        conn.execute(FIELD_STATS, (start, target))
        sqlite_units.seal_days(conn, start, target)
    if max(target, start) != mark:
        _set_mark(conn, DAY_MARK, max(target, start))
    return max(target, start)


def seal(conn: sqlite3.Connection, until_ns: int) -> tuple[int, int]:
    """One bounded seal pass in one IMMEDIATE transaction: calls before `until_ns` into `rollup_hour`
    (`seal_hours_in`), then whole days before floor_day(W) into `rollup_day`. Returns (W, day watermark)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        hours = seal_hours_in(conn, until_ns)
        days = _seal_days_in(conn, min(until_ns, hours))
        conn.execute("COMMIT")
        return hours, days
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def seal_days(conn: sqlite3.Connection, until_ns: int) -> int:
    """`seal`, returning the day watermark (repeat while it is below the day wanted: each call progresses)."""
    return seal(conn, until_ns)[1]
