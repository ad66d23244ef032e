"""The columnar answers of the reports benchmark: DuckDB and chdb over the Parquet copy of the ledger
(`reports_data.ensure_parquet`: `calls` as stored, `labelsets` with the dimensions as columns).

Money: each call's cost (< 2^63) is summed as a 128-bit integer (DuckDB: SUM(BIGINT) is HUGEINT;
ClickHouse: sum(toInt128(x)), since its sum(Int64) wraps silently), so nothing overflows or rounds.
Top k + remainder: a window ROW_NUMBER() over the groups ordered by exact cost then key, regrouped
with every rank past k as OTHER, in the engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.reports_data import DAY_NS
from benchmarks.reports_questions import OTHER, Answer, Question, Vec

TOK = "t_input + t_cache_read + t_cache_write + t_output + t_reasoning"
COST = "c_input + c_cache_read + c_cache_write + c_output + c_reasoning + c_request"
CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning", "request")
THREADS = 2


def _keys(q: Question) -> tuple[str, str]:
    """(group expressions, GROUP BY list) over calls c joined to labelsets l."""
    if q.group == "customer":
        return "l.customer AS k", "k"
    if q.group == "model":
        return "l.provider || '/' || l.model AS k", "k"
    if q.group == "day":
        return f"c.end_ns - c.end_ns % {DAY_NS} AS d", "d"
    return f"c.end_ns - c.end_ns % {DAY_NS} AS d, l.customer AS k", "d, k"


def grouped_sql(q: Question, calls: str, sets: str, end_ns: int, int128: str) -> str:
    """One statement over `calls` and `sets` (table expressions) answering `q`: columns [d,] [k,] n, e,
    tok, cost. `int128` wraps a BIGINT expression for an exact 128-bit sum ("{}": the engine's SUM is)."""
    where = f"c.end_ns >= {q.start_ns} AND c.end_ns < {end_ns}"
    if q.customer:
        where += f" AND l.customer = '{q.customer}'"  # a constant of the benchmark, not a request value
    sums = (f"count(*) AS n, sum(CASE WHEN l.status <> 'ok' THEN 1 ELSE 0 END) AS e, "
            f"sum({int128.format(TOK)}) AS tok, sum({int128.format(COST)}) AS cost")
    if not q.group:
        return f"SELECT {sums} FROM {calls} c JOIN {sets} l ON l.id = c.labelset WHERE {where}"
    keys, group = _keys(q)
    groups = f"SELECT {keys}, {sums} FROM {calls} c JOIN {sets} l ON l.id = c.labelset WHERE {where} GROUP BY {group}"
    if not q.top:
        return groups
    by_day = q.group == "day_customer"
    part = "PARTITION BY d " if by_day else ""
    day = "d, " if by_day else ""
    return (f"WITH g AS ({groups}), r AS (SELECT *, row_number() OVER ({part}ORDER BY cost DESC, k ASC) AS rn "
            f"FROM g) SELECT {day}CASE WHEN rn <= {q.top} THEN k ELSE '{OTHER}' END AS kk, sum(n), sum(e), "
            f"sum(tok), sum(cost) FROM r GROUP BY {day}kk")


def calls_select(q: Question, calls: str, sets: str, end_ns: int, money: str, when: str) -> str:
    """Every call of the range as CSV cells, newest first (time and money formatted by the engine)."""
    cells = ", ".join(money.format(f"c.c_{c}") for c in CLASSES)
    return (f"SELECT {when}, c.trace_id, c.span_id, l.service, l.environment, l.provider, l.model, l.model AS "
            f"request_model, l.operation, l.status, l.error_type, c.conversation, c.user, l.customer, l.feature, "
            f"l.organization, c.t_input, c.t_cache_read, c.t_cache_write, c.t_output, c.t_reasoning, {cells}, "
            f"{money.format('(' + COST.replace('c_', 'c.c_') + ')')}, c.duration_us, c.unpriced "
            f"FROM {calls} c JOIN {sets} l ON l.id = c.labelset "
            f"WHERE c.end_ns >= {q.start_ns} AND c.end_ns < {end_ns} ORDER BY c.end_ns DESC")


def _canonical(q: Question, rows: list[tuple[object, ...]]) -> dict[str, Vec]:
    out: dict[str, Vec] = {}
    for row in rows:
        vals = [int(str(v)) for v in row[-4:]]
        if not q.group:
            out[""] = vals
        elif q.group == "day":
            out[str(row[0])] = vals
        elif q.group == "day_customer":
            out[f"{row[0]}|{row[1]}"] = vals
        else:
            out[str(row[0])] = vals
    return out


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def answer_duckdb(parquet: Path, q: Question, end_ns: int, scratch: Path) -> Answer:
    import duckdb  # optional: the benchmark's columnar comparison only

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    calls = f"read_parquet('{parquet / 'calls.parquet'}')"
    sets = f"read_parquet('{parquet / 'labelsets.parquet'}')"
    if q.export == "calls":
        out = scratch / "duckdb-calls.csv"
        money = "printf('%d.%012d', {0} // 1000000000000, {0} % 1000000000000)"
        when = "strftime(make_timestamp(c.end_ns // 1000), '%Y-%m-%dT%H:%M:%S.%fZ')"
        con.execute(f"COPY ({calls_select(q, calls, sets, end_ns, money, when)}) TO '{out}' (HEADER false)")
        rows = _lines(out)
        size = out.stat().st_size
        os.unlink(out)
        cost = con.execute(grouped_sql(Question("", "", q.days), calls, sets, end_ns, "{}")).fetchone()
        return {"rows": rows, "calls": rows, "cost": int(cost[3]) if cost else 0, "bytes": size}
    sql = grouped_sql(q, calls, sets, end_ns, "{}")
    if q.export:
        out = scratch / "duckdb-groups.csv"
        con.execute(f"COPY ({sql} ORDER BY cost DESC, k) TO '{out}' (HEADER false)")
        size = out.stat().st_size
        rows = _lines(out)
        os.unlink(out)
        total = con.execute(f"SELECT count(*), sum(n), sum(cost) FROM ({sql})").fetchone()
        assert total is not None and total[0] == rows
        return {"rows": rows, "calls": int(total[1]), "cost": int(total[2]), "bytes": size}
    return {"groups": _canonical(q, con.execute(sql).fetchall())}


def answer_chdb(parquet: Path, q: Question, end_ns: int, scratch: Path, engine: Any = None) -> Answer:
    import chdb  # optional: the benchmark's columnar comparison only
    db: Any = engine or chdb  # a session of the caller's (one chdb engine per process)

    calls = f"file('{parquet / 'calls.parquet'}', Parquet)"
    sets = f"file('{parquet / 'labelsets.parquet'}', Parquet)"
    int128 = "toInt128({})"
    if q.export == "calls":
        out = scratch / "chdb-calls.csv"
        out.unlink(missing_ok=True)
        money = "concat(toString(intDiv({0}, 1000000000000)), '.', leftPad(toString({0} % 1000000000000), 12, '0'))"
        when = "toString(fromUnixTimestamp64Nano(c.end_ns, 'UTC'))"
        db.query(f"INSERT INTO FUNCTION file('{out}', CSV) {calls_select(q, calls, sets, end_ns, money, when)}")
        rows = _lines(out)
        size = out.stat().st_size
        os.unlink(out)
        total = _query(db, grouped_sql(Question("", "", q.days), calls, sets, end_ns, int128))
        return {"rows": rows, "calls": rows, "cost": int(total[0][3]), "bytes": size}
    sql = grouped_sql(q, calls, sets, end_ns, int128)
    if q.export:
        out = scratch / "chdb-groups.csv"
        out.unlink(missing_ok=True)
        db.query(f"INSERT INTO FUNCTION file('{out}', CSV) {sql} ORDER BY cost DESC, k")
        size = out.stat().st_size
        rows = _lines(out)
        os.unlink(out)
        total = _query(db, f"SELECT count(), sum(n), sum(cost) FROM ({sql})")[0]
        return {"rows": rows, "calls": int(total[1]), "cost": int(total[2]), "bytes": size}
    return {"groups": _canonical(q, _query(db, sql))}


def _query(chdb: object, sql: str) -> list[tuple[str, ...]]:
    result = chdb.query(sql, "TabSeparated")  # type: ignore[attr-defined]
    text = result.bytes().decode()
    return [tuple(line.split("\t")) for line in text.splitlines() if line]
