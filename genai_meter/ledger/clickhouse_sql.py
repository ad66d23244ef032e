"""Every SQL text the ClickHouse backend runs: DDL, migrations, inserts, rollup sealing and queries.

Pure functions returning SQL (and parameters bound server-side as `{name:Type}`), so the very same
text runs through `clickhouse-connect` in production and through the in-process engine (chdb) in
the tests. Money is `Decimal(38, 12)` USD per class: exact, the same quantum as the 10^-12 integers
of the other stores, and its sums (Decimal128) cannot overflow where Int64 sums of 10^-12 USD would
past $9.2M.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, TOKEN_CLASSES, Row
from genai_meter.money import from_pico

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
DEDUP_WINDOW = 10_000  # insert blocks remembered for dedup tokens (non-replicated tables)
LC = "LowCardinality(String)"
MONEY = "Decimal(38, 12)"
# rollup sum columns; counts are signed because re-pricing inserts corrections
_SUM_COLS = ([("calls", "Int64"), ("errors", "Int64"), ("unpriced", "Int64"), ("unmetered", "Int64"),
              ("invalid", "Int64")] + [(f"t_{c}", "Int64") for c in TOKEN_CLASSES]
             + [(f"c_{c}", MONEY) for c in COST_CLASSES] + [("list_cost", MONEY), ("duration_us", "Int64"),
                                                            ("weight_micro", "Int64")])
SUM_COLUMNS = [name for name, _ in _SUM_COLS]
TENANT_DIMENSIONS = ("tenant", "organization", "customer")  # the first present is the row's tenant


def _labels(kind: str = LC) -> str:
    return ", ".join(f"{f} {kind}" for f in LABEL_FIELDS)


def ddl_v1(db: str, retention_days: int, rollup_retention_days: int) -> list[str]:
    """Schema version 1: raw calls, hourly rollups sealed from deduplicated hours, a daily view."""
    settings = f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
    sums = ", ".join(f"{n} {t}" for n, t in _SUM_COLS)
    key = ", ".join(LABEL_FIELDS)
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.calls (tenant {LC}, end_ns Int64, "
        "day Date MATERIALIZED toDate(intDiv(end_ns, 1000000000)), trace_id String, span_id String, "
        f"parent_span_id String, {_labels()}, dims Map({LC}, String), conversation String, user String, "
        "duration_us Int64, ttft_us Nullable(Int64), "
        + ", ".join(f"t_{c} Int64" for c in TOKEN_CLASSES) + ", "
        + ", ".join(f"c_{c} {MONEY}" for c in COST_CLASSES) + f", list_cost {MONEY}, "
        f"price_source {LC}, price_version {LC}, price_entry {LC}, unit_prices {LC}, unpriced UInt8, "
        f"unmetered {LC}, invalid {LC}, weight_micro Int64, cache_write_1h UInt8, version Int64, "
        "INDEX conversation_idx conversation TYPE bloom_filter GRANULARITY 4, "
        "INDEX user_idx user TYPE bloom_filter GRANULARITY 4) "
        "ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(day) "
        "ORDER BY (tenant, day, trace_id, span_id) "
        f"TTL day + INTERVAL {retention_days} DAY {settings}",
        f"CREATE TABLE IF NOT EXISTS {db}.rollup_hour (bucket Int64, tenant {LC}, {_labels()}, dims_key String, "
        f"{sums}) ENGINE = SummingMergeTree ORDER BY (bucket, tenant, {key}, dims_key) "
        f"TTL toDate(intDiv(bucket, 1000000000)) + INTERVAL {rollup_retention_days} DAY {settings}",
        f"CREATE TABLE IF NOT EXISTS {db}.rollup_day (bucket Int64, tenant {LC}, {_labels()}, dims_key String, "
        f"{sums}) ENGINE = SummingMergeTree ORDER BY (bucket, tenant, {key}, dims_key) "
        f"TTL toDate(intDiv(bucket, 1000000000)) + INTERVAL {rollup_retention_days} DAY {settings}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_day_mv TO {db}.rollup_day AS SELECT "
        f"bucket - bucket % {DAY_NS} AS bucket, tenant, {key}, dims_key, {', '.join(SUM_COLUMNS)} "
        f"FROM {db}.rollup_hour",
        f"CREATE TABLE IF NOT EXISTS {db}.seal_state (id UInt8, sealed_until_ns Int64) "
        "ENGINE = ReplacingMergeTree(sealed_until_ns) ORDER BY id",
    ]


def ddl_v2(db: str) -> list[str]:
    """Schema version 2: re-pricing runs and the costs they replaced."""
    money = ", ".join(f"c_{c} {MONEY}" for c in COST_CLASSES)
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.reprices (id Int64, start_ns Int64, end_ns Int64, provider String, "
        f"model String, price_version String, calls UInt64, old_total {MONEY}, new_total {MONEY}) "
        "ENGINE = MergeTree ORDER BY id",
        f"CREATE TABLE IF NOT EXISTS {db}.price_history (reprice Int64, end_ns Int64, trace_id String, "
        f"span_id String, price_source {LC}, price_version {LC}, price_entry {LC}, unpriced UInt8, {money}, "
        f"list_cost {MONEY}) ENGINE = MergeTree ORDER BY (end_ns, trace_id, span_id, reprice)",
    ]


def ddl_v3(db: str, rollup_retention_days: int) -> list[str]:
    """Schema version 3: billed units per call (three parallel arrays: unit name, quantity, cost; a new unit
    is a new name, never a column), the old unit costs in `price_history`, and hourly and daily unit rollups
    keyed like the call rollups plus the unit."""
    settings = f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
    key = ", ".join(LABEL_FIELDS)
    arrays = (f"unit_names Array({LC})", "unit_quantities Array(Int64)", f"unit_costs Array({MONEY})")
    tables = [
        f"CREATE TABLE IF NOT EXISTS {db}.{name} (bucket Int64, tenant {LC}, {_labels()}, dims_key String, "
        f"unit {LC}, quantity Int64, cost {MONEY}) ENGINE = SummingMergeTree "
        f"ORDER BY (bucket, tenant, {key}, dims_key, unit) "
        f"TTL toDate(intDiv(bucket, 1000000000)) + INTERVAL {rollup_retention_days} DAY {settings}"
        for name in ("rollup_unit_hour", "rollup_unit_day")]
    return [
        f"ALTER TABLE {db}.calls " + ", ".join(f"ADD COLUMN IF NOT EXISTS {c}" for c in arrays),
        f"ALTER TABLE {db}.price_history ADD COLUMN IF NOT EXISTS unit_names Array({LC}), "
        f"ADD COLUMN IF NOT EXISTS unit_costs Array({MONEY})",
        *tables,
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_unit_day_mv TO {db}.rollup_unit_day AS SELECT "
        f"bucket - bucket % {DAY_NS} AS bucket, tenant, {key}, dims_key, unit, quantity, cost "
        f"FROM {db}.rollup_unit_hour",
    ]


def ddl_v4(db: str) -> list[str]:
    """Schema version 4: the providers' own usage and cost reports (ledger.clickhouse_provider_lines). A
    report row per (provider, day, kind) names the import whose lines count (the newest `import_id`)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.provider_reports (provider String, day Date, kind String, "
        "import_id Int64, states_cost UInt8, lines UInt32, source String, imported_ns Int64) "
        "ENGINE = ReplacingMergeTree(import_id) ORDER BY (provider, day, kind)",
        f"CREATE TABLE IF NOT EXISTS {db}.provider_lines (provider String, day Date, kind String, import_id Int64, "
        "seq UInt32, model String, model_key String, project String, api_key_id String, service_tier String, "
        "batch Nullable(UInt8), served_by String, line_item String, requests Nullable(Int64), t_input Int64, "
        "t_cache_read Int64, t_cache_write Int64, t_output Int64, t_reasoning Int64, cache_write_1h Int64, "
        f"folded String, units String, cost Nullable({MONEY}), currency String, source String) "
        "ENGINE = MergeTree ORDER BY (provider, day, kind, import_id, seq)",
    ]


def migrations(db: str, retention_days: int, rollup_retention_days: int) -> list[list[str]]:
    """Forward-only steps; version N is the first N applied (append only)."""
    return [ddl_v1(db, retention_days, rollup_retention_days), ddl_v2(db), ddl_v3(db, rollup_retention_days),
            ddl_v4(db)]


LATEST = 4  # len(migrations(...))


def bootstrap(db: str) -> list[str]:
    return [f"CREATE DATABASE IF NOT EXISTS {db}",
            f"CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32, applied_at DateTime DEFAULT now()) "
            "ENGINE = MergeTree ORDER BY version"]


def schema_version_sql(db: str) -> str:
    return f"SELECT max(version) FROM {db}.schema_version"


def record_version_sql(db: str, version: int) -> str:
    return f"INSERT INTO {db}.schema_version (version) VALUES ({int(version)})"


# -- writing ---------------------------------------------------------------------------------------

def tenant_of(dims: Mapping[str, str]) -> str:
    for name in TENANT_DIMENSIONS:
        if dims.get(name):
            return dims[name]
    return ""


def json_row(row: Row, version: int) -> str:
    """One JSONEachRow line of the calls table."""
    dims = dict(row.dims)
    doc: dict[str, object] = {
        "tenant": tenant_of(dims), "end_ns": row.end_ns, "trace_id": row.trace_id.hex(), "span_id": row.span_id.hex(),
        "parent_span_id": row.parent_span_id.hex(), **dict(zip(LABEL_FIELDS, row.labels)), "dims": dims,
        "conversation": row.conversation, "user": row.user, "duration_us": row.duration_us, "ttft_us": row.ttft_us,
        **{f"t_{c}": v for c, v in zip(TOKEN_CLASSES, row.tokens)},
        **{f"c_{c}": f"{from_pico(v):f}" for c, v in zip(COST_CLASSES, row.costs)},
        "list_cost": f"{from_pico(row.list_cost):f}", "price_source": row.price.source,
        "price_version": row.price.version, "price_entry": row.price.entry, "unit_prices": row.price.unit_prices,
        "unpriced": row.unpriced, "unmetered": row.unmetered, "invalid": row.invalid,
        "weight_micro": row.weight_micro, "cache_write_1h": row.cache_write_1h, "version": version}
    if row.units:
        doc.update(unit_arrays(row.units))
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def unit_arrays(units: Sequence[tuple[str, int, int]]) -> dict[str, list[object]]:
    """The calls table's unit columns of a row's units (`ledger.units`)."""
    return {"unit_names": [n for n, _, _ in units], "unit_quantities": [q for _, q, _ in units],
            "unit_costs": [f"{from_pico(c):f}" for _, _, c in units]}


def insert_sql(db: str, token: str, body: str, table: str = "calls") -> str:
    """An insert of JSONEachRow lines; a retried batch with the same token is stored once."""
    safe = "".join(ch for ch in token if ch.isalnum() or ch in "-_.")
    return (f"INSERT INTO {db}.{table} SETTINGS insert_deduplication_token = '{safe}' FORMAT JSONEachRow\n{body}")


def _seal_sql(db: str, hour_ns: int, table: str, token: str, sums: str, source: str, by: str) -> str:
    key = ", ".join(LABEL_FIELDS)
    return (f"INSERT INTO {db}.{table} SETTINGS insert_deduplication_token = '{token}-{int(hour_ns)}', "
            "deduplicate_blocks_in_dependent_materialized_views = 1 "
            f"SELECT {int(hour_ns)} AS bucket, tenant, {key}, toJSONString(dims) AS dims_key, {sums} "
            f"FROM {db}.calls FINAL{source} WHERE end_ns >= {int(hour_ns)} AND end_ns < {int(hour_ns) + HOUR_NS} "
            f"GROUP BY tenant, {key}, dims_key{by}")


def seal_hour_sql(db: str, hour_ns: int) -> str:
    """Roll one closed hour up from the deduplicated raw rows (FINAL); the token makes it once."""
    return _seal_sql(db, hour_ns, "rollup_hour", "seal", raw_sums(), "", "")


def seal_hour_units_sql(db: str, hour_ns: int) -> str:
    """`seal_hour_sql` for the billed units of the hour (its own token, so it too is made once)."""
    return _seal_sql(db, hour_ns, "rollup_unit_hour", "seal-units", "unit, sum(quantity), sum(cost)",
                     " ARRAY JOIN unit_names AS unit, unit_quantities AS quantity, unit_costs AS cost", ", unit")


def sealed_until_sql(db: str) -> str:
    return f"SELECT max(sealed_until_ns) FROM {db}.seal_state"


def set_sealed_until_sql(db: str, ns: int) -> str:
    return f"INSERT INTO {db}.seal_state (id, sealed_until_ns) VALUES (0, {int(ns)})"


def hours_with_calls_sql(db: str) -> str:
    return (f"SELECT DISTINCT intDiv(end_ns, {HOUR_NS}) * {HOUR_NS} AS h FROM {db}.calls "
            "WHERE end_ns >= {start:Int64} AND end_ns < {end:Int64} ORDER BY h")


def first_call_sql(db: str) -> str:
    return f"SELECT min(end_ns), count() FROM {db}.calls"


# -- reading ---------------------------------------------------------------------------------------

def raw_sums() -> str:
    return ", ".join(["count()", "countIf(status != 'ok')", "sum(unpriced)", "countIf(unmetered != '')",
                      "countIf(invalid != '')"] + [f"sum(t_{c})" for c in TOKEN_CLASSES]
                     + [f"sum(c_{c})" for c in COST_CLASSES] + ["sum(list_cost)", "sum(duration_us)",
                                                               "sum(weight_micro)"])


def rollup_sums() -> str:
    return ", ".join(f"sum({n})" for n in SUM_COLUMNS)


class Params:
    """Collects bound parameters and hands out their `{name:Type}` placeholders."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"


def field_expr(name: str, table: str, params: Params) -> str:
    """The SQL expression of field `name` on the raw table ("raw") or a rollup table."""
    if name in LABEL_FIELDS or name in ("conversation", "user"):
        return name
    key = params.add(name, "String")
    return f"dims[{key}]" if table == "raw" else f"JSONExtractString(dims_key, {key})"


def where(table: str, filters: Mapping[str, Sequence[str]], params: Params) -> list[str]:
    conds = []
    for name, values in filters.items():
        expr = field_expr(name, table, params)
        conds.append(f"{expr} IN {params.add(list(values), 'Array(String)')}")
        if name in ("conversation", "user"):
            conds.append(f"{expr} != ''")
    return conds


def aggregate_sql(db: str, table: str, start_ns: int, end_ns: int, filters: Mapping[str, Sequence[str]],
                  group_by: Sequence[str], by_time: bool) -> tuple[str, dict[str, object]]:
    """(time, group values..., SUM_NAMES sums) of [start, end) on "raw", "hour" or "day"."""
    params = Params()
    if table == "raw":
        source, time_col, sums = f"{db}.calls FINAL", "end_ns", raw_sums()
        time_expr = f"end_ns - end_ns % {60 * 10**9}" if by_time else "0"
    else:
        source, time_col, sums = f"{db}.rollup_{table}", "bucket", rollup_sums()
        time_expr = "bucket" if by_time else "0"
    conds = [f"{time_col} >= {params.add(start_ns, 'Int64')}", f"{time_col} < {params.add(end_ns, 'Int64')}"]
    keys = [f"{field_expr(g, table, params)} AS g{i}" for i, g in enumerate(group_by)]
    conds += where(table, filters, params)
    group = ", ".join(["t", *(f"g{i}" for i in range(len(group_by)))])
    sql = (f"SELECT {time_expr} AS t, {''.join(k + ', ' for k in keys)}{sums} FROM {source} "
           f"WHERE {' AND '.join(conds)} GROUP BY {group}")
    return sql, params.values


def durations_sql(db: str, start_ns: int, end_ns: int, filters: Mapping[str, Sequence[str]],
                  group_by: Sequence[str]) -> tuple[str, dict[str, object]]:
    params = Params()
    keys = [f"{field_expr(g, 'raw', params)}" for g in group_by]
    conds = [f"end_ns >= {params.add(start_ns, 'Int64')}", f"end_ns < {params.add(end_ns, 'Int64')}",
             *where("raw", filters, params)]
    return (f"SELECT {''.join(k + ', ' for k in keys)}duration_us FROM {db}.calls FINAL WHERE {' AND '.join(conds)}",
            params.values)


def aggregate_units_sql(db: str, table: str, start_ns: int, end_ns: int, filters: Mapping[str, Sequence[str]],
                        group_by: Sequence[str], by_time: bool) -> tuple[str, dict[str, object]]:
    """(time, group values..., unit, quantity, cost) of the billed units in [start, end) of "raw" (the calls'
    unit arrays), "hour" or "day" (the unit rollups)."""
    params = Params()
    if table == "raw":
        source, time_col = (f"{db}.calls FINAL ARRAY JOIN unit_names AS unit, unit_quantities AS quantity, "
                            "unit_costs AS cost"), "end_ns"
        time_expr = f"end_ns - end_ns % {60 * 10**9}" if by_time else "0"
    else:
        source, time_col = f"{db}.rollup_unit_{table}", "bucket"
        time_expr = "bucket" if by_time else "0"
    conds = [f"{time_col} >= {params.add(start_ns, 'Int64')}", f"{time_col} < {params.add(end_ns, 'Int64')}"]
    keys = [f"{field_expr(g, table, params)} AS g{i}" for i, g in enumerate(group_by)]
    conds += where(table, filters, params)
    group = ", ".join(["t", *(f"g{i}" for i in range(len(group_by))), "unit"])
    sql = (f"SELECT {time_expr} AS t, {''.join(k + ', ' for k in keys)}unit, sum(quantity), sum(cost) FROM {source} "
           f"WHERE {' AND '.join(conds)} GROUP BY {group}")
    return sql, params.values


CALL_COLUMNS = ("end_ns, trace_id, span_id, parent_span_id, " + ", ".join(LABEL_FIELDS)
                + ", toJSONString(dims), conversation, user, duration_us, ttft_us, "
                + ", ".join(f"t_{c}" for c in TOKEN_CLASSES) + ", " + ", ".join(f"c_{c}" for c in COST_CLASSES)
                + ", unpriced, unmetered, invalid, weight_micro, price_source, price_version, price_entry, unit_prices")
# after CALL_COLUMNS (calls_sql) or REPRICE_COLUMNS: the unit arrays as text (names joined by \x1f, numbers by ",")
UNIT_COLUMNS = (", arrayStringConcat(unit_names, char(31)), arrayStringConcat(arrayMap(x -> toString(x), "
                "unit_quantities), ','), arrayStringConcat(arrayMap(x -> toString(x), unit_costs), ',')")


def calls_sql(db: str, filters: Mapping[str, Sequence[str]], start_ns: int | None, end_ns: int | None,
              before: tuple[int, str, str] | None, limit: int,
              conversation: str | None) -> tuple[str, dict[str, object]]:
    params = Params()
    conds = where("raw", filters, params)
    if start_ns is not None:
        conds.append(f"end_ns >= {params.add(start_ns, 'Int64')}")
    if end_ns is not None:
        conds.append(f"end_ns < {params.add(end_ns, 'Int64')}")
    if before is not None:
        conds.append(f"(end_ns, trace_id, span_id) < ({params.add(before[0], 'Int64')}, "
                     f"{params.add(before[1], 'String')}, {params.add(before[2], 'String')})")
    order = "DESC"
    if conversation is not None:
        conds.append(f"conversation = {params.add(conversation, 'String')} AND conversation != ''")
        order = "ASC"
    sql = (f"SELECT {CALL_COLUMNS}{UNIT_COLUMNS} FROM {db}.calls FINAL "
           f"{'WHERE ' + ' AND '.join(conds) if conds else ''} "
           f"ORDER BY end_ns {order}, trace_id {order}, span_id {order} LIMIT {int(limit)}")
    return sql, params.values


def conversations_sql(db: str, start_ns: int, end_ns: int, filters: Mapping[str, Sequence[str]],
                      before: tuple[int, str] | None, limit: int) -> tuple[str, dict[str, object]]:
    params = Params()
    conds = [f"end_ns >= {params.add(start_ns, 'Int64')}", f"end_ns < {params.add(end_ns, 'Int64')}",
             "conversation != ''", *where("raw", filters, params)]
    having = ""
    if before is not None:
        having = f"HAVING (max(end_ns), conversation) < ({params.add(before[0], 'Int64')}, " \
                 f"{params.add(before[1], 'String')})"
    total = " + ".join(f"c_{c}" for c in COST_CLASSES) + " + arraySum(unit_costs)"
    sql = (f"SELECT conversation, count(), {', '.join(f'sum(t_{c})' for c in TOKEN_CLASSES)}, sum({total}), "
           "min(end_ns - duration_us * 1000), max(end_ns), sum(duration_us), "
           "arrayStringConcat(arraySort(groupUniqArray(service)), char(31)), "
           "arrayStringConcat(arraySort(groupUniqArray(model)), char(31)), "
           "sum(unpriced) + countIf(invalid != ''), countIf(unmetered != '') "
           f"FROM {db}.calls FINAL WHERE {' AND '.join(conds)} GROUP BY conversation {having} "
           f"ORDER BY max(end_ns) DESC, conversation DESC LIMIT {int(limit)}")
    return sql, params.values


def coverage_sql(db: str) -> str:
    return (f"SELECT (SELECT min(end_ns) FROM {db}.calls), (SELECT max(end_ns) FROM {db}.calls), "
            f"(SELECT count() FROM {db}.calls), (SELECT min(bucket) FROM {db}.rollup_day), "
            f"(SELECT count() FROM {db}.rollup_day)")


REPRICE_COLUMNS = CALL_COLUMNS + ", list_cost, cache_write_1h, tenant"


def reprice_rows_sql(db: str, start_ns: int, end_ns: int, after: tuple[int, str, str], provider: str | None,
                     model: str | None, limit: int) -> tuple[str, dict[str, object]]:
    """A page of the valid calls in [start, end) after position `after`, oldest first, deduplicated."""
    params = Params()
    conds = [f"end_ns >= {params.add(start_ns, 'Int64')}", f"end_ns < {params.add(end_ns, 'Int64')}",
             "invalid = ''", f"(end_ns, trace_id, span_id) > ({params.add(after[0], 'Int64')}, "
             f"{params.add(after[1], 'String')}, {params.add(after[2], 'String')})"]
    if provider is not None:
        conds.append(f"provider = {params.add(provider, 'String')}")
    if model is not None:
        conds.append(f"model = {params.add(model, 'String')}")
    return (f"SELECT {REPRICE_COLUMNS}{UNIT_COLUMNS} FROM {db}.calls FINAL WHERE {' AND '.join(conds)} "
            f"ORDER BY end_ns, trace_id, span_id LIMIT {int(limit)}", params.values)
