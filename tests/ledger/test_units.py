"""Billed units, the service tier and the batch flag in the SQLite ledger: stored per call, rolled up,
read back exactly from raw calls, hourly and daily rollups alike; migrated, pruned, forgotten, re-priced."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import Entry, forget, open_reader, prune, sqlite_writer
from genai_meter.ledger.rows import cost_pico
from genai_meter.ledger.sqlite_schema import LATEST, schema_version
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.ledger.units import UnitSums, unit_class
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, ledger_config, seal_until, write_acknowledged

FAR = T0 + 400 * DAY_NS
TIERS = ["", "default", "flex", "priority"]
UNITS = ["input_audio_tokens", "output_audio_tokens", "output_image_tokens", "web_searches", "custom.pages"]


@pytest.fixture(autouse=True)
def writer_seals_before_t0(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread's own seal passes stop 30 days before T0: the tests move W themselves."""
    monkeypatch.setattr(sqlite_writer, "SEAL_GRACE_S", time.time() - (T0 - 30 * DAY_NS) / 10**9)


def unit_entries(seed: int, n: int, start: int = T0, span: int = 10 * DAY_NS, first: int = 0) -> list[Entry]:
    rnd = random.Random(seed)
    out = []
    for i in range(first, first + n):
        e = entry(i, start + rnd.randrange(span), f"0.{rnd.randrange(10**12):012d}",
                  model=rnd.choice(["gpt-4o", "gpt-audio"]), customer=rnd.choice(["", "acme", "zeta"]),
                  conversation=rnd.choice(["", "c1", "c2"]))
        call, cost = e.call, e.cost
        assert cost is not None
        call.service_tier = rnd.choice(TIERS)
        call.batch = rnd.random() < 0.2
        if rnd.random() < 0.6:
            names = rnd.sample(UNITS, rnd.randrange(1, 4))
            call.units = {name: rnd.randrange(1, 5000) for name in names}
            cost.unit_pico = {name: rnd.randrange(10**9) for name in names if name != "custom.pages"}
            if "custom.pages" in names:
                cost.unpriced_units = ("custom.pages",)
        if call.service_tier == "priority" and rnd.random() < 0.5:
            cost.unpriced_units = ("tier:priority", *cost.unpriced_units)
        if rnd.random() < 0.1:
            call.estimate = "audio split assumed from totals"
        out.append(e)
    return out


def expected(entries: list[Entry], key: str = "") -> dict[str, tuple[int, int, UnitSums]]:
    """Per value of `key` (service_tier, batch or nothing): (calls, total cost, unit sums), from the entries."""
    out: dict[str, tuple[int, int, UnitSums]] = {}
    for e in entries:
        call, cost = e.call, e.cost
        assert cost is not None
        value = {"service_tier": call.service_tier, "batch": "true" if call.batch else "", "": ""}[key]
        calls, total, sums = out.get(value, (0, 0, UnitSums()))
        for name, quantity in call.units.items():
            sums.add(name, quantity, cost.unit_pico.get(name, 0))
        if cost.unpriced_units:
            sums.add("flag:partial", 1, 0)
            for reason in cost.unpriced_units:
                sums.add(f"flag:unpriced:{reason}", 1, 0)
        if call.estimate:
            sums.add(f"flag:estimate:{call.estimate}", 1, 0)
        out[value] = (calls + 1, total + sum(cost_pico(cost)) + sum(cost.unit_pico.values()), sums)
    return out


def _check(url: str, entries: list[Entry]) -> None:
    reader = open_reader(url, Config())
    try:
        [total] = reader.totals(T0 - DAY_NS, FAR, {})
        [(calls, cost, units)] = expected(entries).values()
        assert (total.calls, total.cost_total_pico, total.units) == (calls, cost, units)
        for key in ("service_tier", "batch"):
            want = expected(entries, key)
            got = {t.key[0]: (t.calls, t.cost_total_pico, t.units) for t in reader.totals(T0 - DAY_NS, FAR, {}, [key])}
            assert got == want
        flex = [e for e in entries if e.call.service_tier == "flex" and e.call.batch]
        [t] = reader.totals(T0 - DAY_NS, FAR, {"service_tier": ["flex"], "batch": ["true"]})
        assert (t.calls, t.cost_total_pico, t.units) == next(iter(expected(flex).values()))
        days = reader.series(T0 - DAY_NS, FAR, "1d", {})[()]
        assert sum(p.totals.cost_total_pico for p in days) == cost
        assert sum(p.totals.units.quantity.get("web_searches", 0) for p in days) == units.quantity["web_searches"]
    finally:
        reader.close()


def test_units_tier_and_batch_read_back_exactly_from_raw_calls_and_rollups(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    entries = unit_entries(1, 1500)
    write_acknowledged(path, entries)
    _check(url, entries)  # raw calls only
    seal_until(path, T0 + 4 * DAY_NS + HOUR_NS // 3)  # days, hours, a partial hour and raw calls
    _check(url, entries)
    late = unit_entries(2, 300, first=10_000)  # all before W: added to the rollups by their batches
    write_acknowledged(path, late)
    _check(url, entries + late)
    seal_until(path, FAR)
    _check(url, entries + late)


def test_a_calls_units_tier_and_flags_in_the_feed_and_conversations(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    e = entry(1, T0 + 5, "0.001", conversation="c9")
    e.call.service_tier, e.call.batch, e.call.estimate = "flex", True, "audio split assumed"
    e.call.units = {"input_audio_tokens": 3000, "custom.pages": 2}
    assert e.cost is not None
    e.cost.unit_pico = {"input_audio_tokens": 120_000_000_000}
    e.cost.unpriced_units = ("custom.pages",)
    write_acknowledged(path, [e, entry(2, T0 + 9, "0.002", conversation="c9")])
    reader = open_reader(url, Config())
    [plain, row] = reader.events({}).rows
    assert (row.service_tier, row.batch, row.dimensions) == ("flex", True, {})
    assert row.units.quantity == {"custom.pages": 2, "input_audio_tokens": 3000}
    assert row.units.cost_pico == {"custom.pages": 0, "input_audio_tokens": 120_000_000_000}
    assert (row.units.partial, row.units.unpriced, row.units.estimates) == (1, {"custom.pages": 1},
                                                                            {"audio split assumed": 1})
    assert row.cost_total_pico == 1_000_000_000 + 1_500_000 + 120_000_000_000
    assert (plain.service_tier, plain.batch, plain.units) == ("", False, UnitSums())
    [conv] = reader.conversations(T0, FAR, {})[0]
    assert conv.cost_pico == row.cost_total_pico + plain.cost_total_pico
    assert [r.units.quantity for r in reader.conversation("c9", {})] == [row.units.quantity, {}]
    assert unit_class("input_audio_tokens") == "audio" and unit_class("web_searches") == "per_call"
    reader.close()


def test_a_version_6_ledger_migrates_with_its_history_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    plain = [entry(i, T0 + i * HOUR_NS // 7, f"0.{i:012d}", customer=["acme", ""][i % 2]) for i in range(1, 400)]
    write_acknowledged(path, plain)
    seal_until(path, T0 + 2 * DAY_NS)
    reader = open_reader(url, Config())
    before = (reader.totals(T0, FAR, {}, ["customer"]), reader.series(T0, T0 + 100 * DAY_NS, "1h", {}), reader.events({}).rows)
    reader.close()
    conn = sqlite3.connect(path, isolation_level=None)  # the file as version 6 left it
    for table in ("units", "call_units", "rollup_unit_hour", "rollup_unit_day", "price_history_units",
                  "provider_reports", "provider_lines", "late_calls"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM schema_version WHERE version >= 7")
    history = conn.execute("SELECT * FROM rollup_day ORDER BY 1, 2").fetchall()
    assert schema_version(conn) == 6
    conn.close()
    writer = SQLiteWriter(path, Config())  # migrates
    writer.close()
    conn = sqlite3.connect(path)
    assert schema_version(conn) == LATEST
    assert conn.execute("SELECT * FROM rollup_day ORDER BY 1, 2").fetchall() == history
    conn.close()
    reader = open_reader(url, Config())
    after = (reader.totals(T0, FAR, {}, ["customer"]), reader.series(T0, T0 + 100 * DAY_NS, "1h", {}), reader.events({}).rows)
    assert after == before
    reader.close()
    more = unit_entries(3, 200, start=T0 + 3 * DAY_NS, span=DAY_NS, first=5000)
    write_acknowledged(path, more)
    reader = open_reader(url, Config())
    [t] = reader.totals(T0 + 3 * DAY_NS, FAR, {})
    assert t.cost_total_pico == next(iter(expected(more).values()))[1]
    reader.close()


def test_prune_and_forget_keep_the_unit_rollups_exact(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    now = T0 + 40 * DAY_NS
    entries = unit_entries(4, 600)
    write_acknowledged(path, entries)
    assert prune(url, ledger_config(retention_days=35, dedup_horizon_hours=0), now_ns=now) > 100  # days 0..4
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM call_units WHERE end_ns < ?", (T0 + 5 * DAY_NS,)).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM call_units").fetchone()[0] > 100
    conn.close()
    _check(url, entries)  # the pruned calls' units are in the rollups
    customers = {e.call.dimensions.get("customer", "") for e in entries}
    assert "acme" in customers
    config = Config()
    forget(url, config, customer="acme")
    _check(url, entries)
    reader = open_reader(url, config)
    assert "acme" not in {t.key[0] for t in reader.totals(T0, FAR, {}, ["customer"])}
    reader.close()


def test_repricing_prices_the_units_again_in_the_calls_tier_and_corrects_the_rollups(tmp_path: Path) -> None:
    from genai_meter.ledger import reprice
    from genai_meter.pricing import PriceBook

    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    entries = []
    for i in range(1, 200):
        e = entry(i, T0 + i * HOUR_NS // 5, "0.000001", model="gpt-audio", provider="openai",
                  tokens=(100, 0, 0, 50, 0))
        e.call.units = {"input_audio_tokens": 3000 + i, "output_audio_tokens": 1000, **({"custom.x": 2} if i % 3 else {})}
        e.call.service_tier = "priority" if i % 2 else ""
        assert e.cost is not None
        e.cost.unit_pico = {"input_audio_tokens": 1, "output_audio_tokens": 1}  # a wrong price, repaired below
        entries.append(e)
    write_acknowledged(path, entries)
    seal_until(path, T0 + 2 * DAY_NS)  # half the calls rolled up
    book = PriceBook.from_config(Config())
    result = reprice(url, Config(), T0, FAR, dry_run=False, book=book)
    assert result.changed == 199
    want = 0
    partial = 0
    for e in entries:
        cost = book.cost(e.call)
        assert cost is not None and cost.unit_pico["input_audio_tokens"] > 10**9
        want += sum(cost_pico(cost)) + sum(cost.unit_pico.values())
        partial += bool(cost.unpriced_units)
    assert result.new_total_pico == want
    reader = open_reader(url, Config())
    for start, end in ((T0, FAR), (T0 + DAY_NS, T0 + 3 * DAY_NS)):
        [t] = reader.totals(start, end, {})
        part = [e for e in entries if start <= e.call.end_ns < end]
        assert t.cost_total_pico == sum(sum(cost_pico(c)) + sum(c.unit_pico.values())
                                        for c in map(book.cost, (e.call for e in part)) if c is not None)
    [t] = reader.totals(T0, FAR, {})
    assert t.units.partial == partial and t.units.unpriced["custom.x"] == sum(1 for i in range(1, 200) if i % 3)
    reasons = [r for e in entries for r in book.cost(e.call).unpriced_units]  # type: ignore[union-attr]
    assert t.units.unpriced == {r: reasons.count(r) for r in set(reasons)}
    reader.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT SUM(cost) FROM price_history_units").fetchone() == (398,)  # the old unit costs
    conn.close()
    again = reprice(url, Config(), T0, FAR, dry_run=False, book=book)
    assert (again.changed, again.old_total_pico, again.new_total_pico) == (0, want, want)
