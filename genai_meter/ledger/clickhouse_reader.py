"""The ClickHouse `Source`: `query.Reader`'s primitive queries as `clickhouse_sql` text.

Raw rows are read with FINAL (duplicates not merged yet count once); rollups only for sealed hours
(`seal_state`), which were rolled up from deduplicated rows. Decimal sums become exact 10^-12
integers here, so the answers equal SQLite's to the last digit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_grouped as grouped
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger import deadline
from genai_meter.ledger.clickhouse_exec import ConnectExecutor, Executor, Value, cell_int
from genai_meter.ledger.model import (
    BASE_FIELDS,
    CallKey,
    CallRecords,
    CallRow,
    Conversation,
    Coverage,
    Filters,
    Ranked,
    Step,
    Totals,
)
from genai_meter.ledger.parts import Table
from genai_meter.ledger.query import AggRow, Reader, UnitRow, to_totals
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.units import UnitAmount, split_context, sums_of
from genai_meter.ledger.urls import ClickHouseTarget, LedgerOpenError
from genai_meter.money import to_pico

DAY_NS = 86400 * 10**9
_MONEY = frozenset(i for i, n in enumerate(SUM_NAMES) if n.startswith("c_") or n == "list_cost")


def _int(value: Value) -> int:
    return cell_int(value)


def _sums(cells: Sequence[Value]) -> list[int]:
    return [to_pico(Decimal(str(v))) if i in _MONEY else cell_int(v) for i, v in enumerate(cells)]


def unit_cells(cells: Sequence[Value]) -> list[UnitAmount]:
    """A row's units from its `clickhouse_sql.UNIT_COLUMNS` cells."""
    names, quantities, costs = (str(c or "") for c in cells)
    if not names:
        return []
    return [(n, int(q), to_pico(Decimal(c))) for n, q, c in zip(names.split("\x1f"), quantities.split(","),
                                                                costs.split(","))]


def group_totals(row: Sequence[Value], width: int) -> Totals:
    """A grouped row of `clickhouse_grouped` (key of `width` cells, SUM_NAMES sums, three unit cells)."""
    n = len(SUM_NAMES)
    return to_totals(tuple(str(v) for v in row[:width]), _sums(row[width:width + n]),
                     sums_of(unit_cells(row[width + n:width + n + 3])))


def _ranked(rows: Iterable[Sequence[Value]], width: int, limit: int | None) -> Ranked:
    """A `Ranked` of `clickhouse_grouped.ranked_sql` rows (top, k0.., r0.., unit cells, n), best first."""
    top: list[Totals] = []
    rest = None
    groups = 0
    for row in rows:
        totals = group_totals(row[1:], width)
        groups += _int(row[-1])
        if _int(row[0]):
            top.append(totals)
        else:
            rest = to_totals((), _sums(row[1 + width:1 + width + len(SUM_NAMES)]), totals.units)
    return Ranked(top, rest, groups, limit)


class ClickHouseSource:
    """Queries of one ledger database. Not thread-safe (one executor). Groupings are ranked by the engine,
    billed units included (`ranks_units`; `clickhouse_grouped`)."""

    ranks_units = True

    def __init__(self, executor: Executor, db: str, config: Config, known_version: int = sql.LATEST) -> None:
        self.executor = executor
        self.db = db
        rows = executor.query("SELECT count() FROM system.tables WHERE database = {db:String} "
                              "AND name = 'schema_version'", {"db": db})
        version = cell_int(executor.query(sql.schema_version_sql(db))[0][0]) if cell_int(rows[0][0]) else 0
        if version == 0:
            raise LedgerOpenError(f"ClickHouse database {db}: no ledger here (start `genai-meter serve` first)")
        if version > known_version:
            raise LedgerOpenError(f"ClickHouse database {db}: ledger schema version {version} is newer than this "
                                  f"genai-meter knows ({known_version}); upgrade genai-meter")
        dims = tuple(config.active_dimensions)
        self._fields = BASE_FIELDS + tuple(d for d in dims if d not in BASE_FIELDS)

    def fields(self) -> tuple[str, ...]:
        return self._fields

    def rollups_before_ns(self) -> tuple[int, int]:
        sealed = _int(self.executor.query(sql.sealed_until_sql(self.db))[0][0])
        return sealed, sealed  # rollup_day is fed from sealed hours; the planner uses whole days only

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        text, params = sql.aggregate_sql(self.db, table, start_ns, end_ns, filters, group_by, by_time)
        n = len(group_by)
        for row in self.executor.query(text, params):
            yield _int(row[0]), tuple(str(v) for v in row[1:1 + n]), _sums(row[1 + n:])

    def aggregate_units(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                        by_time: bool) -> Iterable[UnitRow]:
        text, params = sql.aggregate_units_sql(self.db, table, start_ns, end_ns, filters, group_by, by_time)
        n = len(group_by)
        for row in self.executor.query(text, params):
            yield (_int(row[0]), tuple(str(v) for v in row[1:1 + n]), str(row[1 + n]), _int(row[2 + n]),
                   to_pico(Decimal(str(row[3 + n]))))

    def ranked(self, parts: Sequence[grouped.Part], filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: str) -> Ranked:
        """The top `limit` groups and the exact remainder (every group when `limit` is None)."""
        if limit is None:
            rows = list(self.each_group(parts, filters, group_by, metric))
            return Ranked(rows, None, len(rows), limit)
        if not parts:
            return Ranked([], None, 0, limit)
        text, params = grouped.ranked_sql(self.db, parts, filters, group_by, limit, metric)
        return _ranked(self.executor.query(text, params), len(group_by), limit)

    def each_group(self, parts: Sequence[grouped.Part], filters: Filters, group_by: Sequence[str],
                   metric: str) -> Iterator[Totals]:
        """Every group, ranked, streamed from the server (never all groups held here)."""
        if not parts:
            return
        text, params = grouped.each_group_sql(self.db, parts, filters, group_by, metric)
        for row in deadline.checked(self.executor.stream(text, params)):
            yield group_totals(row, len(group_by))

    def series_ranked(self, parts: Sequence[grouped.Part], filters: Filters, group_by: Sequence[str],
                      limit: int | None, step: Step, utc_offset_s: int) -> Iterator[tuple[int, Ranked]]:
        """(step start, the step's `ranked`) of every step with calls, in order, from one statement. An answer
        of at most steps x (limit + 1) rows (a limit, or no group) is read whole, so the caller may query
        between steps; every group of every step is streamed (one step's rows held here at a time)."""
        if not parts:
            return
        text, params = grouped.ranked_sql(self.db, parts, filters, group_by, limit if limit is not None else 2**63,
                                          "cost", (step, utc_offset_s))
        width = len(group_by)
        bounded = limit is not None or not group_by
        current: int | None = None
        rows: list[Sequence[Value]] = []
        answer = self.executor.query(text, params) if bounded else self.executor.stream(text, params)
        for row in deadline.checked(answer):
            at = _int(row[0])
            if current is not None and at != current:
                yield current, _ranked(rows, width, limit)
                rows = []
            current = at
            rows.append(row[1:])
        if current is not None:
            yield current, _ranked(rows, width, limit)

    def durations(self, start_ns: int, end_ns: int, filters: Filters,
                  group_by: Sequence[str]) -> Iterable[tuple[tuple[str, ...], int]]:
        text, params = sql.durations_sql(self.db, start_ns, end_ns, filters, group_by)
        for row in self.executor.query(text, params):
            yield tuple(str(v) for v in row[:-1]), _int(row[-1])

    def calls(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: tuple[int, bytes, bytes] | None,
              limit: int, conversation: str | None = None) -> list[CallRow]:
        position = None if before is None else (before[0], before[1].hex(), before[2].hex())
        text, params = sql.calls_sql(self.db, filters, start_ns, end_ns, position, limit, conversation)
        return [self._call_row(r) for r in self.executor.query(text, params)]

    def call_records(self, filters: Filters, start_ns: int | None, end_ns: int | None, before: CallKey | None,
                     limit: int) -> CallRecords:
        """The rows of `calls` as raw columns; label sets and prices get ids of this page (a new `version`)."""
        position = None if before is None else (before[0], before[1].hex(), before[2].hex())
        text, params = sql.calls_sql(self.db, filters, start_ns, end_ns, position, limit, None)
        label_ids: dict[tuple[str, ...], int] = {}
        label_sets: dict[int, tuple[object, ...]] = {}  # id -> (id, the label fields, the dimensions' JSON)
        price_ids: dict[str, int] = {}
        rows: list[tuple[object, ...]] = []
        units = {}
        for r in self.executor.query(text, params):
            key = tuple(str(v) for v in r[4:13])  # the label fields and the dimensions' JSON
            labelset = label_ids.get(key)
            if labelset is None:
                labelset = label_ids[key] = len(label_ids)
                label_sets[labelset] = (labelset, *key)
            price = price_ids.setdefault(str(r[34]), len(price_ids))
            call = (_int(r[0]), bytes.fromhex(str(r[1])), bytes.fromhex(str(r[2])))
            rows.append((*call, labelset, str(r[13]), str(r[14]), _int(r[15]), *(_int(v) for v in r[17:22]),
                         *(to_pico(Decimal(str(v))) for v in r[22:28]), price, _int(r[28]), str(r[29]), str(r[30])))
            found = unit_cells(r[36:39])
            if found:
                units[call] = sums_of(found)
        entries = {i: entry for entry, i in price_ids.items()}
        return CallRecords(rows, lambda ids: [label_sets[i] for i in ids], entries.__getitem__, units, object())

    @staticmethod
    def _call_row(r: Sequence[Value]) -> CallRow:
        labels = dict(zip(LABEL_FIELDS, (str(v) for v in r[4:12])))
        tokens = dict(zip(TOKEN_CLASSES, (_int(v) for v in r[17:22])))
        costs = {c: to_pico(Decimal(str(v))) for c, v in zip(COST_CLASSES, r[22:28])}
        dims, tier, batch = split_context(json.loads(str(r[12])))
        return CallRow(
            end_ns=_int(r[0]), trace_id=str(r[1]), span_id=str(r[2]), parent_span_id=str(r[3]), **labels,
            duration_s=_int(r[15]) / 1_000_000, ttft_s=None if r[16] is None else _int(r[16]) / 1_000_000,
            tokens=tokens, cost_pico=costs, unit_prices=json.loads(str(r[35])), price_entry=str(r[34]),
            price_version=str(r[33]), price_source=str(r[32]), unpriced=bool(_int(r[28])), unmetered=str(r[29]),
            invalid=str(r[30]), conversation=str(r[13]), user=str(r[14]), dimensions=dims,
            sample_weight=_int(r[31]) / 1_000_000, service_tier=tier, batch=batch, units=sums_of(unit_cells(r[36:39])))

    def conversation_groups(self, start_ns: int, end_ns: int, filters: Filters, before: tuple[int, str] | None,
                            limit: int) -> list[Conversation]:
        text, params = sql.conversations_sql(self.db, start_ns, end_ns, filters, before, limit)
        out = []
        for r in self.executor.query(text, params):
            out.append(Conversation(
                conversation=str(r[0]), calls=_int(r[1]), tokens=dict(zip(TOKEN_CLASSES, (_int(v) for v in r[2:7]))),
                cost_pico=to_pico(Decimal(str(r[7]))), first_ns=_int(r[8]), last_ns=_int(r[9]),
                duration_s=_int(r[10]) / 1_000_000, services=str(r[11]).split("\x1f"), models=str(r[12]).split("\x1f"),
                calls_unpriced=_int(r[13]), calls_upper_bound=_int(r[14])))
        return out

    def coverage(self) -> Coverage:
        first, last, count, day_first, day_count = (_int(v) for v in self.executor.query(sql.coverage_sql(self.db))[0])
        raw_first = first if count else None
        firsts = [v for v in (raw_first, day_first if day_count else None) if v is not None]
        # TTL removed raw calls when a daily rollup starts before the first raw call's day
        pruned = raw_first is not None and day_count and day_first < raw_first - raw_first % DAY_NS
        return Coverage(min(firsts) if firsts else None, last if count else None, raw_first if pruned else None)

    def close(self) -> None:
        self.executor.close()


def open_clickhouse_reader(target: ClickHouseTarget, config: Config) -> Reader:
    """A `LedgerReader` on a ClickHouse ledger (never migrates; refuses a newer schema)."""
    executor = ConnectExecutor(target, config.ledger.busy_timeout_seconds)
    return Reader(ClickHouseSource(executor, target.database, config))
