"""The SQLite ledger's billed units (schema version 7): per call, per unit its quantity and exact cost.

Tables: `units` (the unit dictionary: id -> name, ids never reused), `call_units` (a call's units,
keyed by the call's identity then the unit: only calls that have units get rows), `rollup_unit_hour`
and `rollup_unit_day` (per bucket, label set and unit: quantity and cost, the cost as 32-bit halves
like every rollup sum). A new unit is a new dictionary row, never a new column. The unit rollups
follow the call rollups step for step: sealed in the same transaction as the hour (`seal_hours`) and
the days (`seal_days`), a late call's units folded with it (`sqlite_late`), corrected by re-pricing
(`add_unit_rollups`), moved by `forget`, pruned with the calls and the rollups. Flags (`ledger.units`) are units
of quantity 1 and cost 0, so the same rows count the partly priced and estimated calls.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from genai_meter.ledger.model import CallRow, Conversation
from genai_meter.ledger.units import UnitAmount, sums_of

MASK32 = 0xFFFFFFFF
HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
_KEY = "end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, span_id BLOB NOT NULL"


def _rollup(name: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {name} (bucket INTEGER NOT NULL, labelset INTEGER NOT NULL, "
            "unit INTEGER NOT NULL, quantity INTEGER NOT NULL, cost_hi INTEGER NOT NULL, cost_lo INTEGER NOT NULL, "
            "PRIMARY KEY (bucket, labelset, unit)) WITHOUT ROWID")


V7: list[str] = [
    "CREATE TABLE IF NOT EXISTS units (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE)",
    f"CREATE TABLE IF NOT EXISTS call_units ({_KEY}, unit INTEGER NOT NULL, quantity INTEGER NOT NULL, "
    "cost INTEGER NOT NULL, PRIMARY KEY (end_ns, trace_id, span_id, unit)) WITHOUT ROWID",
    _rollup("rollup_unit_hour"),
    _rollup("rollup_unit_day"),
    f"CREATE TABLE IF NOT EXISTS price_history_units ({_KEY}, reprice INTEGER NOT NULL, unit INTEGER NOT NULL, "
    "cost INTEGER NOT NULL, PRIMARY KEY (end_ns, trace_id, span_id, reprice, unit)) WITHOUT ROWID",
]
INSERT_UNIT = "INSERT INTO call_units (end_ns, trace_id, span_id, unit, quantity, cost) VALUES (?, ?, ?, ?, ?, ?)"
TABLES = frozenset({"units", "call_units", "rollup_unit_hour", "rollup_unit_day", "price_history_units"})
UNIT_ADD_SETS = ("quantity = quantity + excluded.quantity, "
                 "cost_hi = cost_hi + excluded.cost_hi + ((cost_lo + excluded.cost_lo) >> 32), "
                 f"cost_lo = (cost_lo + excluded.cost_lo) & {MASK32}")


def _upsert(table: str) -> str:
    return (f"INSERT INTO {table} (bucket, labelset, unit, quantity, cost_hi, cost_lo) VALUES (?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (bucket, labelset, unit) DO UPDATE SET {UNIT_ADD_SETS}")


def unit_ids(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """The dictionary ids of unit names, added when new (in the caller's write transaction)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    conn.executemany("INSERT OR IGNORE INTO units (name) VALUES (?)", [(n,) for n in wanted])
    return {name: uid for uid, name in conn.execute(
        "SELECT id, name FROM units WHERE name IN (SELECT value FROM json_each(?))", (json.dumps(wanted),))}



CallUnits = tuple[int, bytes, bytes, Sequence[UnitAmount]]  # (end_ns, trace, span, units)


def store_units(conn: sqlite3.Connection, calls: Sequence[CallUnits]) -> None:
    """Insert the units of newly stored calls (in the caller's write transaction); a late call's units reach
    the unit rollups when its call is folded (`sqlite_late`)."""
    if not calls:
        return
    ids = unit_ids(conn, (name for *_, units in calls for name, _, _ in units))
    conn.executemany(INSERT_UNIT,
                     [(end, bytearray(trace), bytearray(span), ids[name], quantity, cost)
                      for end, trace, span, units in calls for name, quantity, cost in units])


def add_unit_rollups(conn: sqlite3.Connection, deltas: dict[tuple[int, int, int], list[int]], days_before: int) -> None:
    """Add (hour, label set, unit) -> [quantity, cost] to `rollup_unit_hour`, and to `rollup_unit_day` for
    hours of sealed days (before `days_before`); deltas may be negative (re-pricing corrections)."""
    def params(groups: dict[tuple[int, int, int], list[int]]) -> list[tuple[int, ...]]:
        return [(b, ls, u, q, c >> 32, c & MASK32) for (b, ls, u), (q, c) in groups.items()]
    conn.executemany(_upsert("rollup_unit_hour"), params(deltas))
    days: dict[tuple[int, int, int], list[int]] = {}
    for (hour, labelset, unit), (quantity, cost) in deltas.items():
        if hour < days_before:
            acc = days.setdefault((hour - hour % DAY_NS, labelset, unit), [0, 0])
            acc[0] += quantity
            acc[1] += cost
    if days:
        conn.executemany(_upsert("rollup_unit_day"), params(days))


# ?1, ?2: the calls' end times [start, end) within one hour, ?3: that hour
SEAL_HOURS = ("INSERT INTO rollup_unit_hour (bucket, labelset, unit, quantity, cost_hi, cost_lo) "
              f"SELECT u.end_ns - u.end_ns % {HOUR_NS}, c.labelset, u.unit, SUM(u.quantity), "
              f"SUM(u.cost >> 32) + (SUM(u.cost & {MASK32}) >> 32), SUM(u.cost & {MASK32}) & {MASK32} "
              "FROM call_units u JOIN calls c ON c.end_ns = u.end_ns AND c.trace_id = u.trace_id "
              "AND c.span_id = u.span_id WHERE u.end_ns >= ?1 AND u.end_ns < ?2 "
              f"GROUP BY 1, c.labelset, u.unit ON CONFLICT (bucket, labelset, unit) DO UPDATE SET {UNIT_ADD_SETS}")
SEAL_DAYS = ("INSERT INTO rollup_unit_day (bucket, labelset, unit, quantity, cost_hi, cost_lo) "
             f"SELECT bucket - bucket % {DAY_NS}, labelset, unit, SUM(quantity), SUM(cost_hi) + (SUM(cost_lo) >> 32), "
             f"SUM(cost_lo) & {MASK32} FROM rollup_unit_hour WHERE bucket >= ? AND bucket < ? GROUP BY 1, 2, 3 "
             f"ON CONFLICT (bucket, labelset, unit) DO UPDATE SET {UNIT_ADD_SETS}")


def seal_hours(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> None:
    """The units of the calls in [start, end) into `rollup_unit_hour`, by hour, in one grouped statement."""
    conn.execute(SEAL_HOURS, (start_ns, end_ns))


def seal_days(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> None:
    """The hourly unit rollups of the days in [start, end) into `rollup_unit_day`."""
    conn.execute(SEAL_DAYS, (start_ns, end_ns))


def prune_calls(conn: sqlite3.Connection, last_ns: int) -> None:
    """Delete the units (and their price history) of the calls ending at or before `last_ns`."""
    conn.execute("DELETE FROM call_units WHERE end_ns <= ?", (last_ns,))
    conn.execute("DELETE FROM price_history_units WHERE end_ns <= ?", (last_ns,))


def prune_rollups(conn: sqlite3.Connection, hour_cutoff: int, day_cutoff: int) -> None:
    conn.execute("DELETE FROM rollup_unit_hour WHERE bucket < ?", (hour_cutoff,))
    conn.execute("DELETE FROM rollup_unit_day WHERE bucket < ?", (day_cutoff,))


def move_labelset(conn: sqlite3.Connection, source: int, target: int) -> None:
    """Move the unit rollups of label set `source` onto `target` (`forget --customer`)."""
    for table in ("rollup_unit_hour", "rollup_unit_day"):
        rows = conn.execute(f"SELECT bucket, unit, quantity, cost_hi, cost_lo FROM {table} WHERE labelset = ?",
                            (source,)).fetchall()
        conn.executemany(_upsert(table), [(b, target, u, q, hi, lo) for b, u, q, hi, lo in rows])
        conn.execute(f"DELETE FROM {table} WHERE labelset = ?", (source,))


Key = tuple[int, bytes, bytes]
LOOKUP_CHUNK = 300


def units_of(conn: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, list[UnitAmount]]:
    """The stored units of the calls `keys` (end time, trace id, span id), sorted by name."""
    found: dict[Key, list[UnitAmount]] = {}
    for i in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[i:i + LOOKUP_CHUNK]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        params = [part for end, trace, span in chunk for part in (end, bytearray(trace), bytearray(span))]
        for end, trace, span, name, quantity, cost in conn.execute(
                f"SELECT u.end_ns, u.trace_id, u.span_id, n.name, u.quantity, u.cost FROM (VALUES {values}) AS v "
                "JOIN call_units u ON u.end_ns = v.column1 AND u.trace_id = v.column2 AND u.span_id = v.column3 "
                "JOIN units n ON n.id = u.unit", params):
            found.setdefault((end, bytes(trace), bytes(span)), []).append((name, quantity, cost))
    for units in found.values():
        units.sort()
    return found


def has_units(conn: sqlite3.Connection) -> bool:
    """Whether any call has units (a file without any skips the unit queries)."""
    return conn.execute("SELECT 1 FROM units LIMIT 1").fetchone() is not None


# the units of the late calls held for a fold (`sqlite_late`): `call_units u JOIN calls c` read from `late_calls h`
HELD_UNITS = ("late_calls h CROSS JOIN call_units u ON u.end_ns = h.end_ns AND u.trace_id = h.trace_id "
              "AND u.span_id = h.span_id JOIN calls c ON c.end_ns = u.end_ns AND c.trace_id = u.trace_id "
              "AND c.span_id = u.span_id")
RAW_UNITS = "call_units u JOIN calls c ON c.end_ns = u.end_ns AND c.trace_id = u.trace_id AND c.span_id = u.span_id"


def aggregate(conn: sqlite3.Connection, table: str, start_ns: int, end_ns: int, conds: Sequence[str],
              params: Sequence[object], keys: Sequence[str], key_params: Sequence[object],
              by_time: bool, held: bool = False) -> list[tuple[int, tuple[str, ...], str, int, int]]:
    """(bucket or 0, group key, unit, quantity, cost) of the units in [start, end) of `table` ("raw": the
    calls' units, by minute when `by_time`; "hour"/"day": the unit rollups, or with `held` the units of the
    held late calls of that range, by the table's bucket). `conds` are conditions on the calls (alias `c.`;
    raw and held) or the rollup rows (alias `r.`), `keys` group expressions over `labelsets l` (and `c.`)."""
    if not has_units(conn):
        return []
    if table == "raw" or held:
        bucket = 60 * 10**9 if table == "raw" else HOUR_NS if table == "hour" else DAY_NS
        time_expr = f"u.end_ns - u.end_ns % {bucket}" if by_time else "0"
        source = (f"{HELD_UNITS if held else RAW_UNITS} JOIN labelsets l ON l.id = c.labelset "
                  "JOIN units n ON n.id = u.unit")
        cost = ["SUM(u.cost >> 32)", f"SUM(u.cost & {MASK32})"]
        at = "h" if held else "u"  # the held calls' range from late_calls' key
        where = [f"{at}.end_ns >= ?", f"{at}.end_ns < ?", *conds]
        quantity = "SUM(u.quantity)"
    else:
        time_expr = "r.bucket" if by_time else "0"
        source = f"rollup_unit_{table} r JOIN labelsets l ON l.id = r.labelset JOIN units n ON n.id = r.unit"
        cost = ["SUM(r.cost_hi)", "SUM(r.cost_lo)"]
        where = ["r.bucket >= ?", "r.bucket < ?", *conds]
        quantity = "SUM(r.quantity)"
    n = len(keys)
    group = ", ".join(["t", *(f"g{i}" for i in range(n)), "n.name"])
    sql = (f"SELECT {time_expr} AS t, {''.join(f'{k} AS g{i}, ' for i, k in enumerate(keys))}n.name, {quantity}, "
           f"{', '.join(cost)} FROM {source} WHERE {' AND '.join(where)} GROUP BY {group}")
    rows = conn.execute(sql, [*key_params, start_ns, end_ns, *params]).fetchall()
    return [(r[0], tuple(str(v) for v in r[1:1 + n]), r[1 + n], r[2 + n], (r[3 + n] << 32) + r[4 + n]) for r in rows]


def conversation_costs(conn: sqlite3.Connection, start_ns: int, end_ns: int, conversations: Sequence[str],
                       conds: Sequence[str], params: Sequence[object]) -> dict[str, int]:
    """The units' cost of each of `conversations` in [start, end) (`conds` on the calls, alias `c.`)."""
    sql = (f"SELECT c.conversation, SUM(u.cost >> 32), SUM(u.cost & {MASK32}) FROM call_units u JOIN calls c "
           "ON c.end_ns = u.end_ns AND c.trace_id = u.trace_id AND c.span_id = u.span_id "
           "WHERE u.end_ns >= ? AND u.end_ns < ? AND c.conversation IN (SELECT value FROM json_each(?))"
           f"{''.join(' AND ' + c for c in conds)} GROUP BY c.conversation")
    rows = conn.execute(sql, [start_ns, end_ns, json.dumps(list(conversations)), *params])
    return {conv: (hi << 32) + lo for conv, hi, lo in rows}


def with_units(conn: sqlite3.Connection, rows: list[CallRow]) -> list[CallRow]:
    """`rows` with their stored units (`CallRow.units`) set."""
    if not rows or not has_units(conn):
        return rows
    def key(row: CallRow) -> Key:
        return row.end_ns, bytes.fromhex(row.trace_id), bytes.fromhex(row.span_id)
    found = units_of(conn, [key(row) for row in rows])
    for row in rows:
        units = found.get(key(row))
        if units:
            row.units = sums_of(units)
    return rows


def with_unit_costs(conn: sqlite3.Connection, conversations: list[Conversation], start_ns: int, end_ns: int,
                    conds: Sequence[str], params: Sequence[object]) -> list[Conversation]:
    """`conversations` with their calls' unit costs added to `cost_pico`."""
    if conversations and has_units(conn):
        extra = conversation_costs(conn, start_ns, end_ns, [c.conversation for c in conversations], conds, params)
        for conv in conversations:
            conv.cost_pico += extra.get(conv.conversation, 0)
    return conversations


Deltas = dict[tuple[int, int, int], list[int]]  # (hour, label set id, unit id) -> [quantity, cost]


def replace_units(conn: sqlite3.Connection, key: Key, labelset: int, old: Sequence[UnitAmount],
                  new: Sequence[UnitAmount], reprice: int, deltas: Deltas | None) -> None:
    """Re-pricing one call: its old unit costs to `price_history_units` (run `reprice`), its units replaced by
    `new`; when the call is rolled up (`deltas` given) the differences are added to `deltas` per (hour,
    label set, unit id) for `add_unit_rollups`."""
    end, trace, span = key
    ids = unit_ids(conn, [name for name, _, _ in (*old, *new)])
    ident = (end, bytearray(trace), bytearray(span))
    conn.executemany("INSERT INTO price_history_units (end_ns, trace_id, span_id, reprice, unit, cost) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [(*ident, reprice, ids[name], cost) for name, _, cost in old])
    conn.execute("DELETE FROM call_units WHERE end_ns = ? AND trace_id = ? AND span_id = ?", ident)
    conn.executemany(INSERT_UNIT,
                     [(*ident, ids[name], quantity, cost) for name, quantity, cost in new])
    if deltas is not None:
        for sign, units in ((-1, old), (1, new)):
            for name, quantity, cost in units:
                acc = deltas.setdefault((end - end % HOUR_NS, labelset, ids[name]), [0, 0])
                acc[0] += sign * quantity
                acc[1] += sign * cost
