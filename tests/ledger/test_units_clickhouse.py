"""Billed units, the service tier and the batch flag in the ClickHouse ledger (chdb): the same answers as
the entries say, from raw rows (FINAL, duplicates hidden) and sealed hourly and daily unit rollups; migrated
from version 2; priced again by re-pricing with its rollup corrections."""

from __future__ import annotations

from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import cell_int
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.clickhouse_reprice import reprice_executor
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter, migrate_executor
from genai_meter.ledger.query import Reader
from genai_meter.ledger.rows import cost_pico
from genai_meter.pricing import PriceBook
from tests.ledger.chdb_harness import ChdbExecutor, filled_chdb_reader, new_database, seal_until
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry
from tests.ledger.test_units import FAR, expected, unit_entries


def _check(reader: Reader, entries: list) -> None:  # type: ignore[type-arg]
    [total] = reader.totals(T0 - DAY_NS, FAR, {})
    [(calls, cost, units)] = expected(entries).values()
    assert (total.calls, total.cost_total_pico, total.units) == (calls, cost, units)
    for key in ("service_tier", "batch"):
        got = {t.key[0]: (t.calls, t.cost_total_pico, t.units) for t in reader.totals(T0 - DAY_NS, FAR, {}, [key])}
        assert got == expected(entries, key)
    days = reader.series(T0 - DAY_NS, T0 + 20 * DAY_NS, "1d", {"service_tier": ["flex"]})[()]
    flex = [e for e in entries if e.call.service_tier == "flex"]
    assert sum(p.totals.cost_total_pico for p in days) == next(iter(expected(flex).values()))[1]


def test_units_tier_and_batch_on_clickhouse(tmp_path: Path) -> None:
    entries = unit_entries(11, 900)
    reader = filled_chdb_reader(tmp_path, Config(), entries[300:] + entries[:300])  # first 300 replayed too
    _check(reader, entries)
    page = reader.events({}, limit=1000).rows
    by_key = {(r.trace_id, r.span_id): r for r in page}
    for e in entries[:50]:
        row = by_key[(e.call.trace_id.hex(), e.call.span_id.hex())]
        assert (row.service_tier, row.batch) == (e.call.service_tier, e.call.batch)
        assert row.units.quantity == e.call.units
        assert e.cost is not None and row.cost_total_pico == sum(cost_pico(e.cost)) + sum(e.cost.unit_pico.values())
    convs = reader.conversations(T0, FAR, {})[0]
    for conv in convs:
        mine = [e for e in entries if e.call.conversation_id == conv.conversation]
        assert conv.cost_pico == next(iter(expected(mine).values()))[1]
    reader.close()


def test_a_version_2_database_migrates_and_reprices_units(tmp_path: Path) -> None:
    executor, db = ChdbExecutor(), "ledger_units_v2"
    assert migrate_executor(executor, db, Config(), target=2) == 2
    assert migrate_executor(executor, db, Config()) == sql.LATEST == 4
    executor.command(f"SYSTEM STOP MERGES {db}.calls")
    entries = []
    for i in range(1, 60):
        e = entry(i, T0 + i * HOUR_NS // 3, "0.000001", model="gpt-audio", tokens=(100, 0, 0, 50, 0))
        e.call.units = {"input_audio_tokens": 3000 + i, "output_audio_tokens": 1000}
        e.call.service_tier = "priority" if i % 2 else ""
        assert e.cost is not None
        e.cost.unit_pico = {"input_audio_tokens": 1, "output_audio_tokens": 1}
        entries.append(e)
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool", seal_grace_s=10 * 365 * 86400)
    writer.submit(entries).result(30)
    writer.close()
    seal_until(executor, db, T0 + 10 * HOUR_NS)  # part of the calls in sealed hours: corrected by rows
    book = PriceBook.from_config(Config())
    result = reprice_executor(executor, db, T0, FAR, None, None, False, book)
    want = sum(sum(cost_pico(c)) + sum(c.unit_pico.values()) for c in (book.cost(e.call) for e in entries) if c)
    assert (result.changed, result.new_total_pico) == (59, want)
    reader = Reader(ClickHouseSource(executor, db, Config()))
    for start, end in ((T0, FAR), (T0, T0 + 10 * HOUR_NS), (T0 + 10 * HOUR_NS, FAR)):
        [t] = reader.totals(start, end, {})
        part = [book.cost(e.call) for e in entries if start <= e.call.end_ns < end]
        assert t.cost_total_pico == sum(sum(cost_pico(c)) + sum(c.unit_pico.values()) for c in part if c)
    history = executor.query(f"SELECT sum(arraySum(unit_costs)) FROM {db}.price_history")
    assert history[0][0] is not None and cell_int(history[0][0] * 10**12) == 118  # type: ignore[operator]
    reader.close()


def test_the_schema_has_the_unit_tables() -> None:
    executor, db = new_database(Config())
    names = {str(r[0]) for r in executor.query("SELECT name FROM system.tables WHERE database = {db:String}",
                                               {"db": db})}
    assert {"rollup_unit_hour", "rollup_unit_day", "rollup_unit_day_mv"} <= names
