"""Re-pricing with a price that makes a stored call cost 2^63 * 10^-12 USD or more (the ledger's Int64)
keeps that call at its old cost and reports it; it neither crashes nor writes an out-of-range integer.
A new total of 2^63 - 1 is written exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from genai_meter.config import Config, PricingConfig
from genai_meter.ledger import open_writer, reprice
from genai_meter.ledger.model import Entry
from genai_meter.pricing import PriceBook
from tests.ledger.support import DAY_NS, T0, make_call

END = T0 + 10 * DAY_NS
OLD = "SELECT c_input, c_cache_read, c_cache_write, c_output, c_reasoning, c_request, list_cost FROM calls ORDER BY end_ns"


def _ledger(tmp: Path, n: int) -> tuple[str, list[tuple[int, ...]]]:
    url = f"sqlite:///{tmp / 'ledger.db'}"
    book = PriceBook.from_config(Config())
    writer = open_writer(url, Config())
    calls = [make_call(i, T0 + i * DAY_NS // 10, model=("gpt-4o", "gpt-4o-mini")[i % 2]) for i in range(n)]
    writer.submit([Entry(call, book.cost(call)) for call in calls]).result(10)
    writer.close()
    with sqlite3.connect(tmp / "ledger.db") as conn:
        return url, conn.execute(OLD).fetchall()


def _config(tmp: Path, text: str) -> Config:
    (tmp / "prices.yaml").write_text(text, encoding="utf-8")
    return Config(pricing=PricingConfig(overrides=tmp / "prices.yaml"))


def test_a_new_cost_beyond_the_ledger_keeps_the_old_one(tmp_path: Path) -> None:
    url, before = _ledger(tmp_path, 6)
    config = _config(tmp_path, "- provider: openai\n  model: gpt-4o\n  prices: {input_mtok: \"1000000000000000\", output_mtok: \"1\"}\n"
                               "- provider: openai\n  model: gpt-4o-mini\n  discount_percent: 50\n")
    dry = reprice(url, config, T0, END, dry_run=True)
    applied = reprice(url, config, T0, END, dry_run=False)
    for result in (dry, applied):
        assert (result.calls, result.changed, result.out_of_range) == (6, 3, 3)  # the gpt-4o-mini calls change
        assert result.by_model[("openai", "gpt-4o")][0] == result.by_model[("openai", "gpt-4o")][1]
        assert any("old cost" in line and line.endswith(": 3") for line in result.lines())
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        after = conn.execute(OLD).fetchall()
        assert conn.execute("SELECT COUNT(*) FROM price_history").fetchone() == (3,)
    assert after[0::2] == before[0::2]  # gpt-4o: as stored
    assert [sum(r[:6]) for r in after[1::2]] != [sum(r[:6]) for r in before[1::2]]


def test_a_new_total_at_the_edge(tmp_path: Path) -> None:
    for fee, kept in (("9223372.036854775807", False), ("9223372.036854775808", True)):
        (tmp_path / "ledger.db").unlink(missing_ok=True)
        url, before = _ledger(tmp_path, 1)
        config = _config(tmp_path, "- provider: openai\n  model: gpt-4o\n"
                                   f"  prices: {{input_mtok: \"0\", output_mtok: \"0\", per_request: \"{fee}\"}}\n")
        result = reprice(url, config, T0, END, dry_run=False)
        assert (result.changed, result.out_of_range) == ((0, 1) if kept else (1, 0))
        with sqlite3.connect(tmp_path / "ledger.db") as conn:
            after = conn.execute(OLD).fetchall()
        # kept: the old cost; else the fee alone, 2^63 - 1, and the catalog's list cost as before
        assert after == (before if kept else [(0, 0, 0, 0, 0, 2**63 - 1, before[0][6])])
