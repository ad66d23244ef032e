"""Groupings of a range answered by SQLite in one statement: grouping, ranking, top k and the exact
remainder are computed by the engine, and Python only turns the k + 1 rows it returns into `Totals`.

A range arrives as the parts of `query.plan` (raw calls, hourly rollups, daily rollups). Each part is
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
Money is summed as 32-bit halves (`_hi`/`_lo` columns, or `c >> 32`, `c & 0xFFFFFFFF`), which cannot
overflow; the cost rank compares the exact pair (hi + (lo >> 32), lo & 0xFFFFFFFF), ties by key.
Every value from a request is a bound (named) parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence

from genai_meter.ledger.model import Ranked, Totals
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, MONEY_SUMS, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.sqlite_late import held_calls
from genai_meter.ledger.sqlite_schema import MASK32, rollup_columns

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
RANKS = {"cost": f"({_HI}) + (({_LO}) >> 32) DESC, ({_LO}) & {MASK32} DESC",
         "tokens": " + ".join(f"s{COLS.index(f't_{c}')}" for c in TOKEN_CLASSES) + " DESC",
         "calls": "s0 DESC"}
SINCE = "SELECT bucket FROM rollup_day ORDER BY bucket LIMIT 1"  # per-field rows count from rollup_day's first
DAY_NS = 86400 * 10**9
Part = tuple[str, int, int]  # (table: raw, hour or day; start; end), from `query.plan`


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
                     group_by: Sequence[str], b: Binds, narrow: bool) -> str:
    """Sums of `table` in [start, end) per label set, then per group through the dictionary (`held`: the
    held late calls of the range, which the rollups of that range do not hold yet)."""
    raw = table in ("raw", "held")
    low, high = b.add(start), b.add(end)
    name, at = ("calls", "end_ns") if raw else (f"rollup_{table}", "bucket")
    if table == "held":
        name = held_calls(low, high)
    sums = (NARROW_RAW if raw else NARROW_ROLLUP) if narrow else (RAW_SUMS if raw else ROLLUP_SUMS)
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
    keys, joins = [], ""
    for i, g in enumerate(group_by):
        if g in RAW_ONLY:
            keys.append(f"t.{g}")
        elif g in LABEL_INDEX:
            keys.append(f"l.{g}")
        else:
            joins += f" LEFT JOIN labelset_dims x{i} ON x{i}.labelset = t.labelset AND x{i}.field = {b.add(g)}"
            keys.append(f"COALESCE(x{i}.value, '')")
    cols = ", ".join([*(f"{k} AS g{i}" for i, k in enumerate(keys)), *outer])
    group = f" GROUP BY {', '.join(f'g{i}' for i in range(len(keys)))}" if keys else ""
    return f"SELECT {cols} FROM ({inner}) t JOIN labelsets l ON l.id = t.labelset{joins}{group}"


def _field_branches(mode: str, start: int, end: int, filters: Mapping[str, Sequence[str]],
                    group_by: Sequence[str], b: Binds, narrow: bool) -> list[str]:
    """Whole days from `rollup_field_day` (see `field_mode`)."""
    rng = f"bucket >= {b.add(start)} AND bucket < {b.add(end)}"
    chosen = NARROW_ROLLUP if narrow else ROLLUP_SUMS
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


def grouped_sql(parts: Sequence[Part], filters: Mapping[str, Sequence[str]], group_by: Sequence[str],
                b: Binds, narrow: bool = False) -> str:
    """One row per group with calls: g0.. (the group key) and s0.. (COLS; `narrow`: calls, tokens, cost
    hi, cost lo only, what ranks)."""
    mode = field_mode(filters, group_by)
    branches: list[str] = []
    for table, start, end in parts:
        if table == "day" and mode is not None:
            branches += _field_branches(mode, start, end, filters, group_by, b, narrow)
        else:
            branches.append(_labelset_branch(table, start, end, filters, group_by, b, narrow))
        if table != "raw":  # late calls held for a fold are not in the rollups yet
            branches.append(_labelset_branch("held", start, end, filters, group_by, b, narrow))
    keys = [f"g{i}" for i in range(len(group_by))]
    width = len(NARROW_RAW) if narrow else len(COLS)
    if not branches:  # nothing to read (a range emptied by the rollups' retention)
        branches.append(f"SELECT {''.join(f'NULL AS {k}, ' for k in keys)}"
                        f"{', '.join(f'0 AS s{i}' for i in range(width))} WHERE 0")
    sums = ", ".join(f"SUM(s{i}) AS s{i}" for i in range(width))
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (f"SELECT {''.join(k + ', ' for k in keys)}{sums} FROM ({' UNION ALL '.join(branches)}){group} "
            "HAVING SUM(s0) <> 0")


def order_sql(metric: str, width: int) -> str:
    """The ranking of grouped rows: `metric` descending, then the key ascending."""
    if metric not in RANKS:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    return ", ".join([RANKS[metric], *(f"g{i}" for i in range(width))])


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


def _planned(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
             group_by: Sequence[str], b: Binds, narrow: bool = False) -> str:
    """`grouped_sql` of the parts; the whole range read from raw calls in one part instead when it holds
    more than one whole day, a dimension's per-field rows of those days outnumber (x2 for their width)
    their calls (about one row per call: high cardinality) and the raw calls of the range are kept."""
    mode = field_mode(filters, group_by)
    days = [(s, e) for table, s, e in parts if table == "day"]
    if mode and group_by and mode not in filters and days and days[-1][1] - days[0][0] > DAY_NS:
        stats = Binds()
        rows, calls = conn.execute(field_rows_sql(stats, mode, days[0][0], days[-1][1]), stats.values).fetchone()
        since = conn.execute("SELECT value FROM meta WHERE key = 'raw_since_ns'").fetchone()
        if rows * ROW_WIDTH > calls and (since is None or int(since[0]) <= parts[0][1]):
            parts = [("raw", parts[0][1], parts[-1][2])]
    first = conn.execute(SINCE).fetchone()  # rollup_day's retention bounds the per-field rows' (a prune meanwhile)
    if first is not None:
        parts = [(t, max(s, first[0]) if t == "day" else s, e) for t, s, e in parts]
    return grouped_sql([p for p in parts if p[1] < p[2]], filters, group_by, b, narrow)


ROW_WIDTH = 2  # a rollup row is about twice as wide as a call row (28 integers against 27 mostly small ones)


def ranked(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
           group_by: Sequence[str], limit: int | None, metric: str,
           to_totals: Callable[[tuple[str, ...], Sequence[int | None]], Totals]) -> Ranked:
    """The top `limit` groups and the exact remainder: the top keys ranked on the narrow sums (`top_sql`),
    their full sums read for those keys alone, and the remainder = the range's total minus them."""
    if not parts:
        return Ranked([], None, 0, limit)
    n = len(group_by)
    if limit is None:
        b = Binds()
        grouped = _planned(conn, parts, filters, group_by, b)
        rows = [to_totals(tuple(str(v) for v in r[:n]), r[n:])
                for r in conn.execute(f"SELECT * FROM ({grouped}) ORDER BY {order_sql(metric, n)}", b.values)]
        return Ranked(rows, None, len(rows), limit)
    b = Binds()
    top = conn.execute(top_sql(_planned(conn, parts, filters, group_by, b, narrow=True), metric, n, max(limit, 1), b),
                       b.values).fetchall()  # at least one row: it carries the count of groups
    groups = top[0][n] if top else 0
    if not top:
        return Ranked([], None, 0, limit)
    keys = [tuple(str(v) for v in r[:n]) for r in top[:max(limit, 0)]]
    narrowed = {**filters}
    for i, g in enumerate(group_by):
        if g in RAW_ONLY or groups <= len(keys):  # every group is wanted: nothing to narrow
            continue  # (a filter on a raw field leaves out '', calls without one: the group stays whole)
        wanted = sorted({k[i] for k in keys})
        narrowed[g] = [v for v in filters[g] if v in wanted] if g in filters else wanted
    b = Binds()
    full = {tuple(str(v) for v in r[:n]): r[n:]
            for r in conn.execute(_planned(conn, parts, narrowed, group_by, b), b.values)} if keys else {}
    rows = [to_totals(k, full[k]) for k in keys]
    if groups <= len(rows):
        return Ranked(rows, None, groups, limit)
    b = Binds()
    whole = conn.execute(_planned(conn, parts, filters, (), b), b.values).fetchone()
    rest = [a - sum(int(r[i] or 0) for r in (full[k] for k in keys)) for i, a in enumerate(whole)]
    return Ranked(rows, to_totals((), rest), groups, limit)


def each_group(conn: sqlite3.Connection, parts: Sequence[Part], filters: Mapping[str, Sequence[str]],
               group_by: Sequence[str], metric: str,
               to_totals: Callable[[tuple[str, ...], Sequence[int | None]], Totals]) -> Iterator[Totals]:
    """Every group, ranked, streamed from the cursor a page at a time."""
    if not parts:
        return
    b = Binds()
    grouped = _planned(conn, parts, filters, group_by, b)
    n = len(group_by)
    cursor = conn.execute(f"SELECT * FROM ({grouped}) ORDER BY {order_sql(metric, n)}", b.values)
    while page := cursor.fetchmany(PAGE):
        for r in page:
            yield to_totals(tuple(str(v) for v in r[:n]), r[n:])


PAGE = 1000
