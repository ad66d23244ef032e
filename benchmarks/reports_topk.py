"""Prototype: top k per day plus the exact remainder, day by day in SQLite (trend by day x customer).

A window over every (day, customer) row sorts them all; per day, `ORDER BY cost DESC LIMIT k + 1`
keeps only a bounded heap (SQLite's sorter with a limit), and the remainder is the day's total (one
row per base label set in `rollup_field_day`, field '') minus the top k: nothing is grouped or sorted
beyond a day's rows, and Python sees k + 1 rows per day. Whole days read `rollup_field_day` (one row
per day and customer: no GROUP BY); the part-day edges group `rollup_hour` by customer through
`labelset_dims`. Calls without the dimension fall into the remainder here (the production table
should hold them as the value '' so that they rank like any group).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks.reports_data import DAY_NS
from benchmarks.reports_questions import OTHER, Answer, Question, Vec
from benchmarks.reports_sqlite import HI, LO, MASK, TOK, _parts, _vec, connect

_RANK = f"({HI}) + (({LO}) >> 32) DESC, ({LO}) & {MASK} DESC"
DAY_TOP = (f"SELECT value, calls, errors, {TOK}, {HI}, {LO} FROM rollup_field_day WHERE field = ? AND bucket = ? "
           f"ORDER BY {_RANK}, value LIMIT ?")
DAY_TOTAL = f"SELECT SUM(calls), SUM(errors), SUM({TOK}), SUM({HI}), SUM({LO}) FROM rollup_field_day " \
            "WHERE field = '' AND bucket = ?"
_H = f"SUM(h.calls) AS n, SUM(h.errors) AS e, SUM({TOK}) AS tok, SUM({HI}) AS hi, SUM({LO}) AS lo"
EDGE_TOP = (f"SELECT x.value AS k, {_H} FROM rollup_hour h CROSS JOIN labelset_dims x ON x.labelset = h.labelset "
            "AND x.field = ? WHERE h.bucket >= ? AND h.bucket < ? GROUP BY x.value "
            f"ORDER BY hi + (lo >> 32) DESC, lo & {MASK} DESC, k LIMIT ?")
EDGE_TOTAL = f"SELECT {_H} FROM rollup_hour h WHERE h.bucket >= ? AND h.bucket < ?"


def _day(conn: sqlite3.Connection, top: list[tuple[object, ...]], total: Vec, k: int, day: int,
         out: dict[str, Vec]) -> None:
    rest = list(total)
    for row in top[:k]:
        vec = _vec(*row[1:])  # type: ignore[arg-type]
        out[f"{day}|{row[0]}"] = vec
        rest = [a - b for a, b in zip(rest, vec)]
    if len(top) > k:
        out[f"{day}|{OTHER}"] = rest


def answer_per_day(db: Path, q: Question, end_ns: int, field: str = "customer") -> Answer:
    conn = connect(db)
    d0, d1 = _parts(q, end_ns)
    out: dict[str, Vec] = {}
    for start, stop in ((q.start_ns, d0), (d1, end_ns)):  # the part-day edges, from hourly rows
        if start < stop:
            top = conn.execute(EDGE_TOP, (field, start, stop, q.top + 1)).fetchall()
            _day(conn, top, _vec(*conn.execute(EDGE_TOTAL, (start, stop)).fetchone()), q.top,
                 start - start % DAY_NS, out)
    for day in range(d0, d1, DAY_NS):
        top = conn.execute(DAY_TOP, (field, day, q.top + 1)).fetchall()
        _day(conn, top, _vec(*conn.execute(DAY_TOTAL, (day,)).fetchone()), q.top, day, out)
    return {"groups": out}
