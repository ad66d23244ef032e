"""The SQLite `Source`: the primitive queries of `query.Reader` on a read-only connection.

Label sets (the base fields and dimensions of a call, dictionary-encoded) are cached in memory and
refreshed incrementally per query; filters on them become a list of label-set ids, groups are
formed per label set in SQL and merged in Python. Money sums are taken as high and low 32-bit
parts (`SUM(c >> 32)`, `SUM(c & 0xFFFFFFFF)`), so no SQL sum overflows. Each query is one
statement in autocommit mode: no read transaction is held between calls or pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from genai_meter.config import Config
from genai_meter.ledger.model import BASE_FIELDS, CallRow, Conversation, Coverage, Filters
from genai_meter.ledger.query import AggRow, Reader, Table
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, MONEY_SUMS, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.sqlite_rollups import days_sealed_until
from genai_meter.ledger.sqlite_schema import MASK32, open_read

_LABEL_INDEX = {f: i for i, f in enumerate(LABEL_FIELDS)}
_RAW_SUMS = ["COUNT(*)", "0", "SUM(unpriced)", "SUM(unmetered <> '')", "SUM(invalid <> '')"] \
    + [f"SUM(t_{c})" for c in TOKEN_CLASSES] \
    + [x for n in MONEY_SUMS for x in (f"SUM({n} >> 32)", f"SUM({n} & {MASK32})")] \
    + ["SUM(duration_us)", "SUM(weight_micro)"]
_ROLLUP_SUMS = [x for n in SUM_NAMES for x in ((f"SUM({n}_hi)", f"SUM({n}_lo)") if n in MONEY_SUMS else (f"SUM({n})",))]
_MONEY_INDEX = frozenset(SUM_NAMES.index(n) for n in MONEY_SUMS)
_ERRORS = SUM_NAMES.index("errors")
CALL_SELECT = ("SELECT c.end_ns, c.trace_id, c.span_id, c.parent_span_id, c.labelset, c.conversation, c.user, "
               "c.duration_us, c.ttft_us, c.t_input, c.t_cache_read, c.t_cache_write, c.t_output, c.t_reasoning, "
               "c.c_input, c.c_cache_read, c.c_cache_write, c.c_output, c.c_reasoning, c.c_request, c.unpriced, "
               "c.unmetered, c.invalid, c.weight_micro, p.source, p.version, p.entry, p.unit_prices "
               "FROM calls c JOIN prices p ON p.id = c.price")


def combine(raw: Sequence[int | None]) -> list[int]:
    """SQL sum columns (money as hi, lo pairs; NULL for no rows) as SUM_NAMES integers."""
    out: list[int] = []
    it = iter(raw)
    for i in range(len(SUM_NAMES)):
        if i in _MONEY_INDEX:
            hi, lo = next(it) or 0, next(it) or 0
            out.append((hi << 32) + lo)
        else:
            out.append(next(it) or 0)
    return out


class SQLiteSource:
    """Read-only queries on one ledger file. One per thread."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self._conn = open_read(path, config.ledger.busy_timeout_seconds)
        self._dims = tuple(config.active_dimensions)
        self._fields = BASE_FIELDS + tuple(d for d in self._dims if d not in BASE_FIELDS)
        self._labelsets: dict[int, tuple[tuple[str, ...], dict[str, str]]] = {}
        self._max_id = 0

    def fields(self) -> tuple[str, ...]:
        return self._fields

    def rollups_before_ns(self) -> tuple[int, int]:
        # hourly rollups: in the same transaction as the raw rows; daily: sealed days
        return 2**63 - 1, days_sealed_until(self._conn)

    def close(self) -> None:
        self._conn.close()

    # -- label sets ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        rows = self._conn.execute(f"SELECT id, {', '.join(LABEL_FIELDS)}, dims FROM labelsets WHERE id > ?",
                                  (self._max_id,)).fetchall()
        for row in rows:
            self._labelsets[row[0]] = (tuple(row[1:-1]), json.loads(row[-1]))
            self._max_id = max(self._max_id, row[0])

    def _value(self, labelset: int, name: str) -> str:
        labels, dims = self._labelsets[labelset]
        index = _LABEL_INDEX.get(name)
        return labels[index] if index is not None else dims.get(name, "")

    def _where(self, filters: Filters, alias: str = "") -> tuple[list[str], list[object]] | None:
        """SQL conditions and parameters for `filters`; None when no label set can match."""
        self._refresh()
        conds: list[str] = []
        params: list[object] = []
        label_filters = {k: set(v) for k, v in filters.items() if k not in ("conversation", "user")}
        if label_filters:
            ids = [i for i in self._labelsets if all(self._value(i, k) in v for k, v in label_filters.items())]
            if not ids:
                return None
            conds.append(f"{alias}labelset IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(ids))
        for name in ("conversation", "user"):
            if name in filters:
                conds.append(f"{alias}{name} IN (SELECT value FROM json_each(?)) AND {alias}{name} <> ''")
                params.append(json.dumps(list(filters[name])))
        return conds, params

    # -- aggregates ------------------------------------------------------------------------------

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        where = self._where(filters)
        if where is None:
            return []
        conds, params = where
        raw_groups = [g for g in ("conversation", "user") if g in group_by]
        if table == "raw":
            time_expr = f"end_ns - end_ns % {60 * 10**9}" if by_time else "0"
            conds = ["end_ns >= ?", "end_ns < ?", *conds]
            sums, name = _RAW_SUMS, "calls"
        else:
            time_expr = "bucket" if by_time else "0"
            conds = ["bucket >= ?", "bucket < ?", *conds]
            sums, name = _ROLLUP_SUMS, f"rollup_{table}"
        group = ", ".join(["t" if by_time else "", "labelset", *raw_groups]).lstrip(", ")
        sql = (f"SELECT {time_expr} AS t, labelset, {''.join(g + ', ' for g in raw_groups)}{', '.join(sums)} "
               f"FROM {name} WHERE {' AND '.join(conds)} GROUP BY {group}")
        rows = self._conn.execute(sql, [start_ns, end_ns, *params]).fetchall()
        return self._keyed(rows, group_by, raw_groups, table == "raw")

    def _keyed(self, rows: list[tuple[Any, ...]], group_by: Sequence[str], raw_groups: list[str],
               raw: bool) -> Iterator[AggRow]:
        offset = 2 + len(raw_groups)
        for row in rows:
            labelset = row[1]
            extra = dict(zip(raw_groups, row[2:offset]))
            key = tuple(extra[g] if g in extra else self._value(labelset, g) for g in group_by)
            sums = combine(row[offset:])
            if raw and self._value(labelset, "status") != "ok":
                sums[_ERRORS] = sums[0]
            yield row[0], key, sums

    def durations(self, start_ns: int, end_ns: int, filters: Filters,
                  group_by: Sequence[str]) -> Iterable[tuple[tuple[str, ...], int]]:
        where = self._where(filters)
        if where is None:
            return
        conds, params = where
        sql = (f"SELECT labelset, conversation, user, duration_us FROM calls WHERE end_ns >= ? AND end_ns < ? "
               f"{''.join(' AND ' + c for c in conds)}")
        for labelset, conv, user, us in self._conn.execute(sql, [start_ns, end_ns, *params]).fetchall():
            extra = {"conversation": conv, "user": user}
            yield tuple(extra[g] if g in extra else self._value(labelset, g) for g in group_by), us

    # -- calls -----------------------------------------------------------------------------------

    def calls(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: tuple[int, bytes, bytes] | None,
              limit: int, conversation: str | None = None) -> list[CallRow]:
        where = self._where(filters, "c.")
        if where is None:
            return []
        conds, params = where
        if start_ns is not None:
            conds.append("c.end_ns >= ?")
            params.append(start_ns)
        if end_ns is not None:
            conds.append("c.end_ns < ?")
            params.append(end_ns)
        if before is not None:
            conds.append("(c.end_ns, c.trace_id, c.span_id) < (?, ?, ?)")
            params.extend(before)
        order = "DESC"
        if conversation is not None:
            conds.append("c.conversation = ? AND c.conversation <> ''")
            params.append(conversation)
            order = "ASC"
        sql = (f"{CALL_SELECT} {'WHERE ' + ' AND '.join(conds) if conds else ''} "
               f"ORDER BY c.end_ns {order}, c.trace_id {order}, c.span_id {order} LIMIT ?")
        return [self._call_row(r) for r in self._conn.execute(sql, [*params, limit]).fetchall()]

    def _call_row(self, r: tuple[Any, ...]) -> CallRow:
        labels, dims = self._labelsets[r[4]]
        return CallRow(
            end_ns=r[0], trace_id=r[1].hex(), span_id=r[2].hex(), parent_span_id=r[3].hex(),
            service=labels[0], environment=labels[1], provider=labels[2], model=labels[3], request_model=labels[4],
            operation=labels[5], status=labels[6], error_type=labels[7], duration_s=r[7] / 1_000_000,
            ttft_s=None if r[8] is None else r[8] / 1_000_000, tokens=dict(zip(TOKEN_CLASSES, r[9:14])),
            cost_pico=dict(zip(COST_CLASSES, r[14:20])), unit_prices=json.loads(r[27]), price_entry=r[26],
            price_version=r[25], price_source=r[24], unpriced=bool(r[20]), unmetered=r[21], invalid=r[22],
            conversation=r[5], user=r[6], dimensions=dict(dims), sample_weight=r[23] / 1_000_000)

    def conversation_groups(self, start_ns: int, end_ns: int, filters: Filters, before: tuple[int, str] | None,
                            limit: int) -> list[Conversation]:
        where = self._where(filters)
        if where is None:
            return []
        conds, params = where
        total = " + ".join(f"c_{c}" for c in COST_CLASSES)
        having = "HAVING (MAX(end_ns), conversation) < (?, ?)" if before else ""
        sql = (f"SELECT conversation, COUNT(*), {', '.join(f'SUM(t_{c})' for c in TOKEN_CLASSES)}, "
               f"SUM(({total}) >> 32), SUM(({total}) & {MASK32}), MIN(end_ns - duration_us * 1000), MAX(end_ns), "
               f"SUM(duration_us), group_concat(DISTINCT labelset) FROM calls "
               f"WHERE end_ns >= ? AND end_ns < ? AND conversation <> '' {''.join(' AND ' + c for c in conds)} "
               f"GROUP BY conversation {having} ORDER BY MAX(end_ns) DESC, conversation DESC LIMIT ?")
        rows = self._conn.execute(sql, [start_ns, end_ns, *params, *(before or ()), limit]).fetchall()
        out = []
        for r in rows:
            ids = [int(x) for x in str(r[12]).split(",")]
            out.append(Conversation(
                conversation=r[0], calls=r[1], tokens=dict(zip(TOKEN_CLASSES, r[2:7])), cost_pico=(r[7] << 32) + r[8],
                first_ns=r[9], last_ns=r[10], duration_s=r[11] / 1_000_000,
                services=sorted({self._value(i, "service") for i in ids}),
                models=sorted({self._value(i, "model") for i in ids})))
        return out

    def coverage(self) -> Coverage:
        first, last = self._conn.execute("SELECT MIN(end_ns), MAX(end_ns) FROM calls").fetchone()
        hour_first, hour_last = self._conn.execute("SELECT MIN(bucket), MAX(bucket) FROM rollup_hour").fetchone()
        day_first = self._conn.execute("SELECT MIN(bucket) FROM rollup_day").fetchone()[0]
        since = self._conn.execute("SELECT value FROM meta WHERE key = 'raw_since_ns'").fetchone()
        firsts = [v for v in (first, hour_first, day_first) if v is not None]
        lasts = [v for v in (last, hour_last) if v is not None]
        raw_since = int(since[0]) if since else first
        return Coverage(min(firsts) if firsts else None, max(lasts) if lasts else None, raw_since)


def open_sqlite_reader(path: Path, config: Config) -> Reader:
    """A `LedgerReader` on the SQLite file at `path` (read-only; LedgerOpenError naming the path)."""
    return Reader(SQLiteSource(path, config))
