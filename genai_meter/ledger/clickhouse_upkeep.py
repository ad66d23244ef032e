"""ClickHouse ledger upkeep: re-sealing hours late calls reached, `prune` and `forget`.

Re-seal. A call that arrives for an hour already sealed (a replay, a spool shipped after an outage)
is stored in `calls` but was not in the hour's rollup. Each seal pass compares, per sealed hour, the
calls stored (plain count, then `FINAL` for the hours where it is higher) with the hour's rollup;
an hour holding more calls than its rollup is re-sealed: the difference between its deduplicated
raw sums and its rollup sums, per rollup key, is inserted into `rollup_hour` (a SummingMergeTree adds
it; the daily view follows), with the token `reseal-<hour>-<calls>` so that several processes apply
it once. Until then readers answer that hour from the rollup without the late calls (at most one
seal pass, `SEAL_EVERY_S`).

`prune`: the hours before the cutoff are sealed first, then `ALTER TABLE calls DELETE` of the raw
calls past `ledger.retention_days` and of the rollups past `rollup_retention_days` (the TTLs stay).
`forget --user`: `ALTER TABLE calls UPDATE user = ''`. `forget --customer`: a rollup key cannot be
updated, so the customer's rollup rows are inserted again under the key without the customer, its
calls inserted again without it (and under the tenant that follows), then the old rows deleted; in
that order, a seal pass meanwhile never sees more calls than rollups (nothing re-sealed twice).
Mutations run with `mutations_sync = 2` (done when the statement returns).
"""

from __future__ import annotations

from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import Executor, cell_int
from genai_meter.ledger.rows import LABEL_FIELDS

RESEAL_HOURS_PER_PASS = 48
SYNC = " SETTINGS mutations_sync = 2"
_KEY = ", ".join(LABEL_FIELDS)
_INT_SUMS = ["count()", "countIf(status != 'ok')", "sum(unpriced)", "countIf(unmetered != '')",
             "countIf(invalid != '')"]


def _raw_sums() -> str:
    """`clickhouse_sql.raw_sums` named like the rollup columns, counts as Int64 (the rollups' type)."""
    exprs = _INT_SUMS + [f"sum({n})" for n in sql.SUM_COLUMNS[len(_INT_SUMS):]]
    return ", ".join(f"{e} AS {n}" if n.startswith(("c_", "list_")) else f"toInt64({e}) AS {n}"
                     for e, n in zip(exprs, sql.SUM_COLUMNS))


def reseal_candidates_sql(db: str) -> str:
    """Sealed hours whose stored calls (before deduplication) outnumber their rollup's."""
    return (f"SELECT h FROM (SELECT intDiv(end_ns, {sql.HOUR_NS}) * {sql.HOUR_NS} AS h, count() AS n FROM {db}.calls "
            "WHERE end_ns < {until:Int64} GROUP BY h) r LEFT JOIN (SELECT bucket, sum(calls) AS rolled FROM "
            f"{db}.rollup_hour GROUP BY bucket) s ON s.bucket = r.h WHERE r.n > s.rolled ORDER BY h")


def final_counts_sql(db: str, hours: list[int]) -> str:
    return (f"SELECT h, n, rolled FROM (SELECT intDiv(end_ns, {sql.HOUR_NS}) * {sql.HOUR_NS} AS h, count() AS n FROM "
            f"{db}.calls FINAL WHERE h IN ({', '.join(str(int(h)) for h in hours)}) GROUP BY h) r LEFT JOIN "
            f"(SELECT bucket, sum(calls) AS rolled FROM {db}.rollup_hour GROUP BY bucket) s ON s.bucket = r.h")


def reseal_hour_sql(db: str, hour_ns: int, calls: int) -> str:
    """Insert the hour's deduplicated raw sums minus its rollup sums, per rollup key (non-zero rows)."""
    cols = sql.SUM_COLUMNS
    rolled = ", ".join(f"-sum({n}) AS {n}" for n in cols)
    nonzero = " OR ".join(f"{n} != 0" for n in cols)
    hour = int(hour_ns)
    return (f"INSERT INTO {db}.rollup_hour SETTINGS insert_deduplication_token = 'reseal-{hour}-{int(calls)}', "
            "deduplicate_blocks_in_dependent_materialized_views = 1 "
            f"SELECT {hour} AS bucket, tenant, {_KEY}, dims_key, {', '.join(f'sum({n}) AS {n}' for n in cols)} FROM ("
            f"SELECT tenant, {_KEY}, toJSONString(dims) AS dims_key, {_raw_sums()} FROM {db}.calls FINAL "
            f"WHERE end_ns >= {hour} AND end_ns < {hour + sql.HOUR_NS} GROUP BY tenant, {_KEY}, dims_key "
            f"UNION ALL SELECT tenant, {_KEY}, dims_key, {rolled} FROM {db}.rollup_hour WHERE bucket = {hour} "
            f"GROUP BY tenant, {_KEY}, dims_key) GROUP BY tenant, {_KEY}, dims_key HAVING {nonzero}")


def reseal(executor: Executor, db: str, until_ns: int) -> list[int]:
    """Re-seal the sealed hours (before `until_ns`) late calls reached; returns those hours."""
    candidates = [cell_int(r[0]) for r in executor.query(reseal_candidates_sql(db), {"until": until_ns})]
    if not candidates:
        return []
    done: list[int] = []
    for row in executor.query(final_counts_sql(db, candidates[:RESEAL_HOURS_PER_PASS * 4])):
        hour, calls, rolled = (cell_int(v) for v in row)
        if calls > rolled and len(done) < RESEAL_HOURS_PER_PASS:
            executor.command(reseal_hour_sql(db, hour, calls))
            done.append(hour)
    return done


def prune_cutoff(retention_days: int, now_ns: int) -> int:
    """The raw calls before this instant (a midnight) are past the retention."""
    cutoff = now_ns - retention_days * sql.DAY_NS
    return cutoff - cutoff % sql.DAY_NS


def prune_executor(executor: Executor, db: str, retention_days: int, rollup_retention_days: int,
                   now_ns: int) -> int:
    """Delete raw calls past the retention and rollups past theirs (the caller sealed every hour before
    `prune_cutoff` first: `clickhouse_writer.prune_sealed`); returns the raw calls deleted."""
    cutoff = prune_cutoff(retention_days, now_ns)
    gone = cell_int(executor.query(f"SELECT count() FROM {db}.calls FINAL WHERE end_ns < {{cutoff:Int64}}",
                                   {"cutoff": cutoff})[0][0])
    if gone:
        executor.command(f"ALTER TABLE {db}.calls DELETE WHERE end_ns < {int(cutoff)}{SYNC}")
    rollup_cutoff = now_ns - rollup_retention_days * sql.DAY_NS
    rollup_cutoff -= rollup_cutoff % sql.DAY_NS
    for table in ("rollup_hour", "rollup_day"):
        executor.command(f"ALTER TABLE {db}.{table} DELETE WHERE bucket < {int(rollup_cutoff)}{SYNC}")
    return gone


def forget_user_executor(executor: Executor, db: str, values: list[str]) -> int:
    """Erase an end user's id (raw or hashed forms in `values`); returns the calls changed."""
    p = sql.Params()
    where = f"user IN ({', '.join(p.add(v, 'String') for v in values)}) AND user != ''"
    changed = cell_int(executor.query(f"SELECT count() FROM {db}.calls FINAL WHERE {where}", p.values)[0][0])
    if changed:
        executor.command(f"ALTER TABLE {db}.calls UPDATE user = '' WHERE {where}{SYNC}", p.values)
    return changed


def _tenant(dims: str) -> str:
    """The tenant of a dimension map without the customer (clickhouse_sql.tenant_of)."""
    return f"if({dims}['tenant'] != '', {dims}['tenant'], {dims}['organization'])"


def forget_customer_executor(executor: Executor, db: str, value: str) -> int:
    """Move a customer's calls and rollups to the keys without it, then delete the old rows."""
    p = sql.Params()
    v = p.add(value, "String")
    raw_where = f"dims['customer'] = {v}"
    key_where = f"JSONExtractString(dims_key, 'customer') = {v}"
    changed = cell_int(executor.query(f"SELECT count() FROM {db}.calls FINAL WHERE {raw_where}", p.values)[0][0])
    kept = "mapFilter((k, x) -> k != 'customer', JSONExtract(dims_key, 'Map(String, String)'))"
    sums = ", ".join(f"sum({n})" for n in sql.SUM_COLUMNS)
    executor.command(f"INSERT INTO {db}.rollup_hour SELECT bucket, {_tenant(kept)}, {_KEY}, toJSONString({kept}), "
                     f"{sums} FROM {db}.rollup_hour WHERE {key_where} GROUP BY bucket, {_KEY}, dims_key", p.values)
    dims = "mapFilter((k, x) -> k != 'customer', dims)"
    if changed:
        executor.command(f"INSERT INTO {db}.calls SELECT * REPLACE ({dims} AS dims, {_tenant(dims)} AS tenant) "
                         f"FROM (SELECT * FROM {db}.calls WHERE {raw_where} ORDER BY version DESC "
                         "LIMIT 1 BY tenant, end_ns, trace_id, span_id)", p.values)  # the newest version (as FINAL)
        executor.command(f"ALTER TABLE {db}.calls DELETE WHERE {raw_where}{SYNC}", p.values)
    for table in ("rollup_hour", "rollup_day"):
        executor.command(f"ALTER TABLE {db}.{table} DELETE WHERE {key_where}{SYNC}", p.values)
    return changed
