"""The SQLite answers of the reports benchmark: the best plain SQL on the raw calls (the reference) and
the prototype read path over per-field rollups ("proto"), grouping, top-k and remainder in the engine.

Money: a call's cost (the sum of its six classes, < 2^63 by the ledger's contract) is summed as high
and low 32-bit halves (`SUM(cost >> 32)`, `SUM(cost & 0xFFFFFFFF)`), so no SQL sum overflows; the
ranking key is the exact pair (hi + (lo >> 32), lo & 0xFFFFFFFF), and Python joins the halves.

The prototype adds to the ledger file (`add_proto`):
- `labelset_dims(field, value, labelset)`, WITHOUT ROWID, and its index by label set: the label sets
  of one dimension value (a filter) and the value of a label set (a group), without JSON;
- an index `rollup_field_day (field, value, bucket)`: one value's days without scanning the others.
A range's whole days come from `rollup_field_day` (per day and field value), its part-day edges from
`rollup_hour` (per hour and label set, joined to `labelset_dims`).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path

from benchmarks.reports_data import DAY_NS
from benchmarks.reports_questions import OTHER, Answer, Question, Vec

MASK = 0xFFFFFFFF
TOK = "t_input + t_cache_read + t_cache_write + t_output + t_reasoning"
COST = "c_input + c_cache_read + c_cache_write + c_output + c_reasoning + c_request"
HI = " + ".join(f"c_{c}_hi" for c in ("input", "cache_read", "cache_write", "output", "reasoning", "request"))
LO = HI.replace("_hi", "_lo")
RAW_SUMS = f"COUNT(*) AS n, SUM({TOK}) AS tok, SUM(({COST}) >> 32) AS hi, SUM(({COST}) & {MASK}) AS lo"
ROLL_SUMS = f"calls AS n, errors AS e, {TOK} AS tok, {HI} AS hi, {LO} AS lo"
FAILING = "labelset IN (SELECT id FROM labelsets WHERE status <> 'ok')"
PROTO_DDL = [
    "CREATE TABLE labelset_dims (field TEXT NOT NULL, value TEXT NOT NULL, labelset INTEGER NOT NULL, "
    "PRIMARY KEY (field, value, labelset)) WITHOUT ROWID",
    "INSERT INTO labelset_dims SELECT j.key, j.value, l.id FROM labelsets l, json_each(l.dims) j",
    "CREATE INDEX labelset_dims_by_set ON labelset_dims (labelset, field, value)",
    "CREATE INDEX rollup_field_day_by_value ON rollup_field_day (field, value, bucket)",
]
# per day and field: rollup rows and calls (kept by the day fold in production): the planner's statistics
STATS_DDL = ["CREATE TABLE field_day_rows (field TEXT NOT NULL, bucket INTEGER NOT NULL, rows INTEGER NOT NULL, "
             "calls INTEGER NOT NULL, PRIMARY KEY (field, bucket)) WITHOUT ROWID",
             "INSERT INTO field_day_rows SELECT field, bucket, COUNT(*), SUM(calls) FROM rollup_field_day "
             "GROUP BY field, bucket"]
ROW_WIDTH = 2  # a rollup row is about twice as wide as a call row (28 integers against 27 mostly small ones)


def add_proto(db: Path) -> float:
    """Add the prototype's tables and indexes to the ledger file (once); seconds taken (0: present)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        t0 = time.perf_counter()
        done = False
        for table, statements in (("labelset_dims", PROTO_DDL), ("field_day_rows", STATS_DDL)):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                conn.execute("BEGIN")
                for statement in statements:
                    conn.execute(statement)
                conn.execute("COMMIT")
                done = True
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone holds every row (copies of it)
        return time.perf_counter() - t0 if done else 0.0
    finally:
        conn.close()


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _vec(n: int | None, e: int | None, tok: int | None, hi: int | None, lo: int | None) -> Vec:
    return [n or 0, e or 0, tok or 0, ((hi or 0) << 32) + (lo or 0)]


def _top_sql(groups_sql: str, q: Question, by_day: bool) -> str:
    """Top k by exact cost (ties: key) plus the remainder OTHER, per day when `by_day`, over `groups_sql`
    (columns [d,] k, n, e, tok, hi, lo; one row per group)."""
    if not q.top:
        return groups_sql
    part = "PARTITION BY d " if by_day else ""
    day = "d, " if by_day else ""
    return (f"WITH g AS ({groups_sql}), r AS (SELECT *, ROW_NUMBER() OVER ({part}ORDER BY hi + (lo >> 32) DESC, "
            f"lo & {MASK} DESC, k) AS rn FROM g) SELECT {day}CASE WHEN rn <= {q.top} THEN k ELSE '{OTHER}' END, "
            f"SUM(n), SUM(e), SUM(tok), SUM(hi), SUM(lo) FROM r GROUP BY {'1, 2' if by_day else '1'}")


def _rows(conn: sqlite3.Connection, sql: str, params: list[object], q: Question) -> dict[str, Vec]:
    by_day = q.group.startswith("day")
    out: dict[str, Vec] = {}
    for row in conn.execute(sql, params):
        if q.group == "day":
            out[str(row[0])] = _vec(*row[1:])
        elif by_day:
            out[f"{row[0]}|{row[1]}"] = _vec(*row[2:])
        else:
            out[str(row[0])] = _vec(*row[1:])
    return out


# -- the best plain SQL on the raw calls ---------------------------------------------------------------

_KEYS = {"customer": "json_extract(l.dims, '$.customer')", "model": "l.provider || '/' || l.model",
         "day_customer": "json_extract(l.dims, '$.customer')"}


def plain_sql(q: Question) -> str:
    """One statement answering `q` from the raw calls, grouped per label set first (one integer key),
    then joined to the label-set dictionary and grouped by the asked field."""
    rng = "end_ns >= ? AND end_ns < ?"
    if not q.group:
        cond = " AND labelset IN (SELECT id FROM labelsets WHERE json_extract(dims, '$.customer') = ?)" \
            if q.customer else ""
        return f"SELECT COUNT(*), SUM({FAILING}), SUM({TOK}), SUM(({COST}) >> 32), SUM(({COST}) & {MASK}) " \
               f"FROM calls WHERE {rng}{cond}"
    if q.group == "day":
        return f"SELECT end_ns - end_ns % {DAY_NS} AS d, COUNT(*), SUM({FAILING}), SUM({TOK}), " \
               f"SUM(({COST}) >> 32), SUM(({COST}) & {MASK}) FROM calls WHERE {rng} GROUP BY d"
    by_day = q.group == "day_customer"
    day = f"end_ns - end_ns % {DAY_NS} AS d, " if by_day else ""
    inner = f"SELECT {day}labelset, {RAW_SUMS} FROM calls WHERE {rng} GROUP BY {'d, ' if by_day else ''}labelset"
    groups = (f"SELECT {'s.d AS d, ' if by_day else ''}{_KEYS[q.group]} AS k, SUM(s.n) AS n, "
              f"SUM(CASE WHEN l.status <> 'ok' THEN s.n ELSE 0 END) AS e, SUM(s.tok) AS tok, SUM(s.hi) AS hi, "
              f"SUM(s.lo) AS lo FROM ({inner}) s JOIN labelsets l ON l.id = s.labelset "
              f"GROUP BY {'d, ' if by_day else ''}k")
    return _top_sql(groups, q, by_day)


def answer_plain(db: Path, q: Question, end_ns: int) -> Answer:
    conn = connect(db)
    params: list[object] = [q.start_ns, end_ns] + ([q.customer] if q.customer else [])
    if q.export == "calls":
        return _calls_csv(conn, q, end_ns)
    if not q.group:
        return {"groups": {"": _vec(*conn.execute(plain_sql(q), params).fetchone())}}
    if q.export:
        return _groups_csv(conn.execute(plain_sql(q) + " ORDER BY hi + (lo >> 32) DESC, lo DESC", params))
    return {"groups": _rows(conn, plain_sql(q), params, q)}


def _groups_csv(cursor: sqlite3.Cursor) -> Answer:
    """Every group as a CSV line (key, calls, failures, tokens, cost USD), formatted by Python."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = calls = cost = 0
    for k, n, e, tok, hi, lo in cursor:
        pico = (hi << 32) + lo
        writer.writerow((k, n, e, tok, f"{pico // 10**12}.{pico % 10**12:012d}"))
        rows, calls, cost = rows + 1, calls + n, cost + pico
    return {"rows": rows, "calls": calls, "cost": cost, "bytes": len(buffer.getvalue())}


WHEN = ("strftime('%Y-%m-%dT%H:%M:%S', c.end_ns / 1000000000, 'unixepoch') "
        "|| printf('.%09dZ', c.end_ns % 1000000000)")  # the end time to the nanosecond, UTC


def calls_csv_sql(q: Question) -> str:
    """Every call of the range, newest first, as CSV cells formatted by SQLite (time, money)."""
    money = ", ".join(f"printf('%d.%012d', c.c_{c} / 1000000000000, c.c_{c} % 1000000000000)"
                      for c in ("input", "cache_read", "cache_write", "output", "reasoning", "request"))
    return (f"SELECT {WHEN}, hex(c.trace_id), "
            "hex(c.span_id), l.service, l.environment, l.provider, l.model, l.request_model, l.operation, l.status, "
            "l.error_type, c.conversation, c.user, json_extract(l.dims, '$.customer'), "
            "json_extract(l.dims, '$.feature'), json_extract(l.dims, '$.organization'), c.t_input, c.t_cache_read, "
            f"c.t_cache_write, c.t_output, c.t_reasoning, {money}, printf('%d.%012d', ({COST}) / 1000000000000, "
            f"({COST}) % 1000000000000), c.duration_us, p.entry, c.unpriced, {COST.replace('c_', 'c.c_')} "
            "FROM calls c JOIN labelsets l ON l.id = c.labelset JOIN prices p ON p.id = c.price "
            "WHERE c.end_ns >= ? AND c.end_ns < ? ORDER BY c.end_ns DESC")


def _calls_csv(conn: sqlite3.Connection, q: Question, end_ns: int) -> Answer:
    rows = cost = size = 0
    cursor = conn.execute(calls_csv_sql(q), (q.start_ns, end_ns))
    while True:
        page = cursor.fetchmany(1000)
        if not page:
            break
        buffer = io.StringIO()
        csv.writer(buffer).writerows(r[:-1] for r in page)
        size += len(buffer.getvalue())
        rows += len(page)
        cost += sum(r[-1] for r in page)
    return {"rows": rows, "calls": rows, "cost": cost, "bytes": size}


# -- the prototype: per-field rollups, engine-side grouping --------------------------------------------

def _parts(q: Question, end_ns: int) -> tuple[int, int]:
    """(first whole day, end of the whole days) of the range: days from rollup_field_day, the edges
    [start, d0) and [d1, end) from rollup_hour (the ranges here are hour-aligned and sealed)."""
    d0 = -(-q.start_ns // DAY_NS) * DAY_NS
    d1 = end_ns - end_ns % DAY_NS
    return d0, d1


def _edges(select: str) -> str:
    """`select` (one `h.bucket` range) for both part-day edges of a range, as UNION ALL: two range scans
    of the primary key (an OR of the two ranges made SQLite scan `rollup_hour` per label set)."""
    return select + " UNION ALL " + select


def proto_sql(q: Question, end_ns: int) -> tuple[str, list[object]]:
    d0, d1 = _parts(q, end_ns)
    days = "bucket >= ? AND bucket < ?"
    edges = "h.bucket >= ? AND h.bucket < ?"
    p_days: list[object] = [d0, d1]
    p_edges: list[object] = [q.start_ns, d0, d1, end_ns]  # two ranges: one per edge
    sums = "SUM(n), SUM(e), SUM(tok), SUM(hi), SUM(lo)"
    h_sums = ROLL_SUMS.replace("calls AS", "h.calls AS").replace("errors AS", "h.errors AS")
    if not q.group and q.customer:
        sql = (f"SELECT {sums} FROM (SELECT {ROLL_SUMS} FROM rollup_field_day WHERE field = 'customer' AND value = ? "
               f"AND {days} UNION ALL "
               + _edges(f"SELECT {h_sums} FROM rollup_hour h WHERE {edges} AND h.labelset IN "
                        f"(SELECT labelset FROM labelset_dims WHERE field = 'customer' AND value = ?)") + ")")
        return sql, [q.customer, *p_days, q.start_ns, d0, q.customer, d1, end_ns, q.customer]
    if not q.group or q.group == "day":
        d = f"h.bucket - h.bucket % {DAY_NS}"
        sql = (f"SELECT {'d, ' if q.group else ''}{sums} FROM (SELECT bucket AS d, {ROLL_SUMS} FROM rollup_field_day "
               f"WHERE field = '' AND {days} UNION ALL "
               + _edges(f"SELECT {d} AS d, {h_sums} FROM rollup_hour h WHERE {edges}") + ")"
               f"{' GROUP BY d' if q.group else ''}")
        return sql, [*p_days, *p_edges]
    by_day = q.group == "day_customer"
    if q.group == "model":
        day_key = "json_extract(value, '$[2]') || '/' || json_extract(value, '$[3]')"
        field, edge_key, join = "''", "l.provider || '/' || l.model", "CROSS JOIN labelsets l ON l.id = h.labelset"
    else:
        day_key, field, edge_key = "value", "'customer'", "x.value"
        join = "CROSS JOIN labelset_dims x ON x.labelset = h.labelset AND x.field = 'customer'"
    d = f"h.bucket - h.bucket % {DAY_NS} AS d, " if by_day else ""
    parts = (f"SELECT {'bucket AS d, ' if by_day else ''}{day_key} AS k, {ROLL_SUMS} FROM rollup_field_day "
             f"WHERE field = {field} AND {days} UNION ALL "
             + _edges(f"SELECT {d}{edge_key} AS k, {h_sums} FROM rollup_hour h {join} WHERE {edges}"))
    group = "d, k" if by_day else "k"
    groups = (f"SELECT {'d, ' if by_day else ''}k, SUM(n) AS n, SUM(e) AS e, SUM(tok) AS tok, SUM(hi) AS hi, "
              f"SUM(lo) AS lo FROM ({parts}) GROUP BY {group}")
    return _top_sql(groups, q, by_day), [*p_days, *p_edges]


def _quoted(expr: str) -> str:
    """A CSV cell (RFC 4180) of text `expr`, quoted when it holds a comma, quote, CR or LF."""
    return (f"CASE WHEN {expr} GLOB '*[,\"'||char(13)||char(10)||']*' THEN '\"' || replace({expr}, '\"', '\"\"') "
            f"|| '\"' ELSE {expr} END")


def calls_lines_sql() -> str:
    """Every call of the range, newest first, as whole CSV lines built by SQLite: Python only writes them."""
    money = [f"printf('%d.%012d', c.c_{c} / 1000000000000, c.c_{c} % 1000000000000)"
             for c in ("input", "cache_read", "cache_write", "output", "reasoning", "request")]
    total = f"printf('%d.%012d', ({COST}) / 1000000000000, ({COST}) % 1000000000000)".replace("c_", "c.c_")
    text = ["l.service", "l.environment", "l.provider", "l.model", "l.request_model", "l.operation", "l.status",
            "l.error_type", "c.conversation", "c.user", "json_extract(l.dims, '$.customer')",
            "json_extract(l.dims, '$.feature')", "json_extract(l.dims, '$.organization')"]
    cells = [WHEN, "hex(c.trace_id)",
             "hex(c.span_id)", *(_quoted(f"COALESCE({t}, '')") for t in text), "c.t_input", "c.t_cache_read",
             "c.t_cache_write", "c.t_output", "c.t_reasoning", *money, total, "c.duration_us",
             _quoted("p.entry"), "c.unpriced"]
    line = " || ',' || ".join(cells)
    return (f"SELECT {line} || char(13, 10), {COST.replace('c_', 'c.c_')} "
            "FROM calls c JOIN labelsets l ON l.id = c.labelset JOIN prices p ON p.id = c.price "
            "WHERE c.end_ns >= ? AND c.end_ns < ? ORDER BY c.end_ns DESC")


def _calls_lines(conn: sqlite3.Connection, q: Question, end_ns: int) -> Answer:
    rows = cost = size = 0
    cursor = conn.execute(calls_lines_sql(), (q.start_ns, end_ns))
    while True:
        page = cursor.fetchmany(1000)
        if not page:
            break
        size += len("".join(line for line, _ in page))
        rows += len(page)
        cost += sum(c for _, c in page)
    return {"rows": rows, "calls": rows, "cost": cost, "bytes": size}


def raw_is_smaller(conn: sqlite3.Connection, q: Question, end_ns: int, field: str) -> bool:
    """The planner's choice for a grouping by `field`: the raw calls when the field's daily rollup rows
    of the range are not fewer than its calls (high cardinality: about one row per call), by width."""
    d0, d1 = _parts(q, end_ns)
    stats = ("SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(calls), 0) FROM field_day_rows WHERE field = ? "
             "AND bucket >= ? AND bucket < ?")
    rows = conn.execute(stats, (field, d0, d1)).fetchone()[0]
    calls = conn.execute(stats, ("", d0, d1)).fetchone()[1]
    return bool(rows * ROW_WIDTH > calls)


def answer_proto(db: Path, q: Question, end_ns: int) -> Answer:
    conn = connect(db)
    if q.export == "calls":  # raw rows either way: whole CSV lines built by SQLite
        return _calls_lines(conn, q, end_ns)
    sql, params = proto_sql(q, end_ns)
    if q.group == "customer" and raw_is_smaller(conn, q, end_ns, "customer"):
        sql, params = plain_sql(q), [q.start_ns, end_ns]
    if not q.group:
        return {"groups": {"": _vec(*conn.execute(sql, params).fetchone())}}
    if q.export:
        return _groups_csv(conn.execute(sql + " ORDER BY hi + (lo >> 32) DESC, lo DESC", params))
    return {"groups": _rows(conn, sql, params, q)}
