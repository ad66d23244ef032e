"""Bounded labels: dimension caps, allowlists, hashing, length cap, per-metric series cap."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.contract import OVERFLOW
from genai_meter.exporters import UsageMetrics
from genai_meter.records import Cost, LLMCall, TokenCounts

END_NS = 1_795_449_600 * 10**9


def make_call(customer: str | None = None, model: str = "gpt-4o", **kw: object) -> LLMCall:
    dims = {} if customer is None else {"customer": customer}
    fields: dict = dict(service="checkout", environment="prod", provider="openai", model=model,
                        operation="chat", status="ok", error_type="", duration_s=1.0, ttft_s=None,
                        tokens=TokenCounts(input=10, output=2), end_ns=END_NS, dimensions=dims)
    fields.update(kw)
    return LLMCall(**fields)


COST = Cost(by_type={"input": Decimal("0.001"), "output": Decimal("0.0002")}, price_source="overrides",
            price_version="t", price_entry="e")


def config(**customer: object) -> Config:
    return Config(dimensions={"customer": {"attributes": ["customer.id"], **customer}})


def totals(store: UsageMetrics, name: str) -> float:
    return sum(v for (n, _), v in store.samples().items() if n == name)


def values_of(store: UsageMetrics, name: str, label: str) -> list[str]:
    return sorted(dict(k)[label] for (n, k) in store.samples() if n == name)


def test_dimension_cap_folds_new_values_and_keeps_totals_exact() -> None:
    store = UsageMetrics(config(max_values=3))
    for customer in ["a", "b", "c", "d", "e", "a", "d"]:
        store.record_call(make_call(customer), COST)
    assert values_of(store, "llm_requests_total", "customer") == [OVERFLOW, "a", "b", "c"]
    get = store.get
    common = dict(service_name="checkout", environment="prod", provider="openai", model="gpt-4o",
                  operation="chat", service_tier="default", status="ok")
    assert get("llm_requests_total", **common, customer=OVERFLOW) == 3
    assert get("llm_requests_total", **common, customer="a") == 2
    assert get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 3
    assert totals(store, "llm_requests_total") == 7
    assert totals(store, "llm_tokens_total") == 7 * 12
    cost = store.family("llm_cost_usd_total")
    assert sum(cost.values, Decimal(0)) == Decimal("0.0012") * 7


def test_allowlisted_values_are_kept_and_do_not_consume_the_cap() -> None:
    store = UsageMetrics(config(max_values=2, allow=["acme", "globex"]))
    for customer in ["acme", "a", "globex", "b", "c", "acme"]:
        store.record_call(make_call(customer), COST)
    assert values_of(store, "llm_requests_total", "customer") == [OVERFLOW, "a", "acme", "b", "globex"]
    assert store.get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 1


def test_absent_dimension_exports_empty_value_without_using_the_cap() -> None:
    store = UsageMetrics(config(max_values=1))
    store.record_call(make_call(None), COST)
    store.record_call(make_call(""), COST)
    store.record_call(make_call("a"), COST)
    assert values_of(store, "llm_requests_total", "customer") == ["", "a"]
    assert store.get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 0


def test_hashed_dimension_exports_sha256_prefix_and_caps_hashed_values() -> None:
    store = UsageMetrics(config(hash=True, max_values=2))
    for user in ["alice@example.com", "alice@example.com", "bob@example.com", "carol@example.com"]:
        store.record_call(make_call(user), COST)
    expected = [hashlib.sha256(v.encode()).hexdigest()[:16] for v in ("alice@example.com", "bob@example.com")]
    assert values_of(store, "llm_requests_total", "customer") == sorted([OVERFLOW, *expected])
    assert b"example.com" not in store.render(False)
    assert store.get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 1


def test_long_values_are_cut_and_cut_values_share_one_slot() -> None:
    cfg = Config(dimensions={"customer": {"attributes": ["customer.id"], "max_values": 2}},
                 limits={"max_label_value_length": 8})
    store = UsageMetrics(cfg)
    for customer in ["customer-0001", "customer-0002", "short", "other"]:
        store.record_call(make_call(customer, model="a-very-long-model-name"), COST)
    # "customer-0001" and "-0002" are both "customer" once cut: one value, one slot
    assert values_of(store, "llm_requests_total", "customer") == [OVERFLOW, "customer", "short"]
    assert values_of(store, "llm_requests_total", "model") == ["a-very-l"] * 3
    assert totals(store, "llm_requests_total") == 4


def test_dimension_memory_is_bounded() -> None:
    store = UsageMetrics(config(max_values=5))
    for i in range(5000):
        store.record_call(make_call(f"customer-{i}"), COST)
    dim = store._resolver.dimensions[0]
    assert dim.distinct == 5 and len(dim._known) <= 5
    assert len(store.requests) == 6
    assert totals(store, "llm_requests_total") == 5000


def test_series_cap_folds_dimensions_then_everything_with_exact_totals() -> None:
    cap = 10
    store = UsageMetrics(Config(dimensions={"customer": {"attributes": ["c"], "max_values": 10_000}},
                                limits={"max_series_per_metric": cap}))
    n_calls = 0
    # 10 customers fill the cap of llm_requests_total (one series each)
    for i in range(cap):
        store.record_call(make_call(f"c{i}"), COST)
        n_calls += 1
    assert len(store.requests) == cap
    # new customers of the same model fold into customer="__overflow__", model kept
    for i in range(cap, cap + 5):
        store.record_call(make_call(f"c{i}"), COST)
        n_calls += 1
    assert store.get("llm_requests_total", service_name="checkout", environment="prod", provider="openai",
                     model="gpt-4o", operation="chat", service_tier="default", customer=OVERFLOW, status="ok") == 5
    # each new model takes one folded series, up to a tenth of the cap (at least 10) ...
    for m in range(10):
        store.record_call(make_call(f"x{m}", model=f"model-{m}"), COST)
        n_calls += 1
    assert store.get("llm_requests_total", service_name="checkout", environment="prod", provider="openai",
                     model="model-3", operation="chat", service_tier="default", customer=OVERFLOW, status="ok") == 1
    # ... then the catch-all: every call label __overflow__, the class label (status) kept
    for m in range(10, 40):
        store.record_call(make_call(f"y{m}", model=f"model-{m}", status="error"), COST)
        n_calls += 1
    catch_all = dict.fromkeys(store.contract.call_labels, OVERFLOW)
    assert store.get("llm_requests_total", **catch_all, status="error") == 30
    assert len(store.requests) <= cap + store.requests.reserve + 2
    assert totals(store, "llm_requests_total") == n_calls
    assert totals(store, "llm_tokens_total") == n_calls * 12
    assert sum(store.family("llm_cost_usd_total").values, Decimal(0)) == Decimal("0.0012") * n_calls
    # every update that was folded is counted (requests: 5 + 10 + 30)
    assert store.get(contract.SELF_SERIES_OVERFLOW, metric="llm_requests_total") == 45
    # repeated calls to a folded label set keep landing in the same series
    store.record_call(make_call("y39", model="model-39", status="error"), COST)
    assert store.get("llm_requests_total", **catch_all, status="error") == 31


def test_histograms_and_gauges_past_the_series_cap() -> None:
    store = UsageMetrics(Config(dimensions={}, limits={"max_series_per_metric": 10}))
    for m in range(25):
        cost = Cost(by_type={"input": Decimal("0.001")}, price_source="o", price_version="t", price_entry="e",
                    unit_prices={"input": Decimal(m)})
        store.record_call(make_call(model=f"m{m}", ttft_s=0.1), cost)
    # histograms have no dimensions: past the cap straight into the catch-all (status kept)
    overflow = dict.fromkeys(store.contract.ttft_labels, OVERFLOW)
    assert store.get("llm_request_duration_seconds_count", **overflow, status="ok") == 15
    assert store.get("llm_time_to_first_token_seconds_count", **overflow) == 15
    assert totals(store, "llm_request_duration_seconds_count") == 25
    # a price cannot be folded: new gauge series are dropped past the cap, and counted
    assert len(store.price) == 10
    assert store.get(contract.SELF_SERIES_OVERFLOW, metric="llm_price_usd_per_million_tokens") == 15


def test_label_escaping_in_cached_label_strings() -> None:
    store = UsageMetrics(config())
    store.record_call(make_call('a"b\\c\nd'), COST)
    body = store.render(False).decode()
    assert 'customer="a\\"b\\\\c\\nd"' in body
