"""The SQLite writer's fast path: rollups made per label set in Python (money split in SQL), the
identity (end time, trace id, span id) found through the primary key, `submit_rows` on both writers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from genai_meter.config import Config, PricingConfig
from genai_meter.ledger import open_reader, open_writer, reprice
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter
from genai_meter.ledger.model import Entry
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.pricing import PriceBook
from tests.ledger import oracle
from tests.ledger.chdb_harness import new_database
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, make_call, random_entries

FAR = T0 + 1000 * DAY_NS
HOUR = T0 + 5 * HOUR_NS


def test_one_hour_batches_with_retries_roll_up_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    entries = random_entries(11, 1500, HOUR, HOUR_NS)  # one hour: the rollup rows are made per label set
    writer = open_writer(url, Config())
    flags = []
    for i in range(0, 1500, 250):
        flags += writer.submit(entries[i:i + 250]).result(10)
        if i:  # a retry of the previous batch's tail mixed with new calls: stored once
            again = entries[i - 20:i] + [entries[i + 250]] if i + 250 < 1500 else entries[i - 20:i]
            answer = writer.submit(again).result(10)
            assert answer[:20] == [False] * 20
            flags += answer[20:]
    writer.close()
    assert sum(flags) == 1500
    rows = oracle.stored_rows(entries, Config())
    reader = open_reader(url, Config())
    for group_by in ([], ["model"], ["customer", "status"], ["feature"]):
        for start, end in ((HOUR, HOUR + HOUR_NS), (T0, FAR), (HOUR + 3, HOUR + HOUR_NS // 2)):
            assert reader.totals(start, end, {}, group_by) == oracle.totals(rows, start, end, {}, group_by)
    reader.close()


def test_identity_is_end_time_trace_and_span(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    book = PriceBook.from_config(Config())
    twins = [make_call(1, T0 + HOUR_NS), make_call(1, T0 + HOUR_NS + 5)]  # one span id, two end times
    writer = open_writer(url, Config())
    assert writer.submit([Entry(c, book.cost(c)) for c in twins]).result(5) == [True, True]
    assert writer.submit([Entry(twins[1], book.cost(twins[1]))]).result(5) == [False]
    writer.close()
    reader = open_reader(url, Config())
    assert reader.totals(T0, FAR, {})[0].calls == 2
    reader.close()
    (tmp_path / "prices.yaml").write_text("- provider: openai\n  model: gpt-4o\n  from: 2025-01-01\n  discount_percent: 10\n")
    discounted = Config(pricing=PricingConfig(overrides=tmp_path / "prices.yaml"))
    assert reprice(url, discounted, T0, FAR, dry_run=False).changed == 2  # both re-priced, each its own history
    conn = sqlite3.connect(tmp_path / "ledger.db")
    assert conn.execute("SELECT COUNT(*) FROM price_history").fetchone()[0] == 2
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "calls_identity" not in indexes
    conn.close()


def test_submit_rows_stores_what_submit_stores(tmp_path: Path) -> None:
    entries = random_entries(5, 600, T0, 3 * DAY_NS) + [entry(10**6, T0 + 7)]
    config = Config()
    by_entries = SQLiteWriter(tmp_path / "a.db", config)
    by_rows = SQLiteWriter(tmp_path / "b.db", config)
    rows = RowBuilder(config).rows(entries)
    assert by_entries.submit(entries).result(10) == by_rows.submit_rows(rows).result(10) == [True] * 601
    assert by_rows.submit_rows(rows[:3]).result(10) == [False] * 3
    by_entries.close()
    by_rows.close()
    readers = [open_reader(f"sqlite:///{tmp_path / name}", config) for name in ("a.db", "b.db")]
    assert readers[0].totals(T0, FAR, {}, ["customer"]) == readers[1].totals(T0, FAR, {}, ["customer"])
    assert readers[0].events({}, limit=700) == readers[1].events({}, limit=700)
    for reader in readers:
        reader.close()


def test_clickhouse_submit_rows(tmp_path: Path) -> None:
    executor, db = new_database(Config())
    writer = ClickHouseWriter(lambda: executor, db, Config(), tmp_path / "spool")
    rows = RowBuilder(Config()).rows([entry(i, T0 + i) for i in range(6)])
    assert writer.submit_rows(rows[:4]).result(5) == [True] * 4
    assert writer.submit_rows(rows[3:]).result(5) == [False, True, True]
    writer.close()


def test_labelset_parts_are_shared_per_label_set() -> None:
    builder = RowBuilder(Config())
    a, b = (builder.row(entry(i, T0 + i, customer="acme", feature="search")) for i in range(2))
    assert a.labels is b.labels and a.dims is b.dims
    assert a.dims == (("customer", "acme"), ("feature", "search"))
    assert builder.labelset(make_call(3, T0, customer="acme", feature="search")) == (a.labels, a.dims)
