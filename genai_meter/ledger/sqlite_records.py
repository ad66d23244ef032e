"""The SQLite ledger's export read: the calls of a range as raw columns (`model.CallRecords`), a page at a time.

No join: the calls' own columns (RECORD_COLUMNS), newest first, by keyset on the primary key; label sets and
prices are read by id from the reader's dictionaries; billed units come from one range read of `call_units`
over the page's end times (only calls with units have rows there), so a ledger without units costs nothing
more. Each page is one read transaction: a page's calls and their units come from one snapshot. Between
pages nothing is held (the WAL can be checkpointed): a page continues strictly after the previous page's last
call, so no call is read twice, every call stored before the export began and still stored is read once, and a
call stored meanwhile appears when its position is still ahead of the cursor (the feed's paging, larger pages).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from genai_meter.ledger.model import RECORD_COLUMNS, CallKey
from genai_meter.ledger.sqlite_units import has_units
from genai_meter.ledger.units import UnitAmount, UnitSums, sums_of

Where = tuple[list[str], list[object]]  # SQL conditions and their parameters
RECORD_SELECT = f"SELECT {', '.join(RECORD_COLUMNS)} FROM calls"
PAGE_UNITS = ("SELECT u.end_ns, u.trace_id, u.span_id, n.name, u.quantity, u.cost FROM call_units u "
              "JOIN units n ON n.id = u.unit WHERE u.end_ns >= ? AND u.end_ns <= ?")


def call_range(where: Where, alias: str, start_ns: int | None, end_ns: int | None,
               before: CallKey | None) -> Where:
    """`where` and the conditions of calls in [start, end) strictly before the position `before` (on `alias`)."""
    conds, params = list(where[0]), list(where[1])
    if start_ns is not None:
        conds.append(f"{alias}end_ns >= ?")
        params.append(start_ns)
    if before is not None:  # the position's time bounds the range too: SQLite seeks it (a row value alone is
        end_ns = before[0] + 1 if end_ns is None else min(end_ns, before[0] + 1)  # not a bound of its index range)
        conds.append(f"({alias}end_ns, {alias}trace_id, {alias}span_id) < (?, ?, ?)")
        params.extend(before)
    if end_ns is not None:
        conds.append(f"{alias}end_ns < ?")
        params.append(end_ns)
    return conds, params


def read_records(conn: sqlite3.Connection, where: Where, start_ns: int | None, end_ns: int | None,
                 before: CallKey | None, limit: int) -> tuple[list[tuple[Any, ...]], dict[CallKey, UnitSums]]:
    """Up to `limit` calls matching `where` in [start, end), newest first, strictly before `before`; and the
    units of the calls of their end-time span that have units (by call key), read in the same transaction."""
    conds, params = call_range(where, "", start_ns, end_ns, before)
    sql = (f"{RECORD_SELECT} {'WHERE ' + ' AND '.join(conds) if conds else ''} "
           "ORDER BY end_ns DESC, trace_id DESC, span_id DESC LIMIT ?")
    if not conn.in_transaction:
        conn.execute("BEGIN")
    try:
        rows = conn.execute(sql, [*params, limit]).fetchall()
        units = _units(conn, rows[-1][0], rows[0][0]) if rows and has_units(conn) else {}
    finally:
        if conn.in_transaction:  # (a read: ending it cannot fail for want of a write)
            conn.execute("COMMIT")
    return rows, units


def _units(conn: sqlite3.Connection, first_ns: int, last_ns: int) -> dict[CallKey, UnitSums]:
    found: dict[CallKey, list[UnitAmount]] = {}
    for end, trace, span, name, quantity, cost in conn.execute(PAGE_UNITS, (first_ns, last_ns)):
        found.setdefault((end, bytes(trace), bytes(span)), []).append((name, quantity, cost))
    return {key: sums_of(sorted(units)) for key, units in found.items()}
