"""Re-pricing (history kept, rollups corrected), pruning, backup and forget on the SQLite ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from genai_meter.config import Config, LedgerConfig, PricingConfig
from genai_meter.ledger import backup, forget, open_reader, open_writer, prune, reprice
from genai_meter.ledger.model import Entry
from genai_meter.pricing import PriceBook
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, hour_totals, make_call

FAR = T0 + 1000 * DAY_NS
CUT = T0 + 10 * DAY_NS + 7  # the override's start, not aligned to anything


def _priced(book: PriceBook, catalog: PriceBook | None = None) -> list[Entry]:
    out = []
    for i in range(400):
        model, provider = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-0", "anthropic")][i % 3]
        call = make_call(i, T0 + i * (DAY_NS // 20) + i, model=model, provider=provider,
                         tokens=(1000 + i, 200, 0, 300 + i, 0), invalid="bad" if i % 50 == 7 else "")
        cost = None if call.invalid else book.cost(call)
        catalog_cost = catalog.cost(call) if catalog and cost and cost.price_source == "overrides" else None
        out.append(Entry(call, cost, catalog_cost))
    return out


def _assert_hour_totals(path: Path) -> None:
    """The hourly totals the triggers keep equal rollup_hour's sums, and are not empty."""
    total, summed = hour_totals(path)
    assert total == summed and len(total) > 10


def test_reprice_with_a_new_override_changes_exactly_the_affected_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    old_book = PriceBook.from_config(Config())
    writer = open_writer(url, Config())
    writer.submit(_priced(old_book)).result(10)
    writer.close()
    (tmp_path / "prices.yaml").write_text(
        "- provider: openai\n  model: gpt-4o\n  from: 2026-01-11T00:00:00.000000007Z\n  discount_percent: 15\n")
    config = Config(pricing=PricingConfig(overrides=tmp_path / "prices.yaml"))
    new_book = PriceBook.from_config(config)
    start, end = T0, T0 + 15 * DAY_NS

    dry = reprice(url, config, start, end, dry_run=True)
    affected = [e for e in _priced(old_book) if e.call.model == "gpt-4o" and CUT <= e.call.end_ns < end
                and not e.call.invalid]
    assert dry.changed == len(affected) > 10
    assert dry.new_total_pico < dry.old_total_pico
    assert dry.by_model[("openai", "gpt-4o")][1] < dry.by_model[("openai", "gpt-4o")][0]
    assert dry.by_model[("openai", "gpt-4o-mini")][0] == dry.by_model[("openai", "gpt-4o-mini")][1]
    reader = open_reader(url, config)
    before = reader.totals(T0, FAR, {})
    assert reader.totals(T0, FAR, {}) == before  # dry run stored nothing

    applied = reprice(url, config, start, end, dry_run=False)
    _assert_hour_totals(tmp_path / "ledger.db")
    assert (applied.changed, applied.old_total_pico, applied.new_total_pico) == (dry.changed, dry.old_total_pico,
                                                                               dry.new_total_pico)
    # the calls in the window re-priced with today's book, the rest as stored; rollups match raw rows
    expected = [e if not (start <= e.call.end_ns < end) else Entry(e.call, e.cost and new_book.cost(e.call))
                for e in _priced(old_book, old_book)]
    expected = [Entry(e.call, e.cost, old_book.cost(e.call) if e.cost and e.cost.price_source == "overrides" else None)
                for e in expected]
    rows = oracle.stored_rows(expected, config)
    for a, b in [(T0, FAR), (T0 + 3, T0 + 12 * DAY_NS + 5), (CUT, CUT + HOUR_NS)]:
        assert reader.totals(a, b, {}, ["model"]) == oracle.totals(rows, a, b, {}, ["model"])
    after = reader.totals(T0, FAR, {})[0]
    assert before[0].cost_total_pico - after.cost_total_pico == applied.old_total_pico - applied.new_total_pico
    assert after.list_cost_pico == before[0].list_cost_pico  # the list (catalog) cost does not move
    page = reader.events({"model": ["gpt-4o"]}, start_ns=CUT, end_ns=end, limit=500)
    assert {r.price_source for r in page.rows if not r.invalid} == {"overrides"}
    reader.close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    history = conn.execute("SELECT SUM(c_input + c_cache_read + c_output), COUNT(*) FROM price_history").fetchone()
    assert history == (sum(sum(oracle.stored_rows([e], config)[0].costs) for e in affected), len(affected))
    runs = conn.execute("SELECT calls, new_total FROM reprices").fetchall()
    assert runs == [(len(affected), str(applied.new_total_pico))]
    conn.close()
    again = reprice(url, config, start, end, dry_run=False)  # idempotent: nothing left to change
    assert again.changed == 0


def test_prune_keeps_rollups_and_drops_old_raw_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    entries = [entry(i, T0 + i * (DAY_NS // 100)) for i in range(3000)]  # 30 days
    writer = open_writer(url, Config())
    writer.submit(entries).result(10)
    writer.close()
    config = Config(ledger=LedgerConfig(retention_days=10))
    deleted = prune(url, config, now_ns=T0 + 30 * DAY_NS)
    assert deleted == 2000
    _assert_hour_totals(tmp_path / "ledger.db")
    reader = open_reader(url, config)
    assert reader.totals(T0, FAR, {})[0].calls == 3000  # whole days: from the rollups
    assert len(reader.events({}, limit=1000).rows) == 1000
    assert reader.coverage().raw_since_ns == T0 + 1999 * (DAY_NS // 100) + 1
    reader.close()


def test_max_bytes_prunes_the_oldest_raw_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * 10**9, conversation=f"conversation-{i}") for i in range(20000)]).result(30)
    writer.close()
    config = Config(ledger=LedgerConfig(max_bytes=1024 * 1024))
    deleted = prune(url, config, now_ns=T0)
    conn = sqlite3.connect(tmp_path / "ledger.db")
    (pages,), (free,), (size,) = (conn.execute(f"PRAGMA {p}").fetchone() for p in ("page_count", "freelist_count",
                                                                                 "page_size"))
    newest = conn.execute("SELECT MAX(end_ns), MIN(end_ns), COUNT(*) FROM calls").fetchone()
    conn.close()
    assert (pages - free) * size <= 1024 * 1024 and 0 < deleted < 20000
    assert newest[0] == T0 + 19999 * 10**9 and newest[2] == 20000 - deleted and newest[1] > T0


def test_backup_and_forget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * HOUR_NS, user="alice" if i % 2 else "bob", customer="acme" if i % 3 else "zeta")
                   for i in range(48)]).result(10)
    writer.close()
    copy = backup(url, Config(), tmp_path / "copy.db")
    reader = open_reader(f"sqlite:///{copy}", Config())
    assert reader.totals(T0, FAR, {}) == open_reader(url, Config()).totals(T0, FAR, {})
    reader.close()
    before = open_reader(url, Config()).totals(T0 + 1, FAR, {})
    assert forget(url, Config(), user="alice") == 24
    assert forget(url, Config(), customer="zeta") == 16
    _assert_hour_totals(tmp_path / "ledger.db")
    reader = open_reader(url, Config())
    assert reader.totals(T0 + 1, FAR, {}) == before
    assert reader.totals(T0, FAR, {}) == reader.totals(T0, T0 + 48 * HOUR_NS + 1, {})
    assert reader.dimension_values("customer", T0, FAR, {}) == ["acme"]
    assert reader.dimension_values("user", T0, FAR, {}) == [oracle.value(oracle.stored_rows(
        [entry(0, T0, user="bob")], Config())[0], "user")]
    reader.close()
