"""The SQLite `Source`: the primitive queries of `query.Reader` on a read-only connection.

Filters on label-set fields (the base fields and dimensions of a call, dictionary-encoded in
`labelsets`) are matched in SQL against that dictionary; groups are formed in SQL (sums per label
set, joined to `labelsets`, summed per requested field), and queries without a label-set group run
in one pass with no join. Aggregate answers are cached per connection until another connection
commits (`PRAGMA data_version`); the label sets (id -> labels, for the calls of the feed and the
conversations) and the dimension values are cached until the file's dictionary generation moves
(`ledger forget`: label-set ids are never reused, schema v6), checked once per query. Money sums are
taken as high and low 32-bit parts (`SUM(c >> 32)`, `SUM(c & 0xFFFFFFFF)`), so no SQL sum overflows.
Each query is one autocommit statement (no read transaction held between calls or pages; a rollup
range and its held late calls are read in one snapshot), after a
check that the file at the path is still the one opened (a connection keeps reading a file moved
away): gone, `LedgerFileGone` (kind FILE_GONE, naming the path) until it is back; replaced, the
reader opens the new file and drops its caches.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from genai_meter.config import Config
from genai_meter.ledger import deadline, sqlite_grouped, sqlite_ranked, sqlite_units
from genai_meter.ledger.model import (
    BASE_FIELDS,
    CallKey,
    CallRecords,
    CallRow,
    Conversation,
    Coverage,
    Filters,
    LedgerUnavailable,
    Ranked,
    Totals,
)
from genai_meter.ledger.parts import Table
from genai_meter.ledger.query import AggRow, Reader, UnitRow, to_totals
from genai_meter.ledger.rows import LABEL_FIELDS, MONEY_SUMS, SUM_NAMES
from genai_meter.ledger.sqlite_calls import read_calls, read_conversations
from genai_meter.ledger.sqlite_grouped import COLS, LABEL_INDEX, RAW_ERRORS, RAW_SUMS, ROLLUP_SUMS, Part
from genai_meter.ledger.sqlite_late import held_calls, snapshot
from genai_meter.ledger.sqlite_params import read_generation
from genai_meter.ledger.sqlite_records import read_records
from genai_meter.ledger.sqlite_rollups import DAY_MARK, DAY_NS, HOUR_NS
from genai_meter.ledger.sqlite_schema import HOUR_MARK, LedgerFileGone, file_identity, open_read
from genai_meter.ledger.units import UnitSums
from genai_meter.ledger.urls import LedgerOpenError

_LABEL_INDEX = LABEL_INDEX
_RAW_SUMS, _ROLLUP_SUMS, _RAW_ERRORS = RAW_SUMS, ROLLUP_SUMS, RAW_ERRORS

_RAW_AT = [(COLS.index(f"{n}_hi"), True) if n in MONEY_SUMS else (COLS.index(n), False)
           for n in SUM_NAMES]  # per sum: its (first) column among COLS, and whether it is money (hi, lo)
CACHE_ENTRIES = 64  # aggregate answers kept per connection until another connection commits
CACHE_MAX_ROWS = 50_000


def dim_path(name: str) -> str:
    """The JSON path of dimension `name` in `labelsets.dims` (quoted: any name is safe)."""
    return "$." + json.dumps(name)


def combine(raw: Sequence[int | None]) -> list[int]:
    """SQL sum columns (money as hi, lo pairs; NULL for no rows) as SUM_NAMES integers."""
    return [((raw[at] or 0) << 32) + (raw[at + 1] or 0) if money else raw[at] or 0 for at, money in _RAW_AT]


def _totals(key: tuple[str, ...], raw: Sequence[int | None], units: UnitSums | None = None) -> Totals:
    return to_totals(key, combine(raw), units)


class SQLiteSource:
    """Read-only queries on one ledger file. One per thread. Groupings are ranked in SQL, billed units
    included (`ranks_units`; `sqlite_ranked`)."""

    ranks_units = True

    def __init__(self, path: Path, config: Config, interruptible: bool = False) -> None:
        self.path = path
        self._busy_timeout_s = config.ledger.busy_timeout_seconds
        self._interruptible = interruptible
        self._conn = open_read(path, self._busy_timeout_s, interruptible)
        self._identity = file_identity(path)
        self._generation = read_generation(self._conn)
        self._dims = tuple(config.active_dimensions)
        self._fields = BASE_FIELDS + tuple(d for d in self._dims if d not in BASE_FIELDS)
        self._labelsets: dict[int, tuple[tuple[str, ...], dict[str, str]]] = {}
        self._max_id = 0
        self._cache: dict[tuple[object, ...], list[AggRow]] = {}
        self._cache_version: object = None
        self._dims_json: dict[str, dict[str, str]] = {}
        self._prices: dict[int, str] = {}

    def fields(self) -> tuple[str, ...]:
        return self._fields

    def _check_file(self) -> None:
        """The file at the path is the one this connection reads: else LedgerFileGone (moved away,
        deleted), or the reader reopens on the file that replaced it (LedgerUnavailable if it cannot)."""
        now = file_identity(self.path)
        if now == self._identity:
            return
        if now is None:
            raise LedgerFileGone(f"{self.path}: the ledger file is gone (moved away or deleted)")
        try:
            conn = open_read(self.path, self._busy_timeout_s, self._interruptible)
        except LedgerOpenError as exc:
            raise LedgerFileGone(f"{self.path}: the ledger file was replaced by one that cannot be read: {exc}") \
                from None
        self._conn.close()
        self._conn, self._identity = conn, now
        self._generation = -1  # the caches are of the other file
        self._labels_current()

    def _labels_current(self) -> None:
        """Drop the label-set caches if the dictionary generation moved (label sets deleted)."""
        generation = read_generation(self._conn)
        if generation != self._generation:
            self._labelsets.clear()
            self._prices.clear()
            self._max_id = 0
            self._cache.clear()
            self._cache_version = None
            self._generation = generation

    def rollups_before_ns(self) -> tuple[int, int]:
        # (the hourly watermark, not hour-aligned: rollup_hour holds exactly the calls before it; sealed days)
        self._check_file()
        row = self._conn.execute("SELECT (SELECT value FROM meta WHERE key = ?), "
                                 "(SELECT value FROM meta WHERE key = ?)", (HOUR_MARK, DAY_MARK)).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def close(self) -> None:
        self._conn.close()


    def _refresh(self) -> None:
        self._check_file()
        self._labels_current()
        rows = self._conn.execute(f"SELECT id, {', '.join(LABEL_FIELDS)}, dims FROM labelsets WHERE id > ?",
                                  (self._max_id,)).fetchall()
        for row in rows:
            self._labelsets[row[0]] = (tuple(row[1:-1]), json.loads(row[-1]))
            self._max_id = max(self._max_id, row[0])

    def _labels(self, labelset: int) -> tuple[tuple[str, ...], dict[str, str]]:
        """The labels and dimensions of a label-set id (read again when new since the query began)."""
        found = self._labelsets.get(labelset)
        if found is None:
            self._refresh()
            found = self._labelsets.get(labelset)
            if found is None:  # deleted after the query read the call (`ledger forget` meanwhile)
                raise LedgerUnavailable("the ledger changed during the query (a label set was removed); retry")
        return found

    def _dims_of(self, text: str) -> dict[str, str]:
        """The dimensions of a label set's JSON (parsed once per distinct text in a small cache)."""
        found = self._dims_json.get(text)
        if found is None:
            if len(self._dims_json) >= 4096:
                self._dims_json.clear()
            found = self._dims_json[text] = json.loads(text)
        return dict(found)

    def _label_rows(self, ids: Collection[int]) -> list[tuple[Any, ...]]:
        """The stored rows (id, LABEL_FIELDS..., dims JSON) of the label sets `ids`, in one query."""
        rows = self._conn.execute(f"SELECT id, {', '.join(LABEL_FIELDS)}, dims FROM labelsets WHERE id IN "
                                  "(SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),)).fetchall()
        if len(rows) < len(ids):  # deleted after the query read the call (`ledger forget` meanwhile)
            raise LedgerUnavailable("the ledger changed during the query (a label set was removed); retry")
        return rows

    def _price_entry(self, price: int) -> str:
        """The price entry of a price id (the prices read again when it is new since the query began)."""
        found = self._prices.get(price)
        if found is None:
            self._prices.update(self._conn.execute("SELECT id, entry FROM prices").fetchall())
            found = self._prices.get(price)
            if found is None:  # deleted after the query read the call
                raise LedgerUnavailable("the ledger changed during the query (a price was removed); retry")
        return found

    def _value(self, labelset: int, name: str) -> str:
        labels, dims = self._labels(labelset)
        index = _LABEL_INDEX.get(name)
        return labels[index] if index is not None else dims.get(name, "")

    def _where(self, filters: Filters, alias: str = "") -> tuple[list[str], list[object]]:
        """SQL conditions and parameters for `filters`: label-set fields are matched in SQL against the
        `labelsets` dictionary; every name and value is a bound parameter."""
        label_conds: list[str] = []
        label_params: list[object] = []
        conds: list[str] = []
        params: list[object] = []
        for name, values in filters.items():
            if name in ("conversation", "user"):
                conds.append(f"{alias}{name} IN (SELECT value FROM json_each(?)) AND {alias}{name} <> ''")
                params.append(json.dumps(list(values)))
            elif name in _LABEL_INDEX:
                label_conds.append(f"{name} IN (SELECT value FROM json_each(?))")
                label_params.append(json.dumps(list(values)))
            else:
                cond = (f"{alias}labelset IN (SELECT labelset FROM labelset_dims WHERE field = ? AND value IN "
                        "(SELECT value FROM json_each(?)))")
                params += [name, json.dumps(list(values))]
                if "" in values:
                    cond = f"({cond} OR {alias}labelset NOT IN (SELECT labelset FROM labelset_dims WHERE field = ?))"
                    params.append(name)
                conds.append(cond)
        if label_conds:
            conds.insert(0, f"{alias}labelset IN (SELECT id FROM labelsets WHERE {' AND '.join(label_conds)})")
        return conds, label_params + params


    def ranked(self, parts: Sequence[Part], filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: str) -> Ranked:
        """The top groups and the exact remainder, ranked in SQL, billed units included (`sqlite_ranked`)."""
        self._check_file()
        return sqlite_ranked.ranked(self._conn, parts, filters, group_by, limit, metric, _totals)

    def each_group(self, parts: Sequence[Part], filters: Filters, group_by: Sequence[str],
                   metric: str) -> Iterator[Totals]:
        self._check_file()
        return sqlite_ranked.each_group(self._conn, parts, filters, group_by, metric, _totals)

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        """Grouped in SQL by the requested fields: the range is summed per label set (the tables' key
        order, no sort), joined to the label-set dictionary and summed again per group."""
        key = (table, start_ns, end_ns, json.dumps(sorted((k, list(v)) for k, v in filters.items())),
               tuple(group_by), by_time)
        self._check_file()
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rows = self._aggregate(table, start_ns, end_ns, filters, group_by, by_time)
        if len(rows) <= CACHE_MAX_ROWS:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = rows
        return rows

    def _aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   by_time: bool) -> list[AggRow]:
        """A rollup range is its rollup rows plus its held late calls (`sqlite_late`), read in one snapshot."""
        if table == "raw":
            return self._summed("raw", start_ns, end_ns, filters, group_by, by_time)
        with snapshot(self._conn):
            rows = self._field_rollup(start_ns, end_ns, filters, group_by, by_time) if table == "day" else None
            if rows is None:
                rows = self._summed(table, start_ns, end_ns, filters, group_by, by_time)
            return rows + self._summed(table, start_ns, end_ns, filters, group_by, by_time, held=True)

    def _summed(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                by_time: bool, held: bool = False) -> list[AggRow]:
        """Sums of `table` in the range (`held`: of the held late calls of that rollup range, in its buckets)."""
        conds, params = self._where(filters)
        raw_groups = [g for g in ("conversation", "user") if g in group_by]
        label_groups = [g for g in group_by if g not in raw_groups]
        if table == "raw" or held:
            bucket = 60 * 10**9 if table == "raw" else HOUR_NS if table == "hour" else DAY_NS
            time_expr = f"end_ns - end_ns % {bucket}" if by_time else "0"
            conds = ["end_ns >= ?", "end_ns < ?", *conds]
            sums, name = list(_RAW_SUMS), held_calls(str(int(start_ns)), str(int(end_ns))) if held else "calls"
            if not label_groups:  # errors: calls of label sets whose status is not ok
                sums[_RAW_ERRORS] = "SUM(labelset IN (SELECT id FROM labelsets WHERE status <> 'ok'))"
        else:
            time_expr = "bucket" if by_time else "0"
            conds = ["bucket >= ?", "bucket < ?", *conds]
            sums, name = _ROLLUP_SUMS, f"rollup_{table}"
            if table == "hour" and not conds[2:] and not group_by:  # every label set: one row per hour
                name = "rollup_hour_total"
        n = len(group_by)
        if not label_groups:  # no label-set field asked: one pass, no join
            group = ", ".join(["t" if by_time else "", *raw_groups]).strip(", ")
            sql = (f"SELECT {time_expr} AS t, {''.join(g + ', ' for g in group_by)}{', '.join(sums)} FROM {name} "
                   f"WHERE {' AND '.join(conds)}{' GROUP BY ' + group if group else ''}")
            rows = self._conn.execute(sql, [start_ns, end_ns, *params]).fetchall()
            return [(r[0], tuple(str(v) for v in r[1:1 + n]), combine(r[1 + n:])) for r in deadline.checked(rows)
                    if r[1 + n] is not None and (r[1 + n] or group)]
        inner_group = ", ".join(["t" if by_time else "", "labelset", *raw_groups]).lstrip(", ")
        inner = (f"SELECT {time_expr} AS t, labelset, {''.join(g + ', ' for g in raw_groups)}"
                 f"{', '.join(f'{x} AS s{i}' for i, x in enumerate(sums))} "
                 f"FROM {name} WHERE {' AND '.join(conds)} GROUP BY {inner_group}")
        keys, key_params = self._keys(group_by, "s.")
        outer = [f"SUM(s.s{i})" for i in range(len(sums))]
        if table == "raw" or held:  # errors: the calls of label sets whose status is not ok
            outer[_RAW_ERRORS] = "SUM(CASE WHEN l.status <> 'ok' THEN s.s0 ELSE 0 END)"
        cols = ", ".join([*(f"{k} AS g{i}" for i, k in enumerate(keys)), *outer])
        group = ", ".join(["s.t", *(f"g{i}" for i in range(len(keys)))])
        sql = f"SELECT s.t, {cols} FROM ({inner}) s JOIN labelsets l ON l.id = s.labelset GROUP BY {group}"
        rows = self._conn.execute(sql, [*key_params, start_ns, end_ns, *params]).fetchall()
        return [(r[0], tuple(str(v) for v in r[1:1 + n]), combine(r[1 + n:])) for r in deadline.checked(rows)]

    def aggregate_units(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                        by_time: bool) -> Iterable[UnitRow]:
        self._check_file()
        where, keys = self._where(filters, "c." if table == "raw" else "r."), self._keys(group_by, "c.")
        if table == "raw":
            return sqlite_units.aggregate(self._conn, table, start_ns, end_ns, *where, *keys, by_time)
        with snapshot(self._conn):  # the unit rollups and the units of the held late calls of the range
            return [*sqlite_units.aggregate(self._conn, table, start_ns, end_ns, *where, *keys, by_time),
                    *sqlite_units.aggregate(self._conn, table, start_ns, end_ns, *self._where(filters, "c."), *keys,
                                            by_time, held=True)]

    def _field_rollup(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                      by_time: bool) -> list[AggRow] | None:
        """The answer from `rollup_field_day` (field '') when the fields used are base fields only; None
        when it cannot answer (a dimension: the rollups by label set answer; `ranked` reads the per-field
        rows of dimensions)."""
        if (set(filters) | set(group_by)) - set(_LABEL_INDEX):
            return None
        sums = ", ".join(_ROLLUP_SUMS)
        time_expr = "bucket" if by_time else "0"
        first = self._conn.execute(sqlite_grouped.SINCE).fetchone()  # rollup retention as rollup_day's
        conds = ["field = ''", "bucket >= ?", "bucket < ?", "bucket >= ?"]
        params: list[object] = [start_ns, end_ns, first[0] if first else end_ns]
        for name, values in filters.items():
            conds.append(f"json_extract(value, '$[{_LABEL_INDEX[name]}]') IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(values)))
        n = len(group_by)
        keys = [f"json_extract(value, '$[{_LABEL_INDEX[g]}]')" for g in group_by]
        group = ", ".join(["t", *(f"g{i}" for i in range(n))])
        sql = (f"SELECT {time_expr} AS t, {''.join(f'{k} AS g{i}, ' for i, k in enumerate(keys))}{sums} "
               f"FROM rollup_field_day WHERE {' AND '.join(conds)} GROUP BY {group}")
        rows = self._conn.execute(sql, params).fetchall()
        return [(r[0], tuple(str(v) for v in r[1:1 + n]), combine(r[1 + n:])) for r in rows if r[1 + n]]

    @staticmethod
    def _keys(group_by: Sequence[str], alias: str) -> tuple[list[str], list[object]]:
        """SQL expressions of the group fields over `labelsets l` (and conversation/user of `alias`)."""
        keys: list[str] = []
        params: list[object] = []
        for g in group_by:
            if g in ("conversation", "user"):
                keys.append(f"{alias}{g}")
            elif g in _LABEL_INDEX:
                keys.append(f"l.{g}")
            else:
                keys.append("COALESCE(json_extract(l.dims, ?), '')")
                params.append(dim_path(g))
        return keys, params

    def durations(self, start_ns: int, end_ns: int, filters: Filters,
                  group_by: Sequence[str]) -> Iterable[tuple[tuple[str, ...], int]]:
        self._check_file()
        conds, params = self._where(filters, "c.")
        keys, key_params = self._keys(group_by, "c.")
        sql = (f"SELECT {''.join(k + ', ' for k in keys)}c.duration_us FROM calls c JOIN labelsets l "
               f"ON l.id = c.labelset WHERE c.end_ns >= ? AND c.end_ns < ?{''.join(' AND ' + c for c in conds)}")
        for row in self._conn.execute(sql, [*key_params, start_ns, end_ns, *params]):
            yield tuple(str(v) for v in row[:-1]), row[-1]


    def calls(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: tuple[int, bytes, bytes] | None,
              limit: int, conversation: str | None = None) -> list[CallRow]:
        self._check_file()
        return read_calls(self._conn, self._where(filters, "c."), start_ns, end_ns, before, limit, conversation,
                          self._dims_of)

    def call_records(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: CallKey | None,
                     limit: int) -> CallRecords:
        self._check_file()
        self._labels_current()
        rows, units = read_records(self._conn, self._where(filters), start_ns, end_ns, before, limit)
        return CallRecords(rows, self._label_rows, self._price_entry, units, (self._identity, self._generation))

    def conversation_groups(self, start_ns: int, end_ns: int, filters: Filters, before: tuple[int, str] | None,
                            limit: int) -> list[Conversation]:
        self._refresh()
        return read_conversations(self._conn, self._where(filters), self._where(filters, "c."), start_ns, end_ns,
                                  before, limit, self._value)

    def coverage(self) -> Coverage:
        # one MIN or MAX per subquery: each is a single index seek (MIN and MAX together scan the table)
        self._check_file()
        first, last, hour_first, hour_last = self._conn.execute(
            "SELECT (SELECT MIN(end_ns) FROM calls), (SELECT MAX(end_ns) FROM calls), "
            "(SELECT MIN(bucket) FROM rollup_hour), (SELECT MAX(bucket) FROM rollup_hour)").fetchone()
        day_first = self._conn.execute("SELECT MIN(bucket) FROM rollup_day").fetchone()[0]
        since = self._conn.execute("SELECT value FROM meta WHERE key = 'raw_since_ns'").fetchone()
        firsts = [v for v in (first, hour_first, day_first) if v is not None]
        lasts = [v for v in (last, hour_last) if v is not None]
        raw_since = int(since[0]) if since else None  # set by a prune that removed raw calls
        return Coverage(min(firsts) if firsts else None, max(lasts) if lasts else None, raw_since)


def open_sqlite_reader(path: Path, config: Config, interruptible: bool = False) -> Reader:
    """A `LedgerReader` on the SQLite file at `path` (read-only; LedgerOpenError naming the path);
    `interruptible`: see `open_read` (one thread only)."""
    return Reader(SQLiteSource(path, config, interruptible))
