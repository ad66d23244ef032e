"""Budget counters: raw-value matching, calendar periods of the call's end time, rollover."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from genai_meter.config import Config
from genai_meter.contract import OVERFLOW
from genai_meter.exporters import UsageMetrics
from genai_meter.periods import period_of
from genai_meter.records import Cost, LLMCall, TokenCounts

SPEND = "llm_budget_spend_usd_total"
TOKENS = "llm_budget_tokens_total"


def ns(text: str) -> int:
    """Unix ns of an ISO timestamp (UTC unless it says otherwise)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 10**9


class Clock:
    def __init__(self, text: str) -> None:
        self.now = ns(text) / 1e9

    def set(self, text: str) -> None:
        self.now = ns(text) / 1e9

    def __call__(self) -> float:
        return self.now


def make_call(end: str, customer: str = "acme", **kw: object) -> LLMCall:
    fields: dict = dict(service="checkout", environment="prod", provider="openai", model="gpt-4o",
                        operation="chat", status="ok", error_type="", duration_s=1.0, ttft_s=None,
                        tokens=TokenCounts(input=100, cache_read=20, output=30), end_ns=ns(end),
                        dimensions={"customer": customer})
    fields.update(kw)
    return LLMCall(**fields)


def cost(usd: str) -> Cost:
    return Cost(by_type={"input": Decimal(usd)}, price_source="overrides", price_version="t", price_entry="e")


def periods(store: UsageMetrics, budget: str) -> dict[str, float]:
    return {dict(k)["period"]: v for (n, k), v in store.samples().items() if n == SPEND and dict(k)["budget"] == budget}


@pytest.mark.parametrize(("kind", "offset", "moment", "label"), [
    ("day", "+00:00", "2026-11-23T00:00:00", "2026-11-23"),
    ("day", "+00:00", "2026-11-22T23:59:59", "2026-11-22"),
    ("day", "-05:00", "2026-11-23T04:59:59", "2026-11-22"),
    ("day", "+09:00", "2026-11-22T15:00:00", "2026-11-23"),
    ("week", "+00:00", "2026-11-23T00:00:00", "2026-W48"),  # a Monday
    ("week", "+00:00", "2026-11-22T23:59:59", "2026-W47"),
    ("week", "-05:00", "2026-11-23T03:00:00", "2026-W47"),  # still Sunday in New York
    ("week", "+00:00", "2027-01-01T12:00:00", "2026-W53"),  # ISO year differs from calendar year
    ("month", "+00:00", "2026-12-01T00:00:00", "2026-12"),
    ("month", "-05:00", "2026-12-01T03:00:00", "2026-11"),
    ("month", "+02:00", "2026-11-30T22:30:00", "2026-12"),
    ("month", "+00:00", "2026-12-31T23:59:59", "2026-12"),
])
def test_period_labels(kind: str, offset: str, moment: str, label: str) -> None:
    sign = -1 if offset[0] == "-" else 1
    delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:]))
    period = period_of(kind, delta, ns(moment))  # type: ignore[arg-type]
    assert period.label == label
    assert period.start_ns <= ns(moment) < period.end_ns


def test_period_bounds_are_local_midnights() -> None:
    week = period_of("week", timedelta(hours=-5), ns("2026-11-25T12:00:00"))
    assert week.start_ns == ns("2026-11-23T05:00:00") and week.end_ns == ns("2026-11-30T05:00:00")
    month = period_of("month", timedelta(0), ns("2028-02-10T00:00:00"))
    assert (month.end_ns - month.start_ns) // 10**9 == 29 * 86400  # leap February
    assert date(2027, 1, 1).isocalendar()[:2] == (2026, 53)


def test_budgets_match_raw_values_before_overflow_and_hashing() -> None:
    config = Config(
        dimensions={"customer": {"attributes": ["customer.id"], "max_values": 1},
                    "user": {"attributes": ["enduser.id"], "hash": True}},
        budgets=[
            {"name": "org", "limit_usd": "5000"},
            {"name": "acme", "match": {"customer": "acme"}, "limit_usd": "500"},
            {"name": "eu", "match": {"customer": "~acme-(eu|de)"}, "limit_usd": "100"},
            {"name": "alice", "match": {"user": "alice@example.com"}, "period": "day", "limit_tokens": 10_000},
            {"name": "gpt", "match": {"model": "~gpt-4o.*", "environment": "prod"}, "limit_tokens": 1_000_000},
        ])
    store = UsageMetrics(config, clock=Clock("2026-11-23T12:00:00"))
    calls = [("other", "0.5"), ("acme", "1.25"), ("acme-eu", "0.125"), ("xacme-eu", "2"), ("acme", "0.0625")]
    for customer, usd in calls:
        store.record_call(make_call("2026-11-23T11:00:00", customer,
                                    dimensions={"customer": customer, "user": "alice@example.com"}), cost(usd))
    # "other" took the only customer slot: acme is __overflow__ on the usage metrics ...
    customers = {dict(k)["customer"] for (n, k) in store.samples() if n == "llm_requests_total"}
    assert customers == {"other", OVERFLOW}
    # ... but its budget still counts it, exactly
    assert store.get_decimal(SPEND, budget="acme", period="2026-11") == Decimal("1.3125")
    assert store.get_decimal(SPEND, budget="eu", period="2026-11") == Decimal("0.125")  # full match only
    assert store.get_decimal(SPEND, budget="org", period="2026-11") == Decimal("3.9375")
    assert store.get(TOKENS, budget="alice", period="2026-11-23") == 5 * 150  # hashed label, raw match
    assert store.get(TOKENS, budget="gpt", period="2026-11") == 5 * 150
    assert store.get("llm_budget_limit", budget="acme", unit="usd") == 500
    assert store.get_decimal("llm_budget_limit", budget="acme", unit="usd") == Decimal("500")
    assert store.get("llm_budget_limit", budget="alice", unit="tokens") == 10_000


def test_unpriced_and_weighted_calls() -> None:
    config = Config(budgets=[{"name": "org", "limit_usd": "10"}])
    store = UsageMetrics(config, clock=Clock("2026-11-23T12:00:00"))
    store.record_call(make_call("2026-11-23T11:00:00"), None)
    store.record_call(make_call("2026-11-23T11:00:00", sample_weight=2.0), cost("0.1"))
    assert store.get_decimal(SPEND, budget="org", period="2026-11") == Decimal("0.2")
    assert store.get(TOKENS, budget="org", period="2026-11") == 150 + 300


def test_day_rollover_keeps_previous_period_during_grace_only() -> None:
    clock = Clock("2026-11-23T23:50:00")
    config = Config(budgets=[{"name": "daily", "period": "day", "limit_usd": "10"}])
    store = UsageMetrics(config, clock=clock, budget_grace_s=600)
    assert periods(store, "daily") == {"2026-11-23": 0}  # exported at zero before any call
    store.record_call(make_call("2026-11-23T23:49:00"), cost("1.5"))
    # a call whose clock runs slightly ahead lands in the next period, exported at once
    store.record_call(make_call("2026-11-24T00:00:02"), cost("0.25"))
    assert periods(store, "daily") == {"2026-11-23": 1.5, "2026-11-24": 0.25}
    clock.set("2026-11-24T00:05:00")
    store.record_call(make_call("2026-11-23T23:59:59"), cost("0.5"))  # late, within the grace
    assert periods(store, "daily") == {"2026-11-23": 2.0, "2026-11-24": 0.25}
    clock.set("2026-11-24T00:10:01")
    assert periods(store, "daily") == {"2026-11-24": 0.25}
    store.record_call(make_call("2026-11-23T23:59:59"), cost("0.5"))  # too late for the budget
    assert periods(store, "daily") == {"2026-11-24": 0.25}
    assert store.budget_dropped == 1
    # it still counts in the usage metrics
    assert sum(store.family("llm_cost_usd_total").values, Decimal(0)) == Decimal("2.75")


def test_week_and_month_rollover_with_offset() -> None:
    clock = Clock("2026-11-30T20:00:00")  # Monday 2026-11-30 15:00 in New York
    config = Config(budgets=[
        {"name": "weekly", "period": "week", "utc_offset": "-05:00", "limit_usd": "100"},
        {"name": "monthly", "period": "month", "utc_offset": "-05:00", "limit_usd": "100"},
    ])
    store = UsageMetrics(config, clock=clock, budget_grace_s=60)
    store.record_call(make_call("2026-11-30T20:00:00"), cost("1"))
    assert periods(store, "weekly") == {"2026-W49": 1}
    assert periods(store, "monthly") == {"2026-11": 1}
    clock.set("2026-12-01T05:00:30")  # 00:00:30 on 1 December in New York
    store.record_call(make_call("2026-12-01T05:00:10"), cost("2"))
    assert periods(store, "monthly") == {"2026-11": 1, "2026-12": 2}
    assert periods(store, "weekly") == {"2026-W49": 3}
    clock.set("2026-12-01T05:01:01")
    assert periods(store, "monthly") == {"2026-12": 2}


def test_calls_far_from_now_do_not_count_against_budgets() -> None:
    config = Config(budgets=[{"name": "org", "limit_usd": "10"}])
    store = UsageMetrics(config, clock=Clock("2026-11-23T12:00:00"))
    store.record_call(make_call("2026-09-01T00:00:00"), cost("1"))
    store.record_call(make_call("2027-03-01T00:00:00"), cost("1"))
    assert periods(store, "org") == {"2026-11": 0}
    assert store.budget_dropped == 2


def test_missing_end_time_counts_now() -> None:
    config = Config(budgets=[{"name": "org", "limit_usd": "10"}])
    store = UsageMetrics(config, clock=Clock("2026-11-23T12:00:00"))
    call = make_call("2026-11-23T12:00:00")
    call.end_ns = 0
    store.record_call(call, cost("1"))
    assert periods(store, "org") == {"2026-11": 1}
