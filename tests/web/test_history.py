"""`synthetic_history`: deterministic, clearly synthetic, varied, seasonal, priced, and stored exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from genai_meter.money import to_pico
from genai_meter.reports.web.history import SYNTHETIC_ENVIRONMENT, synthetic_history
from tests.support.ledger_entries import store_entries
from tests.web.site import make_config

NOW_NS = int(datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()) * 10**9
DAY_NS = 86400 * 10**9


def test_history_is_deterministic_marked_and_varied() -> None:
    entries = synthetic_history(Config(), 30, NOW_NS, seed=3)
    again = synthetic_history(Config(), 30, NOW_NS, seed=3)
    assert [e.call for e in entries] == [e.call for e in again]
    assert [e.call.span_id for e in synthetic_history(Config(), 30, NOW_NS, seed=4)] != [e.call.span_id for e in entries]
    assert 4000 < len(entries) < 20000
    calls = [e.call for e in entries]
    assert all(c.environment == SYNTHETIC_ENVIRONMENT and c.service.startswith("synthetic-") for c in calls)
    assert all(NOW_NS - 30 * DAY_NS <= c.end_ns < NOW_NS for c in calls)
    assert [c.end_ns for c in calls] == sorted(c.end_ns for c in calls)
    assert all(e.cost is not None for e in entries), "every synthetic model is priced"
    assert len({c.dimensions["organization"] for c in calls}) == 3
    assert len({c.dimensions["customer"] for c in calls}) >= 5
    assert len({c.dimensions["feature"] for c in calls}) == 3 and len({c.user_id for c in calls}) >= 12
    assert len({c.model for c in calls}) >= 4 and {c.operation for c in calls} == {"chat", "embeddings"}
    turns = Counter(c.conversation_id for c in calls if c.conversation_id)
    assert len(turns) > 100 and max(turns.values()) >= 4 and min(turns.values()) >= 1
    by_weekday = Counter(datetime.fromtimestamp(c.end_ns / 1e9, UTC).weekday() for c in calls)
    assert by_weekday[5] + by_weekday[6] < 0.5 * (by_weekday[1] + by_weekday[2])  # quiet weekends
    first, last = calls[: len(calls) // 4], calls[-len(calls) // 4:]
    assert first[-1].end_ns - first[0].end_ns > last[-1].end_ns - last[0].end_ns  # growing: denser at the end
    errors = sum(c.status == "error" for c in calls) / len(calls)
    assert 0.005 < errors < 0.05
    assert synthetic_history(Config(), 0, NOW_NS) == []


def test_history_written_to_a_real_ledger_sums_exactly(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    entries = synthetic_history(config, 10, NOW_NS, seed=5)
    store_entries(config, entries)
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    try:
        totals = reader.totals(NOW_NS - 10 * DAY_NS, NOW_NS, {})[0]
        assert totals.calls == len(entries)
        assert totals.cost_total_pico == sum(to_pico(v) for e in entries if e.cost for v in e.cost.by_type.values())
        assert reader.dimension_values("organization", NOW_NS - 10 * DAY_NS, NOW_NS, {}) == ["acme", "globex",
                                                                                               "initech"]
    finally:
        reader.close()
