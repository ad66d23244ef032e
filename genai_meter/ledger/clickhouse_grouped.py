"""Groupings of a range answered by ClickHouse in one statement: grouping, ranking, top k and the exact
remainder are computed by the engine, billed units included; Python only turns the k + 1 rows into `Totals`.

A range arrives as the parts of `parts.plan`. Each part is one or two `UNION ALL` branches of (group
key g0.., sums b0.., units bu, unit cost buc) rows: raw calls (deduplicated, FINAL) give their sums and
their unit arrays summed by name (`sumMap`); a rollup part gives its sums from `rollup_hour` or
`rollup_day` and, as a second branch of zero sums, its billed units from `rollup_unit_hour` or
`rollup_unit_day`. The grouping `grouped_sql` sums the branches per group and keeps the groups with
calls; its rank value `v` is the metric (cost: the six classes plus the billed units' cost, exact
`Decimal(38, 12)`). `ranked_sql` numbers the groups by `v` descending, ties by key ascending
(`row_number()` over that order; binary string order, as Python and SQLite compare), and sums the
groups past the k-th into one row: the answer is k rows and the remainder, with the number of groups
each row stands for. `series_sql` does the same per step of a trend (`PARTITION BY` the step), the
step of a call computed from its time (`step_expr`). Every value from a request is a bound
`{name:Type}` parameter (`clickhouse_sql.Params`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genai_meter.ledger.clickhouse_sql import MONEY, SUM_COLUMNS, Params, field_expr, where
from genai_meter.ledger.rows import COST_CLASSES, SUM_NAMES, TOKEN_CLASSES

NS = 10**9
MINUTE_NS = 60 * NS
HOUR_NS = 3600 * NS
UNITS = f"Tuple(Array(String), Array(Int64), Array({MONEY}))"  # (unit names, quantities, costs)
_MONEY_NAMES = frozenset(f"c_{c}" for c in COST_CLASSES) | {"list_cost"}
RAW_SUMS = ["count()", "countIf(status != 'ok')", "sum(unpriced)", "countIf(unmetered != '')",
            "countIf(invalid != '')", *(f"sum(t_{c})" for c in TOKEN_CLASSES), *(f"sum(c_{c})" for c in COST_CLASSES),
            "sum(list_cost)", "sum(duration_us)", "sum(weight_micro)"]
ROLLUP_SUMS = [f"sum({n})" for n in SUM_COLUMNS]
ZERO_SUMS = [f"CAST(0 AS {MONEY})" if n in _MONEY_NAMES else "0" for n in SUM_COLUMNS]
VALUES = {"cost": " + ".join([*(f"s{SUM_NAMES.index(f'c_{c}')}" for c in COST_CLASSES), "suc"]),
          "tokens": " + ".join(f"s{SUM_NAMES.index(f't_{c}')}" for c in TOKEN_CLASSES),
          "calls": "s0"}
Part = tuple[str, int, int]  # (table: raw, hour or day; start; end), from `parts.plan`
Filters = Mapping[str, Sequence[str]]


def _cast(sums: Sequence[str]) -> list[str]:
    """Each sum as Int64, or Decimal(38, 12) for money: every branch of the union has the same types."""
    return [f"CAST({x} AS {MONEY})" if n in _MONEY_NAMES else f"toInt64({x})" for n, x in zip(SUM_COLUMNS, sums)]


def step_expr(time_col: str, step: str, utc_offset_s: int, params: Params) -> str:
    """The start of the step (`parts.step_starts`: minutes, hours, or local midnights of days, Mondays or
    months at a fixed UTC offset) holding the instant `time_col`, in ns."""
    off = params.add(utc_offset_s * NS, "Int64")
    if step in ("1m", "1h"):
        unit = MINUTE_NS if step == "1m" else HOUR_NS
        return f"intDiv({time_col} + {off}, {unit}) * {unit} - {off}"
    local = f"toDateTime(intDiv({time_col} + {off}, {NS}), 'UTC')"
    start = {"1d": f"toStartOfDay({local})", "1w": f"toMonday({local})", "1mo": f"toStartOfMonth({local})"}[step]
    return f"toInt64(toUnixTimestamp(toDateTime({start}, 'UTC'))) * {NS} - {off}"


def _branches(db: str, part: Part, filters: Filters, group_by: Sequence[str], step: tuple[str, int] | None,
              params: Params) -> list[str]:
    """The branches of one part: (st, when `step`), g0.., b0.., bu, buc per group."""
    table, start, end = part
    raw = table == "raw"
    time_col = "end_ns" if raw else "bucket"
    exprs = {f"g{i}": f"CAST({field_expr(g, table, params)} AS String)" for i, g in enumerate(group_by)}
    if step is not None:
        exprs = {"st": step_expr(time_col, step[0], step[1], params), **exprs}
    conds = [f"{time_col} >= {params.add(start, 'Int64')}", f"{time_col} < {params.add(end, 'Int64')}",
             *where(table, filters, params)]
    group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
    head = "".join(f"{x} AS {name}, " for name, x in exprs.items())
    tail = f" WHERE {' AND '.join(conds)}{group}"

    def branch(sums: Sequence[str], units: str, unit_cost: str, source: str) -> str:
        cols = ", ".join(f"{x} AS b{i}" for i, x in enumerate(_cast(sums)))
        return (f"SELECT {head}{cols}, CAST({units} AS {UNITS}) AS bu, CAST({unit_cost} AS {MONEY}) AS buc "
                f"FROM {source}{tail}")

    if raw:
        return [branch(RAW_SUMS, "sumMap(unit_names, unit_quantities, unit_costs)", "sum(arraySum(unit_costs))",
                       f"{db}.calls FINAL")]
    return [branch(ROLLUP_SUMS, "([], [], [])", "0", f"{db}.rollup_{table}"),
            branch(ZERO_SUMS, "sumMap([unit], [quantity], [cost])", "sum(cost)", f"{db}.rollup_unit_{table}")]


def grouped_sql(db: str, parts: Sequence[Part], filters: Filters, group_by: Sequence[str], metric: str,
                params: Params, step: tuple[str, int] | None = None) -> str:
    """One row per group with calls (and per step): (st,) g0.., s0.. (SUM_NAMES), su (units), suc (their
    cost) and v, the metric that ranks."""
    if metric not in VALUES:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    branches = [b for part in parts for b in _branches(db, part, filters, group_by, step, params)]
    keys = (["st"] if step is not None else []) + [f"g{i}" for i in range(len(group_by))]
    sums = ", ".join(f"sum(b{i}) AS s{i}" for i in range(len(SUM_NAMES)))
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (f"SELECT {''.join(k + ', ' for k in keys)}{sums}, CAST(sumMap(bu) AS {UNITS}) AS su, sum(buc) AS suc, "
            f"{VALUES[metric]} AS v FROM ({' UNION ALL '.join(branches)}){group} HAVING s0 != 0")


def unit_text(units: str, alias: str) -> str:
    """The units tuple `units` (named `alias` here) as the three text cells `clickhouse_reader.unit_cells`
    reads (names joined by \\x1f, numbers by ',')."""
    return (f"arrayStringConcat(tupleElement({units} AS {alias}, 1), char(31)), "
            f"arrayStringConcat(arrayMap(x -> toString(x), tupleElement({alias}, 2)), ','), "
            f"arrayStringConcat(arrayMap(x -> toString(x), tupleElement({alias}, 3)), ',')")


def order(width: int) -> str:
    """The ranking: the metric descending, then the key ascending."""
    return ", ".join(["v DESC", *(f"g{i}" for i in range(width))])


def each_group_sql(db: str, parts: Sequence[Part], filters: Filters, group_by: Sequence[str],
                   metric: str) -> tuple[str, dict[str, object]]:
    """Every group, ranked: g0.., s0.., the three unit cells."""
    params = Params()
    grouped = grouped_sql(db, parts, filters, group_by, metric, params)
    keys = "".join(f"g{i}, " for i in range(len(group_by)))
    sums = ", ".join(f"s{i}" for i in range(len(SUM_NAMES)))
    return (f"SELECT {keys}{sums}, {unit_text('su', 'eu')} FROM ({grouped}) ORDER BY {order(len(group_by))}",
            params.values)


def ranked_sql(db: str, parts: Sequence[Part], filters: Filters, group_by: Sequence[str], limit: int, metric: str,
               step: tuple[str, int] | None = None) -> tuple[str, dict[str, object]]:
    """The top `limit` groups (per step with `step`: (name, UTC offset in s)) and one row summing the others:
    (st,) top (1, or 0 for the remainder), k0.. (the key; '' for the remainder), r0.. (SUM_NAMES), the three
    unit cells and n, the number of groups the row stands for; ordered (by step, then) best first."""
    params = Params()
    grouped = grouped_sql(db, parts, filters, group_by, metric, params, step)
    n = len(group_by)
    by_step = ["st"] if step is not None else []
    window = f"{'PARTITION BY st ' if step is not None else ''}ORDER BY {order(n)}"
    keys = ", ".join(f"if(top, g{i}, '') AS k{i}" for i in range(n))
    sums = ", ".join(f"sum(s{i}) AS r{i}" for i in range(len(SUM_NAMES)))
    group = ", ".join([*by_step, "top", *(f"k{i}" for i in range(n))])
    top = f"rn <= {params.add(min(max(limit, 0), 2**63), 'UInt64')} AS top"
    return (f"SELECT {''.join(k + ', ' for k in by_step)}{top}, {keys + ', ' if keys else ''}{sums}, "
            f"{unit_text(f'CAST(sumMap(su) AS {UNITS})', 'ru')}, count() AS n "
            f"FROM (SELECT *, row_number() OVER ({window}) AS rn FROM ({grouped})) "
            f"GROUP BY {group} ORDER BY {', '.join([*by_step, 'min(rn)'])}", params.values)
