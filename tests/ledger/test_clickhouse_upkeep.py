"""The ClickHouse backend without its former holes, on the chdb engine: a call arriving for an hour
already sealed reaches that hour's rollup (re-seal, once), `prune` and `forget` work there too; every
answer equals plain-Python sums over the calls that remain, to the last digit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import cell_int
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.clickhouse_upkeep import forget_customer_executor, forget_user_executor
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter, prune_sealed
from genai_meter.ledger.model import Entry
from genai_meter.ledger.query import Reader, to_totals
from genai_meter.ledger.ranking import rank_groups
from genai_meter.ledger.rows import RowBuilder, hash_value
from tests.ledger import oracle
from tests.ledger.chdb_harness import ChdbExecutor, new_database, seal_until
from tests.ledger.support import DAY_NS, HOUR_NS, T0, ledger_config, random_entries

FAR = T0 + 1000 * DAY_NS


def _mutable(config: Config) -> tuple[ChdbExecutor, str]:
    """A database whose tables merge: mutations (ALTER ... DELETE / UPDATE) run as merges."""
    executor, db = new_database(config)
    executor.command(f"SYSTEM START MERGES {db}.calls")
    return executor, db


def _write(executor: ChdbExecutor, db: str, tmp: Path, entries: list[Entry], name: str = "spool") -> None:
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp / name, seal_grace_s=10**9)
    writer.submit(entries).result(30)
    writer.close()


def _rolled(executor: ChdbExecutor, db: str, before: int) -> int:
    return cell_int(executor.query(f"SELECT sum(calls) FROM {db}.rollup_hour WHERE bucket < {before}")[0][0])


def _stored(executor: ChdbExecutor, db: str, before: int) -> int:
    return cell_int(executor.query(f"SELECT count() FROM {db}.calls FINAL WHERE end_ns < {before}")[0][0])


def test_a_call_for_a_sealed_hour_reaches_its_rollup_once(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    first = random_entries(3, 300, T0, 10 * HOUR_NS)
    _write(executor, db, tmp_path, first)
    sealed = T0 + 8 * HOUR_NS
    seal_until(executor, db, sealed)
    assert _rolled(executor, db, sealed) == _stored(executor, db, sealed)
    late = [Entry(replace(e.call, span_id=b"\x07" + e.call.span_id[1:]), e.cost)  # new calls, sealed hours
            for e in random_entries(4, 60, T0 + HOUR_NS, 5 * HOUR_NS)]
    body = "\n".join(sql.json_row(r, 2) for r in RowBuilder(Config()).rows(late))
    executor.command(sql.insert_sql(db, "late-batch", body))  # as a shipper stores a spool file
    assert _rolled(executor, db, sealed) < _stored(executor, db, sealed)  # the hole: sealed before they came
    seal_until(executor, db, sealed)
    assert _rolled(executor, db, sealed) == _stored(executor, db, sealed) == 300 - sum(
        1 for e in first if e.call.end_ns >= sealed) + 60
    seal_until(executor, db, sealed)  # once: sealing again adds nothing
    assert _rolled(executor, db, sealed) == _stored(executor, db, sealed)
    reader = Reader(ClickHouseSource(executor, db, Config()))
    rows = oracle.stored_rows(first + late, Config())
    for a, b in [(T0, sealed), (T0 + HOUR_NS, T0 + 6 * HOUR_NS), (T0, FAR)]:
        assert reader.totals(a, b, {}, ["model"]) == oracle.totals(rows, a, b, {}, ["model"])
        assert reader.totals(a, b, {}, ["customer"]) == oracle.totals(rows, a, b, {}, ["customer"])
        for limit in (None, 1):  # ranked by the engine over the re-sealed rollups
            want = rank_groups(oracle.group_sums(rows, a, b, {}, ["customer", "model"]), {}, limit, "cost", to_totals)
            assert reader.ranked(a, b, {}, ["customer", "model"], limit) == want
        assert list(reader.each_group(a, b, {}, ["model"])) == \
            rank_groups(oracle.group_sums(rows, a, b, {}, ["model"]), {}, None, "cost", to_totals).rows


def test_prune_deletes_raw_calls_past_retention_and_keeps_the_rollups(tmp_path: Path) -> None:
    config = ledger_config(retention_days=5, rollup_retention_days=3650)
    executor, db = _mutable(ledger_config(retention_days=3650, rollup_retention_days=3650))  # TTLs far away
    entries = random_entries(5, 400, T0, 12 * DAY_NS)
    _write(executor, db, tmp_path, entries)
    now = T0 + 12 * DAY_NS
    cutoff = now - 5 * DAY_NS
    old = sum(1 for e in entries if e.call.end_ns < cutoff)
    assert prune_sealed(executor, db, config, now) == old > 0
    assert _stored(executor, db, cutoff) == 0 and _rolled(executor, db, cutoff) == old
    reader = Reader(ClickHouseSource(executor, db, config))
    rows = oracle.stored_rows(entries, config)
    assert reader.totals(T0, cutoff, {}, ["model"]) == oracle.totals(rows, T0, cutoff, {}, ["model"])
    assert prune_sealed(executor, db, config, now) == 0


def test_forget_a_customer_and_a_user_on_clickhouse(tmp_path: Path) -> None:
    executor, db = _mutable(Config())
    entries = random_entries(6, 400, T0, 3 * DAY_NS)
    _write(executor, db, tmp_path, entries)
    sealed = T0 + 2 * DAY_NS
    seal_until(executor, db, sealed)
    reader = Reader(ClickHouseSource(executor, db, Config()))
    before = reader.totals(T0, FAR, {})
    acme = sum(1 for e in entries if e.call.dimensions.get("customer") == "acme")
    assert forget_customer_executor(executor, db, "acme") == acme > 0
    assert cell_int(executor.query(f"SELECT count() FROM {db}.calls FINAL WHERE dims['customer'] = 'acme'")[0][0]) == 0
    assert cell_int(executor.query(f"SELECT count() FROM {db}.rollup_hour WHERE dims_key LIKE '%acme%'")[0][0]) == 0
    assert reader.totals(T0, FAR, {}) == before
    forgotten = [Entry(replace(e.call, dimensions={k: v for k, v in e.call.dimensions.items() if k != "customer"}),
                       e.cost) if e.call.dimensions.get("customer") == "acme" else e for e in entries]
    rows = oracle.stored_rows(forgotten, Config())
    for a, b in [(T0, sealed), (T0, FAR), (T0 + 5, T0 + DAY_NS + 7)]:
        assert reader.totals(a, b, {}, ["customer"]) == oracle.totals(rows, a, b, {}, ["customer"])
    seal_until(executor, db, sealed)  # nothing to re-seal: the rollups moved with the calls
    assert _rolled(executor, db, sealed) == _stored(executor, db, sealed)
    alice = sum(1 for e in entries if e.call.user_id == "alice")
    assert forget_user_executor(executor, db, sorted({"alice", hash_value("alice")})) == alice > 0
    assert reader.totals(T0, FAR, {"user": ["alice"]})[0].calls == 0
    assert reader.totals(T0, FAR, {}) == before
