"""Late calls held by their batch (`late_calls`, schema v10) and folded into the rollups in groups later.

While held, every answer (Python merging path, one-statement ranked path, units) counts them exactly
once; a fold leaves the rollup tables equal to a from-scratch rebuild from the raw calls; re-pricing,
pruning and `forget` with calls held stay exact; a fold between a query's statements counts nothing
twice."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from genai_meter.config import Config, LedgerConfig, PricingConfig
from genai_meter.ledger import Entry, forget, open_reader, prune, reprice, sqlite_writer
from genai_meter.ledger.model import Filters, LedgerReader
from genai_meter.ledger.parts import Table
from genai_meter.ledger.query import AggRow, Reader
from genai_meter.ledger.rows import MONEY_SUMS, SUM_NAMES, Row, RowBuilder
from genai_meter.ledger.sqlite_late import fold_pass
from genai_meter.ledger.sqlite_params import Dictionaries, params_of
from genai_meter.ledger.sqlite_reader import SQLiteSource
from genai_meter.ledger.sqlite_rollups import DAY_MARK, seal
from genai_meter.ledger.sqlite_schema import HOUR_MARK, open_write, rollup_columns
from genai_meter.ledger.sqlite_store import store
from genai_meter.pricing import PriceBook
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, make_call, random_entries, seal_until, write_acknowledged
from tests.ledger.test_units import _check, unit_entries

FAR = T0 + 40 * DAY_NS
W = T0 + 12 * DAY_NS + 5 * HOUR_NS + 123_456  # inside an hour; days sealed before T0 + 12 days
ROLLUPS = ("rollup_hour", "rollup_day", "rollup_field_day", "rollup_unit_hour", "rollup_unit_day")


@pytest.fixture(autouse=True)
def writer_seals_before_t0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "SEAL_GRACE_S", time.time() - (T0 - 30 * DAY_NS) / 10**9)


def _write(path: Path, entries: list[Entry], fold: bool = True) -> None:
    """Store `entries` through the writer (whose upkeep and close fold held calls); `fold=False`: through
    its commit alone (`sqlite_store.store`), so the late calls stay held."""
    if not fold:
        conn = open_write(path, 5.0)
        dicts = Dictionaries(path, 5.0)
        builder = RowBuilder(Config())
        for i in range(0, len(entries), 100):
            params = params_of(builder.rows(entries[i:i + 100]), dicts)
            assert store(conn, dicts, params, look_up=False) == [True] * len(params)
        dicts.close()
        conn.close()
        return
    write_acknowledged(path, entries)


def _held(path: Path) -> int:
    conn = sqlite3.connect(path)
    n = conn.execute("SELECT COUNT(*) FROM late_calls").fetchone()[0]
    conn.close()
    return int(n)


def _fold(path: Path) -> None:
    conn = open_write(path, 5.0)
    while not fold_pass(conn):
        pass
    conn.close()


def _digest(path: Path) -> dict[str, dict[tuple[object, ...], tuple[int, ...]]]:
    """Every rollup row by key, money pairs joined (a fold keeps `_lo` normalised, a seal of field rows
    does not: same value), rows of zero calls left out; and the planner's statistics (`field_day_rows`)."""
    conn = sqlite3.connect(path)
    cols = rollup_columns()
    pairs = [(cols.index(f"{n}_hi"), cols.index(f"{n}_lo")) if n in MONEY_SUMS else (cols.index(n), -1)
             for n in SUM_NAMES]
    out: dict[str, dict[tuple[object, ...], tuple[int, ...]]] = {}
    for table in ROLLUPS:
        width = 3 if table in ("rollup_field_day", "rollup_unit_hour", "rollup_unit_day") else 2
        rows: dict[tuple[object, ...], tuple[int, ...]] = {}
        for r in conn.execute(f"SELECT * FROM {table}"):
            key, sums = tuple(r[:width]), r[width:]
            if table.startswith("rollup_unit"):
                rows[key] = (sums[0], (sums[1] << 32) + sums[2])
            elif sums[0]:
                rows[key] = tuple((sums[a] << 32) + sums[b] if b >= 0 else sums[a] for a, b in pairs)
        out[table] = rows
    out["field_day_rows"] = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute("SELECT * FROM field_day_rows")}
    conn.close()
    return out


def _rebuilt(path: Path, tmp: Path, hours: int, days: int) -> dict[str, dict[tuple[object, ...], tuple[int, ...]]]:
    """The rollups of a copy of the file rebuilt from scratch from its raw calls up to the same marks."""
    copy = tmp / "rebuilt.db"
    shutil.copy(path, copy)
    conn = open_write(copy, 5.0)
    for table in (*ROLLUPS, "field_day_rows"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM late_calls")
    conn.execute("DELETE FROM meta WHERE key IN (?, ?)", (HOUR_MARK, DAY_MARK))
    while (marks := seal(conn, hours))[0] < hours or marks[1] < days:
        pass
    conn.close()
    return _digest(copy)


def _answers(reader: LedgerReader, rows: list[Row]) -> None:
    ranges = [(T0, FAR), (T0 + 7, W + 999), (T0 + 12 * DAY_NS + 5 * HOUR_NS, FAR), (T0 + DAY_NS + 17, W - 5)]
    for a, b in ranges:
        for filters, group_by in [({}, []), ({}, ["model"]), ({}, ["customer"]), ({"customer": ["zeta"]}, ["status"])]:
            assert reader.totals(a, b, filters, group_by) == oracle.totals(rows, a, b, filters, group_by), (a, b)
        want = oracle.totals(rows, a, b, {}, ["customer"])
        ranked = reader.ranked(a, b, {}, ["customer"], 1)  # the one-statement path: top 1 and the remainder
        assert ranked.groups == len(want)
        assert ranked.rows[0].calls + (ranked.rest.calls if ranked.rest else 0) == sum(t.calls for t in want)
        for step in ("1h", "1d"):
            series = reader.series(a, b, step, {}, ["model"])
            assert sum(p.totals.calls for ps in series.values() for p in ps) == oracle.totals(rows, a, b, {})[0].calls


def _late() -> list[Entry]:
    return [entry(90_000 + i, T0 + i * (DAY_NS // 7) + 11, customer=["zeta", "acme", ""][i % 3],
                  status=["ok", "error"][i % 2]) for i in range(7 * 12 + 5)] + [entry(99_999, W - 1)]


def test_held_late_calls_count_once_in_every_answer_and_fold_to_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = random_entries(21, 1500, T0, 20 * DAY_NS)
    _write(path, first)
    seal_until(path, W)
    late = _late()
    _write(path, late, fold=False)
    assert _held(path) == sum(1 for e in late if e.call.end_ns < W) > 80
    rows = oracle.stored_rows(first + late, Config())
    reader = open_reader(f"sqlite:///{path}", Config())
    _answers(reader, rows)  # held: read from raw calls beside the rollups
    _fold(path)
    assert _held(path) == 0
    _answers(reader, rows)
    reader.close()
    got = _digest(path)
    assert got["rollup_field_day"] and got == _rebuilt(path, tmp_path, W, T0 + 12 * DAY_NS)


def test_held_units_count_once_and_fold_to_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    entries = unit_entries(1, 800)
    _write(path, entries)
    w = T0 + 4 * DAY_NS + HOUR_NS // 3
    seal_until(path, w)
    late = unit_entries(2, 300, first=10_000, span=4 * DAY_NS)  # before W: held
    _write(path, late, fold=False)
    assert _held(path) == 300
    _check(url, entries + late)
    _fold(path)
    _check(url, entries + late)
    got = _digest(path)
    assert got["rollup_unit_day"] and got == _rebuilt(path, tmp_path, w, T0 + 4 * DAY_NS)


def test_repricing_prune_and_forget_with_calls_held(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    book = PriceBook.from_config(Config())
    calls = [make_call(i, T0 + i * (DAY_NS // 20) + i, tokens=(1000 + i, 0, 0, 300, 0)) for i in range(300)]
    _write(path, [Entry(c, book.cost(c)) for c in calls[::2]])
    w = T0 + 7 * DAY_NS + 3 * HOUR_NS + 5
    seal_until(path, w)
    _write(path, [Entry(c, book.cost(c)) for c in calls[1::2]], fold=False)  # late ones held
    assert _held(path) > 50
    (tmp_path / "prices.yaml").write_text("- provider: openai\n  model: gpt-4o\n  discount_percent: 15\n")
    config = Config(pricing=PricingConfig(overrides=tmp_path / "prices.yaml"))
    new_book = PriceBook.from_config(config)
    assert reprice(url, config, T0 + 2 * DAY_NS + 1, FAR, dry_run=False).changed > 0
    assert _held(path) == 0  # folded before the corrections
    expected = [Entry(c, new_book.cost(c) if c.end_ns >= T0 + 2 * DAY_NS + 1 else book.cost(c),
                      book.cost(c) if c.end_ns >= T0 + 2 * DAY_NS + 1 else None) for c in calls]
    rows = oracle.stored_rows(expected, config)
    reader = open_reader(url, config)
    assert reader.totals(T0, FAR, {}) == oracle.totals(rows, T0, FAR, {})
    assert _digest(path) == _rebuilt(path, tmp_path, w, T0 + 7 * DAY_NS)
    _write(path, [entry(70_000 + i, T0 + i * DAY_NS + 9, customer="acme") for i in range(8)], fold=False)
    assert _held(path) == 8
    forget(url, config, customer="acme")
    late_rows = oracle.stored_rows([entry(70_000 + i, T0 + i * DAY_NS + 9) for i in range(8)], config)
    assert reader.totals(T0, FAR, {}) == oracle.totals(rows + late_rows, T0, FAR, {})
    assert reader.totals(T0, FAR, {"customer": ["acme"]}) == oracle.totals([], T0, FAR, {})
    assert prune(url, Config(ledger=LedgerConfig(retention_days=10, rollup_retention_days=1000)),
                 now_ns=T0 + 13 * DAY_NS) > 0
    assert _held(path) == 0
    assert reader.totals(T0, FAR, {}) == oracle.totals(rows + late_rows, T0, FAR, {})
    reader.close()


class FoldingSource(SQLiteSource):
    """A source beside which the held late calls are folded right after each aggregate it answers."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, Config())
        self.write = open_write(path, 5.0)
        self.folds = 0

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        rows = super().aggregate(table, start_ns, end_ns, filters, group_by, by_time)
        self.write.execute("BEGIN IMMEDIATE")
        if self.write.execute("SELECT COUNT(*) FROM late_calls").fetchone()[0]:
            self.folds += 1
        self.write.execute("COMMIT")
        fold_pass(self.write)
        return rows


def test_a_fold_during_a_query_counts_no_call_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = random_entries(41, 1000, T0, 20 * DAY_NS)
    _write(path, first)
    seal_until(path, W)
    late = _late()
    _write(path, late, fold=False)
    rows = oracle.stored_rows(first + late, Config())
    source = FoldingSource(path)
    reader = Reader(source)
    series = reader.series(T0, FAR, "1d", {}, ["model"])  # days, then hours and raw calls: a fold between
    assert source.folds == 1 and _held(path) == 0
    for key, points in series.items():
        for point in points:
            want = oracle.totals(rows, point.start_ns, point.start_ns + DAY_NS, {"model": list(key)}, ["model"])
            assert [point.totals] == want, point.start_ns
    assert sum(p.totals.calls for ps in series.values() for p in ps) == len(rows)
    source.write.close()
    reader.close()
