"""The budget projection through `/api/v1/budgets`, over a real ledger, against figures worked out by hand.

The first case is the one tests/alert_rules/rules/forecast.test.yaml gives Prometheus (spend that
began five minutes ago, 100 % in fifteen more): both answer 36 times the limit at period end, so the
page, the API and the forecast alert project alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from genai_meter.ledger import open_reader
from genai_meter.records import LLMCall, TokenCounts
from genai_meter.reports.insights.budgets import state_of, status_text
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import auth, make_config, write_ledger

NS = 10**9
# 12:05 at +05:30 (06:35 UTC) on 2026-12-07
NOW = datetime(2026, 12, 7, 6, 35, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * NS
BUDGETS = [
    # silent until noon local, then 100,000 tokens a minute: 25 % at 12:05, 100 % at 12:20
    {"name": "burst", "match": {"feature": "burst"}, "period": "day", "utc_offset": "+05:30",
     "limit_tokens": 2000000, "thresholds": [25, 50, 75, 100]},
    # crossed at 00:30 local time on 2026-12-07, which is 2026-12-06 in UTC
    {"name": "early", "match": {"feature": "early"}, "period": "day", "utc_offset": "+12:00",
     "limit_tokens": 1000000},
    # a pattern match over services: its own chart, thresholds from its config
    {"name": "pattern", "match": {"service_name": "~pat-.*"}, "period": "month", "utc_offset": "+00:00",
     "limit_tokens": 150000, "thresholds": [25, 50, 75, 100]},
]


def call(i: int, end_ns: int, tokens: int, feature: str, service: str = "web") -> LLMCall:
    ident = hashlib.sha256(f"projection-{i}-{end_ns}".encode()).digest()
    return LLMCall(service=service, environment="prod", provider="openai", model="gpt-4o-mini", operation="chat",
                   status="ok", error_type="", duration_s=0.5, ttft_s=None, tokens=TokenCounts(input=tokens),
                   end_ns=end_ns, dimensions={"customer": "c-1", "feature": feature, "organization": "acme"},
                   request_model="gpt-4o-mini", trace_id=ident[:16], span_id=ident[16:24])


def calls() -> list[LLMCall]:
    noon = NOW_NS - 5 * 60 * NS
    out = [call(i, noon + 6 * i * NS, 10000, "burst") for i in range(50)]  # 12:00:00 .. 12:04:54
    local_midnight = int(datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()) * NS  # 00:00 at +12:00
    out += [call(100 + i, local_midnight + (10 + i) * 60 * NS, 100000, "early") for i in range(30)]  # 00:10..00:39
    out += [call(200 + i, NOW_NS - (i + 1) * 3600 * NS, 1000, "other", f"pat-{i % 3}") for i in range(40)]
    return out


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    tmp: Path = tmp_path_factory.mktemp("projection")
    config = make_config(tmp, {"budgets": BUDGETS})
    write_ledger(config, calls())
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    yield create_app(config, reader, clock=lambda: NOW_NS).test_client()
    reader.close()


def budgets(client: FlaskClient) -> dict[str, dict]:
    return {b["name"]: b for b in client.get("/api/v1/budgets", headers=auth()).get_json()["budgets"]}


def test_spend_that_began_minutes_ago_projects_at_its_own_pace(client: FlaskClient) -> None:
    burst = budgets(client)["burst"]
    assert burst["spent"] == "500000" and burst["percent"] == "25.00" and burst["now"] == "2026-12-07T12:05:00+05:30"
    projection = burst["projection"]
    assert projection["method"] == "run_rate" and projection["rate_span_s"] == 300  # the 5 minutes it took
    assert projection["rate_per_hour"] == "6000000"
    # 500,000 + 500,000 / 300 s x 42,900 s left = 72,000,000 tokens: 36 x the limit, as Prometheus says
    assert Decimal(projection["end"]["likely"]) == 36 * 2000000
    assert projection["state"] == "will_exceed"
    assert projection["crossing"]["likely"] == "2026-12-07T12:20:00+05:30"  # named in the budget's offset
    assert projection["crossing"]["aggressive"] == "2026-12-07T12:20:00+05:30"
    # the other end of the range: the period's average rate (500,000 tokens in 12 h 05 min)
    assert Decimal(projection["end"]["conservative"]) < Decimal(projection["end"]["likely"])
    assert burst["crossing_day"] == "2026-12-07" and burst["crossed_at"] is None
    assert burst["state"] == "info" and burst["status"] == "past 25 % (info); next: 50 %"
    assert burst["threshold_passed"] == 25 and burst["next_threshold"] == 50


def test_a_crossed_budget_names_the_minute_in_its_own_offset(client: FlaskClient) -> None:
    early = budgets(client)["early"]
    assert early["period_label"] == "2026-12-07" and early["state"] == "exceeded"
    # cumulative 100,000 a minute from 00:10: the tenth call (00:19) reaches 1,000,000
    assert early["crossed_at"] == "2026-12-07T00:19:00+12:00"
    assert early["crossing_day"] == "2026-12-07"  # not the UTC date 2026-12-06
    assert early["projection"]["state"] == "exceeded" and early["projection"]["crossing"]["likely"] is None
    assert early["status"].startswith("exceeded")


def test_a_pattern_budget_has_its_chart_and_its_own_thresholds(client: FlaskClient) -> None:
    pattern = budgets(client)["pattern"]
    assert pattern["spent"] == "40000" and pattern["thresholds"] == [25, 50, 75, 100]
    assert pattern["state"] == "info" and pattern["status"] == "past 25 % (info); next: 50 %"
    chart = pattern["chart"]
    assert chart["step"] == "1d" and chart["actual"][0] == ["2026-12-01T00:00:00Z", "0"]
    assert chart["actual"][-1] == ["2026-12-07T06:35:00Z", "40000"]  # the exact spend, now
    assert chart["projection"][0][0] == "2026-12-07T06:35:00Z" and chart["projection"][-1][0] == "2027-01-01T00:00:00Z"
    lows, likelies, highs = zip(*[(Decimal(a), Decimal(b), Decimal(c)) for _, a, b, c in chart["projection"]])
    assert all(lo <= li <= hi for lo, li, hi in zip(lows, likelies, highs))
    assert list(likelies) == sorted(likelies)  # cumulative: never down


def test_states_follow_the_order_of_the_budgets_thresholds() -> None:
    """The same severities as the alert rules: the first threshold below 100 % info, then warning, critical."""
    assert state_of(Decimal("26.7"), [25, 50, 75, 100]) == ("info", "info")
    assert state_of(Decimal("55"), [25, 50, 75, 100]) == ("warning", "warning")
    assert state_of(Decimal("65"), [60, 70, 80, 90, 100, 120]) == ("info", "info")
    assert state_of(Decimal("85"), [60, 70, 80, 90, 100, 120]) == ("critical", "critical")
    assert state_of(Decimal("101"), [60, 70, 80, 90, 100, 120]) == ("exceeded", "critical")
    assert status_text(Decimal("10"), [25, 50, 75, 100]) == "within budget: below the first threshold (25 %)"
    assert status_text(Decimal("101"), [60, 100, 120]) == "exceeded: past 100 %; next threshold 120 %"


def test_history_blends_into_the_projection(tmp_path: Path) -> None:
    """With 20 whole days of steady spend the daily forecast weighs half; with none, the run rate alone."""
    config = make_config(tmp_path, {"budgets": [{"name": "steady", "period": "month", "limit_tokens": 10**9}]})
    start = NOW_NS - 20 * 86400 * NS
    write_ledger(config, [call(i, start + i * 1800 * NS, 1000, "steady") for i in range(20 * 48)])
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    try:
        body = create_app(config, reader, clock=lambda: NOW_NS).test_client().get("/api/v1/budgets/steady", headers=auth()).get_json()
    finally:
        reader.close()
    projection = body["projection"]
    assert projection["method"] == "run_rate+history" and projection["history_days"] == 20
    assert projection["history_weight"] == "0.50" and "daily forecast" in projection["method_text"]
    # 48,000 tokens a day, steady: both parts agree on about 48,000 a day for the 24.7 days left
    left_days = Decimal((int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()) * NS - NOW_NS) / 86400 / NS)
    expected = Decimal(body["spent"]) + 48000 * left_days
    assert abs(Decimal(projection["end"]["likely"]) - expected) / expected < Decimal("0.02")


def test_local_times_use_the_budget_offset() -> None:
    from genai_meter.reports.insights.budgets import local_iso, offset_text

    assert offset_text(timedelta(hours=-5, minutes=-30)) == "-05:30"
    assert local_iso(NOW_NS, timedelta(hours=12)) == "2026-12-07T18:35:00+12:00"
