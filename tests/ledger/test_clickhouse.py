"""The ClickHouse backend on the chdb engine: schema, the durable spool (outage, restart, kill -9),
retried batches stored once, sealing from deduplicated hours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai_meter.config import Config, PricingConfig
from genai_meter.ledger import Entry
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import cell_int
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.clickhouse_reprice import reprice_executor
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter, migrate_executor
from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.query import Reader
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.spool import Spool
from genai_meter.ledger.urls import LedgerOpenError, clickhouse_target
from genai_meter.pricing import PriceBook
from tests.ledger import oracle
from tests.ledger.chdb_harness import ChdbExecutor, new_database, seal_until
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry
from tests.ledger.test_maintenance import _priced

ROOT = Path(__file__).resolve().parents[2]
FAR = T0 + 1000 * DAY_NS


def _count(executor: ChdbExecutor, db: str) -> int:
    return int(executor.query(f"SELECT count() FROM {db}.calls FINAL")[0][0])  # type: ignore[arg-type]


def _wait(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_schema_is_what_the_design_says() -> None:
    executor, db = new_database(Config())
    rows = executor.query("SELECT name, engine, partition_key, sorting_key FROM system.tables WHERE database = "
                          "{db:String} ORDER BY name", {"db": db})
    tables = {r[0]: r[1:] for r in rows}
    assert tables["calls"] == ("ReplacingMergeTree", "toYYYYMM(day)", "tenant, day, trace_id, span_id")
    assert tables["rollup_hour"][0] == tables["rollup_day"][0] == "SummingMergeTree"
    assert tables["rollup_day_mv"][0] == "MaterializedView"
    types: dict[object, object] = dict(executor.query("SELECT name, type FROM system.columns WHERE database = {db:String} AND table = "
                                "'calls'", {"db": db}))  # type: ignore[arg-type]
    assert types["c_input"] == "Decimal(38, 12)" and types["model"] == "LowCardinality(String)"
    assert types["dims"] == "Map(LowCardinality(String), String)"
    ddl = str(executor.query(f"SHOW CREATE TABLE {db}.calls")[0][0])
    assert "TTL day + toIntervalDay(400)" in ddl
    assert migrate_executor(executor, db, Config()) == sql.LATEST  # idempotent
    executor.command(sql.record_version_sql(db, 9))
    with pytest.raises(LedgerOpenError, match="version 9 is newer"):
        ClickHouseSource(executor, db, Config())
    with pytest.raises(LedgerOpenError, match="no ledger here"):
        ClickHouseSource(executor, "nothing_here", Config())


def test_outage_keeps_calls_in_the_spool_until_clickhouse_accepts(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    executor.fail.set()
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    assert writer.submit([entry(i, T0 + i) for i in range(5)]).result(5) == [True] * 5
    assert writer.submit([entry(4, T0 + 4), entry(5, T0 + 5)]).result(5) == [False, True]
    time.sleep(1.2)
    assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 2 and writer.wal_bytes() > 0
    assert writer.ship_failures >= 1
    executor.fail.clear()
    _wait(lambda: not list((tmp_path / "spool").glob("*.jsonl")))
    assert _count(executor, db) == 6
    writer.close()


def test_restart_ships_what_the_last_run_spooled(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    executor.fail.set()
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    writer.submit([entry(i, T0 + i) for i in range(7)]).result(5)
    writer.close(timeout_s=3)
    executor.fail.clear()
    assert _count(executor, db) == 0 and len(list((tmp_path / "spool").glob("*.jsonl"))) == 1
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    _wait(lambda: _count(executor, db) == 7)
    writer.close()


def test_a_batch_sent_again_is_stored_once(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    executor.fail.set()
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    writer.submit([entry(i, T0 + i) for i in range(4)]).result(5)
    path, = Spool(tmp_path / "spool").pending()
    executor.fail.clear()
    # ClickHouse accepted the batch but the process died before deleting the file: it is sent again
    executor.command(sql.insert_sql(db, Spool.token(path), path.read_text()))
    _wait(lambda: not list((tmp_path / "spool").glob("*.jsonl")))
    writer.close()
    assert int(executor.query(f"SELECT count() FROM {db}.calls")[0][0]) == 4  # type: ignore[arg-type]


@pytest.mark.slow
def test_kill_9_after_the_answer_loses_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    proc = subprocess.Popen([sys.executable, "-m", "tests.ledger.spool_proc", str(spool), "300"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "300"
    assert proc.stdout.readline().strip() == "spooled"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    executor, db = new_database(Config())
    writer = ClickHouseWriter(lambda: executor, db, Config(), spool)  # claims the dead process's batches
    _wait(lambda: _count(executor, db) == 300)
    writer.close()
    assert not list(spool.glob("*.jsonl"))


def test_sealed_hours_count_duplicates_once_and_the_open_hour_reads_final(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool", seal_grace_s=10**9)
    writer.submit([entry(i, T0 + i * HOUR_NS // 4) for i in range(40)]).result(5)  # 10 hours
    writer.close()
    rows = "\n".join(sql.json_row(r, 2) for r in RowBuilder(Config()).rows([entry(i, T0 + i * HOUR_NS // 4)
                                                                            for i in range(40)]))
    executor.command(sql.insert_sql(db, "fan-out-duplicate", rows))  # the same calls from another batch
    seal_until(executor, db, T0 + 6 * HOUR_NS)
    reader = Reader(ClickHouseSource(executor, db, Config()))
    assert reader.source.rollups_before_ns() == (T0 + 6 * HOUR_NS, T0 + 6 * HOUR_NS)
    assert int(executor.query(f"SELECT sum(calls) FROM {db}.rollup_hour")[0][0]) == 24  # type: ignore[arg-type]
    assert reader.totals(T0, FAR, {})[0].calls == 40
    assert sum(p.totals.calls for p in reader.series(T0, T0 + DAY_NS, "1h", {})[()]) == 40
    seal_until(executor, db, T0 + 6 * HOUR_NS)  # sealing again adds nothing
    assert reader.totals(T0, FAR, {})[0].calls == 40


def test_clickhouse_urls() -> None:
    target = clickhouse_target("clickhouse://app:s%40cret@ch.internal:8123/usage")
    assert target is not None and (target.username, target.password, target.database) == ("app", "s@cret", "usage")
    assert clickhouse_target("sqlite:///x.db") is None
    with pytest.raises(ValueError, match="database name"):
        clickhouse_target("clickhouse://h/bad-name;drop")


def test_a_spool_that_cannot_write_answers_unavailable(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerOpenError, match="cannot create the ledger spool"):
        ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "file" / "spool")
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    (tmp_path / "spool").rmdir()
    (tmp_path / "spool").write_text("the disk is gone")
    with pytest.raises(LedgerUnavailable, match="spool cannot store"):
        writer.submit([entry(1, T0)]).result(5)
    writer.close()


def test_reprice_on_clickhouse_keeps_history_and_corrects_sealed_rollups(tmp_path: Path) -> None:
    old_book = PriceBook.from_config(Config())
    executor, db = new_database(Config())
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool", seal_grace_s=10**9)
    writer.submit(_priced(old_book)).result(10)
    writer.close()
    seal_until(executor, db, T0 + 12 * DAY_NS + 3 * HOUR_NS)  # the override's start is in sealed time
    (tmp_path / "prices.yaml").write_text(
        "- provider: openai\n  model: gpt-4o\n  from: 2026-01-11T00:00:00.000000007Z\n  discount_percent: 15\n")
    config = Config(pricing=PricingConfig(overrides=tmp_path / "prices.yaml"))
    new_book = PriceBook.from_config(config)
    start, end = T0, T0 + 15 * DAY_NS
    reader = Reader(ClickHouseSource(executor, db, config))
    before = reader.totals(T0, FAR, {})
    dry = reprice_executor(executor, db, start, end, None, None, True, new_book)
    assert reader.totals(T0, FAR, {}) == before
    applied = reprice_executor(executor, db, start, end, None, None, False, new_book)
    assert (applied.changed, applied.new_total_pico) == (dry.changed, dry.new_total_pico) and dry.changed > 10
    expected = [e if not (start <= e.call.end_ns < end) else Entry(e.call, e.cost and new_book.cost(e.call))
                for e in _priced(old_book)]
    expected = [Entry(e.call, e.cost, old_book.cost(e.call) if e.cost and e.cost.price_source == "overrides" else None)
                for e in expected]
    rows = oracle.stored_rows(expected, config)
    for a, b in [(T0, FAR), (T0 + 3, T0 + 12 * DAY_NS + 5), (T0 + 10 * DAY_NS, T0 + 11 * DAY_NS)]:
        assert reader.totals(a, b, {}, ["model"]) == oracle.totals(rows, a, b, {}, ["model"])
    history = executor.query(f"SELECT count() FROM {db}.price_history")
    assert cell_int(history[0][0]) == applied.changed
    assert reprice_executor(executor, db, start, end, None, None, False, new_book).changed == 0


@pytest.mark.parametrize("version", range(1, sql.LATEST))
def test_clickhouse_migrations_from_every_earlier_version(version: int) -> None:
    executor = ChdbExecutor()
    db = f"migrate_from_{version}"
    assert migrate_executor(executor, db, Config(), target=version) == version
    assert migrate_executor(executor, db, Config()) == sql.LATEST
    ClickHouseSource(executor, db, Config())  # the reader accepts the migrated schema
    names = {r[0] for r in executor.query("SELECT name FROM system.tables WHERE database = {db:String}", {"db": db})}
    assert {"calls", "rollup_hour", "rollup_day", "price_history", "reprices"} <= names
