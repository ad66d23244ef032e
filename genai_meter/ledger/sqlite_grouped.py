"""The statements of groupings of a range on SQLite: grouping, ranking and top k are computed by the
engine (`sqlite_ranked` runs them and turns the k + 1 rows into `Totals`).

A range arrives as the parts of `parts.plan` (raw calls, hourly rollups, daily rollups). Each part is
one `UNION ALL` branch of (group key columns g0.., sum columns s0..) rows, and the statement sums the
branches per group:
- raw calls and the rollups keyed by label set are summed per label set first (one integer key),
  then joined to `labelsets` (base fields) and `labelset_dims` (dimensions; '' when a label set has
  none) and summed per group;
- the late calls held for a fold (`sqlite_late`) are not in the rollups yet: each rollup part has a
  twin branch reading them from raw calls;
- whole days grouped or filtered by base fields only, or by one dimension alone, read
  `rollup_field_day` instead (a few rows per day and value, whatever the label-set cardinality); the
  group '' of a dimension (calls without it) is the day's total minus its valued rows, as two
  branches of opposite sign, so it ranks like any group.
With `units`, each part also has unit branches (`unit_branch`: the billed units of raw and held calls
from `call_units`, of rollup parts and whole days from the unit rollups per label set), their cost
added to the rank; `unit_sums_sql` reads the units per group and unit name over the same parts.
Money is summed as 32-bit halves (`_hi`/`_lo` columns, or `c >> 32`, `c & 0xFFFFFFFF`), which cannot
overflow; the cost rank compares the exact pair (hi + (lo >> 32), lo & 0xFFFFFFFF), ties by key.
Every value from a request is a bound (named) parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, MONEY_SUMS, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.sqlite_late import held_calls
from genai_meter.ledger.sqlite_schema import MASK32, rollup_columns
from genai_meter.ledger.sqlite_units import HELD_UNITS, RAW_UNITS

COLS = rollup_columns()  # the sum columns of every branch and answer (money as _hi, _lo)
LABEL_INDEX = {f: i for i, f in enumerate(LABEL_FIELDS)}
RAW_ONLY = frozenset({"conversation", "user"})
RAW_SUMS = ["COUNT(*)", "0", "SUM(unpriced)", "SUM(unmetered <> '')", "SUM(invalid <> '')"] \
    + [f"SUM(t_{c})" for c in TOKEN_CLASSES] \
    + [x for n in MONEY_SUMS for x in (f"SUM({n} >> 32)", f"SUM({n} & {MASK32})")] \
    + ["SUM(duration_us)", "SUM(weight_micro)"]
ROLLUP_SUMS = [x for n in SUM_NAMES for x in ((f"SUM({n}_hi)", f"SUM({n}_lo)") if n in MONEY_SUMS else (f"SUM({n})",))]
RAW_ERRORS = 1  # the column of RAW_SUMS that is "errors"
_COST = " + ".join(f"c_{c}" for c in COST_CLASSES)
_TOKENS = " + ".join(f"t_{c}" for c in TOKEN_CLASSES)
# the narrow sums that rank (calls, tokens, cost as 32-bit halves): the top k are found with these alone
NARROW_RAW = ["COUNT(*)", f"SUM({_TOKENS})", f"SUM(({_COST}) >> 32)", f"SUM(({_COST}) & {MASK32})"]
NARROW_ROLLUP = ["SUM(calls)", f"SUM({_TOKENS})", "SUM(" + " + ".join(f"c_{c}_hi" for c in COST_CLASSES) + ")",
                 "SUM(" + " + ".join(f"c_{c}_lo" for c in COST_CLASSES) + ")"]
NARROW_RANKS = {"cost": f"s2 + (s3 >> 32) DESC, s3 & {MASK32} DESC", "tokens": "s1 DESC", "calls": "s0 DESC"}
_HI = " + ".join(f"s{COLS.index(f'c_{c}_hi')}" for c in COST_CLASSES)
_LO = " + ".join(f"s{COLS.index(f'c_{c}_lo')}" for c in COST_CLASSES)
UNIT_HI, UNIT_LO = len(COLS), len(COLS) + 1  # the units' cost columns of a grouping with `units`
_HI_UNITS, _LO_UNITS = f"{_HI} + s{UNIT_HI}", f"{_LO} + s{UNIT_LO}"
RANKS = {"cost": f"({_HI}) + (({_LO}) >> 32) DESC, ({_LO}) & {MASK32} DESC",
         "tokens": " + ".join(f"s{COLS.index(f't_{c}')}" for c in TOKEN_CLASSES) + " DESC",
         "calls": "s0 DESC"}
RANKS_UNITS = {**RANKS, "cost": f"({_HI_UNITS}) + (({_LO_UNITS}) >> 32) DESC, ({_LO_UNITS}) & {MASK32} DESC"}
SINCE = "SELECT bucket FROM rollup_day ORDER BY bucket LIMIT 1"  # per-field rows count from rollup_day's first
DAY_NS = 86400 * 10**9
Part = tuple[str, int, int]  # (table: raw, hour or day; start; end), from `parts.plan`


class Binds:
    """Named parameters of one statement: `add` returns the placeholder of a new value."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def filter_conds(filters: Mapping[str, Sequence[str]], b: Binds, alias: str = "") -> list[str]:
    """SQL conditions on a table with a `labelset` column (and `conversation`, `user` for raw calls):
    base fields through `labelsets`, dimensions through `labelset_dims` ('' matches calls without it)."""
    conds: list[str] = []
    base = [f"{name} IN (SELECT value FROM json_each({b.add(json.dumps(list(values)))}))"
            for name, values in filters.items() if name in LABEL_INDEX]
    if base:
        conds.append(f"{alias}labelset IN (SELECT id FROM labelsets WHERE {' AND '.join(base)})")
    for name, values in filters.items():
        if name in RAW_ONLY:
            conds.append(f"{alias}{name} IN (SELECT value FROM json_each({b.add(json.dumps(list(values)))})) "
                         f"AND {alias}{name} <> ''")
        elif name not in LABEL_INDEX:
            field = b.add(name)
            cond = (f"{alias}labelset IN (SELECT labelset FROM labelset_dims WHERE field = {field} AND value IN "
                    f"(SELECT value FROM json_each({b.add(json.dumps(list(values)))})))")
            if "" in values:
                cond = f"({cond} OR {alias}labelset NOT IN (SELECT labelset FROM labelset_dims WHERE field = {field}))"
            conds.append(cond)
    return conds


def field_mode(filters: Mapping[str, Sequence[str]], group_by: Sequence[str]) -> str | None:
    """Which `rollup_field_day` rows answer whole days of this question: '' (base fields only), a
    dimension's name (it alone is used), or None (they cannot: read the rollups by label set)."""
    used = set(filters) | set(group_by)
    if used & RAW_ONLY:
        return None
    dims = used - set(LABEL_INDEX)
    if not dims:
        return ""
    if len(used) > 1:
        return None
    dim = next(iter(dims))
    return None if not group_by and "" in filters.get(dim, ()) else dim


def _labelset_branch(table: str, start: int, end: int, filters: Mapping[str, Sequence[str]],
                     group_by: Sequence[str], b: Binds, narrow: bool, tail: Sequence[str] = ()) -> str:
    """Sums of `table` in [start, end) per label set, then per group through the dictionary (`held`: the
    held late calls of the range, which the rollups of that range do not hold yet); `tail`: constant
    columns after the sums (the units' cost columns, 0 here)."""
    raw = table in ("raw", "held")
    low, high = b.add(start), b.add(end)
    name, at = ("calls", "end_ns") if raw else (f"rollup_{table}", "bucket")
    if table == "held":
        name = held_calls(low, high)
    sums = [*((NARROW_RAW if raw else NARROW_ROLLUP) if narrow else (RAW_SUMS if raw else ROLLUP_SUMS)), *tail]
    conds = [f"{at} >= {low}", f"{at} < {high}", *filter_conds(filters, b)]
    if not group_by:  # one sum: no per-label-set step (the error count looks the failing label sets up once)
        flat = list(sums)
        if raw and not narrow:
            flat[RAW_ERRORS] = "SUM(labelset IN (SELECT id FROM labelsets WHERE status <> 'ok'))"
        return f"SELECT {', '.join(f'{x} AS s{i}' for i, x in enumerate(flat))} FROM {name} WHERE {' AND '.join(conds)}"
    raw_groups = [g for g in group_by if g in RAW_ONLY]
    inner = (f"SELECT labelset, {''.join(g + ', ' for g in raw_groups)}"
             f"{', '.join(f'{x} AS s{i}' for i, x in enumerate(sums))} FROM {name} WHERE {' AND '.join(conds)} "
             f"GROUP BY {', '.join(['labelset', *raw_groups])}")
    outer = [f"SUM(t.s{i}) AS s{i}" for i in range(len(sums))]
    if raw and not narrow:
        outer[RAW_ERRORS] = "SUM(CASE WHEN l.status <> 'ok' THEN t.s0 ELSE 0 END) AS s1"
    return by_group(inner, group_by, b, outer)


def by_group(inner: str, group_by: Sequence[str], b: Binds, outer: Sequence[str], more: Sequence[str] = ()) -> str:
    """The rows of `inner` (per label set: `labelset`, the raw-only group fields, sums) summed per group:
    g0.. from `labelsets` (base fields) and `labelset_dims` (dimensions, '' without one), then `outer`
    (aggregates over `t`, the inner rows, and `l`, their label set); `more`: inner columns also grouped by."""
    keys, joins = [], ""
    for i, g in enumerate(group_by):
        if g in RAW_ONLY:
            keys.append(f"t.{g}")
        elif g in LABEL_INDEX:
            keys.append(f"l.{g}")
        else:
            joins += f" LEFT JOIN labelset_dims x{i} ON x{i}.labelset = t.labelset AND x{i}.field = {b.add(g)}"
            keys.append(f"COALESCE(x{i}.value, '')")
    cols = ", ".join([*(f"{k} AS g{i}" for i, k in enumerate(keys)), *(f"t.{m} AS {m}" for m in more), *outer])
    grouped = [*(f"g{i}" for i in range(len(keys))), *(f"t.{m}" for m in more)]
    group = f" GROUP BY {', '.join(grouped)}" if grouped else ""
    return f"SELECT {cols} FROM ({inner}) t JOIN labelsets l ON l.id = t.labelset{joins}{group}"


def _field_branches(mode: str, start: int, end: int, filters: Mapping[str, Sequence[str]],
                    group_by: Sequence[str], b: Binds, narrow: bool, tail: Sequence[str] = ()) -> list[str]:
    """Whole days from `rollup_field_day` (see `field_mode`; `tail` as for `_labelset_branch`)."""
    rng = f"bucket >= {b.add(start)} AND bucket < {b.add(end)}"
    chosen = [*(NARROW_ROLLUP if narrow else ROLLUP_SUMS), *tail]
    sums = ", ".join(f"{x} AS s{i}" for i, x in enumerate(chosen))
    if mode == "":
        conds = ["field = ''", rng]
        for name, wanted in filters.items():
            conds.append(f"json_extract(value, '$[{LABEL_INDEX[name]}]') IN "
                         f"(SELECT value FROM json_each({b.add(json.dumps(list(wanted)))}))")
        keys = [f"json_extract(value, '$[{LABEL_INDEX[g]}]') AS g{i}" for i, g in enumerate(group_by)]
        group = f" GROUP BY {', '.join(f'g{i}' for i in range(len(keys)))}" if keys else ""
        return [f"SELECT {''.join(k + ', ' for k in keys)}{sums} FROM rollup_field_day "
                f"WHERE {' AND '.join(conds)}{group}"]
    field = b.add(mode)
    values = filters.get(mode)
    pick = "" if values is None else f" AND value IN (SELECT value FROM json_each({b.add(json.dumps(list(values)))}))"
    if not group_by:
        return [f"SELECT {sums} FROM rollup_field_day WHERE field = {field} AND {rng}{pick}"]
    out = [f"SELECT value AS g0, {sums} FROM rollup_field_day WHERE field = {field} AND {rng}{pick} GROUP BY value"]
    if values is None or "" in values:  # calls without the dimension: the total minus the valued rows
        negated = ", ".join(f"-{x} AS s{i}" for i, x in enumerate(chosen))
        out += [f"SELECT '' AS g0, {sums} FROM rollup_field_day WHERE field = '' AND {rng}",
                f"SELECT '' AS g0, {negated} FROM rollup_field_day WHERE field = {field} AND {rng}"]
    return out


def unit_branch(table: str, start: int, end: int, filters: Mapping[str, Sequence[str]], group_by: Sequence[str],
                b: Binds, by_unit: bool) -> str:
    """The billed units (and flags) of `table` in [start, end) per group: g0.., (unit, the dictionary id, when
    `by_unit`,) q (quantity), h, l (cost as 32-bit halves). `raw`: the calls' units; `hour`, `day`: the unit
    rollups (per label set, whatever the part's sums are read from); `held`: the units of the held late calls."""
    low, high = b.add(start), b.add(end)
    if table in ("raw", "held"):
        source, at = (RAW_UNITS, "u.end_ns") if table == "raw" else (HELD_UNITS, "h.end_ns")
        alias = "c."
        unit, sums = "u.unit", ["u.quantity", "u.cost >> 32", f"u.cost & {MASK32}"]
    else:
        source, at, alias = f"rollup_unit_{table} r", "r.bucket", "r."
        unit, sums = "r.unit", ["r.quantity", "r.cost_hi", "r.cost_lo"]
    cols = ", ".join(f"SUM({x}) AS {n}" for x, n in zip(sums, "qhl"))
    where = " AND ".join([f"{at} >= {low}", f"{at} < {high}", *filter_conds(filters, b, alias)])
    units = [unit] if by_unit else []
    if not group_by:
        head = f"{unit} AS unit, " if by_unit else ""
        return f"SELECT {head}{cols} FROM {source} WHERE {where}{' GROUP BY ' + unit if by_unit else ''}"
    raw_groups = [f"c.{g}" for g in group_by if g in RAW_ONLY]  # (raw parts only: the plan reads no rollup then)
    keys = [f"{alias}labelset", *raw_groups, *units]
    names = ["labelset", *(g for g in group_by if g in RAW_ONLY), *(["unit"] if by_unit else [])]
    inner = (f"SELECT {', '.join(f'{k} AS {n}' for k, n in zip(keys, names))}, {cols} FROM {source} "
             f"WHERE {where} GROUP BY {', '.join(keys)}")
    outer = ["SUM(t.q) AS q", "SUM(t.h) AS h", "SUM(t.l) AS l"]
    return by_group(inner, group_by, b, outer, ["unit"] if by_unit else ())


def _unit_cost_branch(table: str, start: int, end: int, filters: Mapping[str, Sequence[str]],
                      group_by: Sequence[str], b: Binds, width: int, at: int) -> str:
    """The units' cost of `table` in [start, end) per group as a branch of `grouped_sql`: zero sums but the
    cost halves at s{at}, s{at + 1}."""
    sums = ["0"] * width
    sums[at:at + 2] = ["h", "l"]
    keys = "".join(f"g{i}, " for i in range(len(group_by)))
    return (f"SELECT {keys}{', '.join(f'{x} AS s{i}' for i, x in enumerate(sums))} "
            f"FROM ({unit_branch(table, start, end, filters, group_by, b, False)})")


def grouped_sql(parts: Sequence[Part], filters: Mapping[str, Sequence[str]], group_by: Sequence[str],
                b: Binds, narrow: bool = False, units: bool = False) -> str:
    """One row per group with calls: g0.. (the group key) and s0.. (COLS; `narrow`: calls, tokens, cost
    hi, cost lo only, what ranks). `units`: the billed units' cost counts too: added to the narrow cost,
    or as two more columns after COLS (`UNIT_HI`, `UNIT_LO`: the cost as 32-bit halves)."""
    mode = field_mode(filters, group_by)
    width = len(NARROW_RAW) if narrow else len(COLS)
    tail = ("0", "0") if units and not narrow else ()
    branches: list[str] = []
    for table, start, end in parts:
        tables = [table] if table == "raw" else [table, "held"]  # late calls held for a fold: not in the rollups yet
        for source in tables:
            if source == "day" and mode is not None:
                branches += _field_branches(mode, start, end, filters, group_by, b, narrow, tail)
            else:
                branches.append(_labelset_branch(source, start, end, filters, group_by, b, narrow, tail))
            if units:
                branches.append(_unit_cost_branch(source, start, end, filters, group_by, b, width + len(tail),
                                                  2 if narrow else UNIT_HI))
    width += len(tail)
    keys = [f"g{i}" for i in range(len(group_by))]
    if not branches:  # nothing to read (a range emptied by the rollups' retention)
        branches.append(f"SELECT {''.join(f'NULL AS {k}, ' for k in keys)}"
                        f"{', '.join(f'0 AS s{i}' for i in range(width))} WHERE 0")
    if len(branches) == 1 and keys:  # a branch is grouped by the keys already: no second grouping
        return f"SELECT * FROM ({branches[0]}) WHERE s0 <> 0"
    sums = ", ".join(f"SUM(s{i}) AS s{i}" for i in range(width))
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (f"SELECT {''.join(k + ', ' for k in keys)}{sums} FROM ({' UNION ALL '.join(branches)}){group} "
            "HAVING SUM(s0) <> 0")


def unit_sums_sql(parts: Sequence[Part], filters: Mapping[str, Sequence[str]], group_by: Sequence[str],
                  b: Binds) -> str | None:
    """(g0.., unit name, quantity, cost hi, cost lo) of every group with billed units or flags in the parts
    (None: no part); only such groups have rows."""
    branches = [unit_branch(source, start, end, filters, group_by, b, True)
                for table, start, end in parts for source in ([table] if table == "raw" else [table, "held"])]
    if not branches:
        return None
    keys = "".join(f"t.g{i}, " for i in range(len(group_by)))
    return (f"SELECT {keys}n.name, SUM(t.q), SUM(t.h), SUM(t.l) FROM ({' UNION ALL '.join(branches)}) t "
            f"JOIN units n ON n.id = t.unit GROUP BY {keys}n.name")


def order_sql(metric: str, width: int, units: bool = False) -> str:
    """The ranking of grouped rows: `metric` descending (cost with the units' cost columns when `units`),
    then the key ascending."""
    if metric not in RANKS:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    rank = RANKS_UNITS[metric] if units else RANKS[metric]
    return ", ".join([rank, *(f"g{i}" for i in range(width))])


def top_sql(narrow: str, metric: str, width: int, limit: int, b: Binds) -> str:
    """Rows (g0.., groups) of the top `limit` groups of the narrow grouping, best first, `groups`
    counting every group of the range."""
    if metric not in NARROW_RANKS:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    keys = ", ".join(f"g{i}" for i in range(width))
    order = ", ".join([NARROW_RANKS[metric], *(f"g{i}" for i in range(width))])
    return (f"WITH g AS ({narrow}) SELECT {keys + ', ' if keys else ''}COUNT(*) OVER () FROM g "
            f"ORDER BY {order} LIMIT {b.add(limit)}")


def field_rows_sql(b: Binds, field: str, start: int, end: int) -> str:
    """(per-field rollup rows, calls) of whole days in [start, end): the planner's statistics."""
    return (f"SELECT (SELECT COALESCE(SUM(rows), 0) FROM field_day_rows WHERE field = {b.add(field)} AND bucket >= "
            f"{b.add(start)} AND bucket < {b.add(end)}), (SELECT COALESCE(SUM(calls), 0) FROM field_day_rows WHERE "
            f"field = '' AND bucket >= {b.add(start)} AND bucket < {b.add(end)})")


def planned_parts(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
                  group_by: Sequence[str]) -> list[Part]:
    """The parts a statement reads: the whole range read from raw calls in one part instead when it holds
    more than one whole day, a dimension's per-field rows of those days outnumber their calls (a per-field
    row costs less to group than a raw call, which is grouped per label set and joined to its dimensions:
    1.4 s against 2.3 s at 0.8 rows a call) and the raw calls of the range are kept; days from
    rollup_day's first (its retention bounds the per-field and unit rows', a prune meanwhile)."""
    mode = field_mode(filters, group_by)
    days = [(s, e) for table, s, e in parts if table == "day"]
    if mode and group_by and mode not in filters and days and days[-1][1] - days[0][0] > DAY_NS:
        stats = Binds()
        rows, calls = conn.execute(field_rows_sql(stats, mode, days[0][0], days[-1][1]), stats.values).fetchone()
        since = conn.execute("SELECT value FROM meta WHERE key = 'raw_since_ns'").fetchone()
        if rows > calls and (since is None or int(since[0]) <= parts[0][1]):
            parts = [("raw", parts[0][1], parts[-1][2])]
    first = conn.execute(SINCE).fetchone()
    if first is not None:
        parts = [(t, max(s, first[0]) if t == "day" else s, e) for t, s, e in parts]
    return [p for p in parts if p[1] < p[2]]

