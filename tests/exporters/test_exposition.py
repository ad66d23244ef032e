"""Exposition: classic text 0.0.4 and OpenMetrics 1.0.0, negotiation, the prometheus_client bridge.

Every body is parsed back by prometheus_client's parsers (and promtool) and compared with the
store's own values.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import time
import tracemalloc
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_om
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic

from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics, content_type, negotiate
from genai_meter.records import Cost, LLMCall, TokenCounts

END_NS = 1_795_449_600 * 10**9  # 2026-11-23T12:00:00Z
PROMETHEUS_2_42_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                          "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
CONFIG = Config(
    dimensions={"customer": {"attributes": ["customer.id"], "max_values": 3},
                "feature": {"attributes": ["feature.id"]}},
    budgets=[{"name": "org", "limit_usd": "5000"},
             {"name": "acme", "match": {"customer": "acme"}, "period": "day", "limit_tokens": 2_000_000}],
)


def make_call(i: int) -> LLMCall:
    return LLMCall(
        service="checkout", environment="prod" if i % 3 else "", provider=["openai", "anthropic"][i % 2],
        model=["gpt-4o", "claude-sonnet-4"][i % 2], operation="chat", status="error" if i % 7 == 0 else "ok",
        error_type="", duration_s=0.05 * i, ttft_s=0.01 * i if i % 2 else None,
        tokens=TokenCounts(input=100 + i, cache_read=i % 4 * 10, output=20 + i, reasoning=i % 5),
        end_ns=END_NS, dimensions={"customer": ["acme", 'we"ird\\cust\nomer', "globex", "initech", "umbrella"][i % 5],
                                   "feature": "search"},
        unmetered="cache_unknown" if i % 11 == 0 else "", sample_weight=1.5 if i % 13 == 0 else 1.0)


def make_cost(i: int) -> Cost | None:
    if i % 6 == 5:
        return None
    return Cost(by_type={"input": Decimal("0.0000025") * (100 + i), "output": Decimal("0.00001") * (20 + i),
                         "request": Decimal("0.0001")},
                price_source="overrides", price_version="t", price_entry="e",
                unit_prices={"input": Decimal("2.5"), "output": Decimal("10")})


@pytest.fixture(scope="module")
def store() -> UsageMetrics:
    store = UsageMetrics(CONFIG, clock=lambda: END_NS / 1e9, catalog_version="0.2.3")
    for i in range(60):
        store.record_call(make_call(i), make_cost(i))
    store.record_skip("not_llm")
    store.record_self("genai_meter_spans_rejected_total", reason='bad "body"')
    return store


def parsed_samples(families: object) -> dict:
    out = {}
    for family in families:  # type: ignore[attr-defined]
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = float(sample.value)
    return out


def test_classic_text_parses_back_to_the_store_values(store: UsageMetrics) -> None:
    body = store.render(openmetrics=False).decode()
    assert parsed_samples(parse_classic(body)) == store.samples()
    assert "# TYPE llm_requests_total counter\n" in body
    assert "# TYPE llm_request_duration_seconds histogram\n" in body
    assert "# UNIT" not in body and "# EOF" not in body


def test_openmetrics_parses_back_to_the_store_values(store: UsageMetrics) -> None:
    body = store.render(openmetrics=True).decode()
    families = list(parse_openmetrics(body))
    assert parsed_samples(families) == store.samples()
    assert body.endswith("\n# EOF\n")
    assert "# TYPE llm_requests counter\n" in body and "\nllm_requests_total{" in body
    assert "# UNIT llm_cost_usd usd\n" in body
    assert "# UNIT llm_request_duration_seconds seconds\n" in body
    types = {f.name: f.type for f in families}
    assert types["llm_cost_usd"] == "counter" and types["llm_price_usd_per_million_tokens"] == "gauge"
    assert types["llm_time_to_first_token_seconds"] == "histogram"


def test_no_created_series(store: UsageMetrics) -> None:
    for openmetrics in (False, True):
        assert b"_created" not in store.render(openmetrics)


def test_every_contract_family_is_exposed(store: UsageMetrics) -> None:
    names = {f.name for f in parse_classic(store.render(False).decode())}
    n = store.contract.names
    for full in (n.requests, n.tokens, n.cost, n.budget_spend, n.budget_tokens, n.unpriced, n.unmetered):
        assert full.removesuffix("_total") in names
    assert {n.duration, n.ttft, n.price, n.budget_limit} <= names


def test_label_values_are_escaped_and_round_trip(store: UsageMetrics) -> None:
    body = store.render(False).decode()
    assert 'customer="we\\"ird\\\\cust\\nomer"' in body
    customers = {s.labels.get("customer") for f in parse_openmetrics(store.render(True).decode())
                 for s in f.samples}
    assert 'we"ird\\cust\nomer' in customers
    reasons = {s.labels.get("reason") for f in parse_classic(body) for s in f.samples}
    assert 'bad "body"' in reasons


def test_unencodable_text_never_breaks_a_scrape() -> None:
    store = UsageMetrics(CONFIG)
    call = make_call(1)
    call.model = "bad-\ud800-model"  # a lone surrogate, as a broken SDK string could carry
    store.record_call(call, make_cost(1))
    for openmetrics in (False, True):
        body = store.render(openmetrics).decode("utf-8")
        assert "bad-?-model" in body


def test_negotiate() -> None:
    assert negotiate(PROMETHEUS_2_42_ACCEPT) is True
    assert negotiate("application/openmetrics-text; version=1.0.0; charset=utf-8") is True
    assert negotiate("application/openmetrics-text") is True
    assert negotiate("text/plain;version=0.0.4") is False
    assert negotiate("*/*") is False
    assert negotiate("") is False and negotiate(None) is False
    assert negotiate("application/openmetrics-text;q=0") is False
    assert negotiate("application/openmetrics-text;version=2.0.0") is False
    assert negotiate("text/plain;q=1,application/openmetrics-text;q=0.5") is False
    assert negotiate("application/openmetrics-text;q=bogus") is False


def test_content_type() -> None:
    assert content_type(False) == "text/plain; version=0.0.4; charset=utf-8"
    assert content_type(True) == "application/openmetrics-text; version=1.0.0; charset=utf-8"


def test_promtool_accepts_the_classic_text(store: UsageMetrics) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    result = subprocess.run([promtool, "check", "metrics"], input=store.render(False),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_prometheus_client_bridge_in_a_real_registry(store: UsageMetrics) -> None:
    registry = CollectorRegistry()
    registry.register(store.as_collector())
    classic = generate_latest(registry).decode()
    assert parsed_samples(parse_classic(classic)) == store.samples()
    openmetrics = generate_latest_om(registry).decode()
    assert parsed_samples(parse_openmetrics(openmetrics)) == store.samples()
    assert "_created" not in classic and "_created" not in openmetrics
    with pytest.raises(ValueError):  # describe() lets the registry catch name clashes
        registry.register(store.as_collector())


def test_empty_store_renders_valid_bodies() -> None:
    store = UsageMetrics(Config())
    assert parsed_samples(parse_openmetrics(store.render(True).decode())) == store.samples()
    assert parsed_samples(parse_classic(store.render(False).decode())) == store.samples()


def test_render_100k_series_perf_sanity(capsys: pytest.CaptureFixture[str]) -> None:
    """Performance figures (printed, not asserted): 100k series render time and memory."""
    n_calls = 10_000  # each creates 10 series: 1 request, 5 token, 4 cost
    config = Config(dimensions={"customer": {"attributes": ["c"], "max_values": n_calls}},
                    limits={"max_series_per_metric": 100_000})
    cost = Cost(by_type={"input": Decimal("0.00025"), "output": Decimal("0.0002"),
                         "cache_read": Decimal("0.0000063"), "cache_write": Decimal("0.00001")},
                price_source="o", price_version="t", price_entry="e")
    calls = [LLMCall(service="checkout-service", environment="production", provider="openai",
                     model="gpt-4o-2024-08-06", operation="chat", status="ok", error_type="", duration_s=1.2,
                     ttft_s=None, tokens=TokenCounts(input=100, cache_read=5, cache_write=3, output=20, reasoning=7),
                     end_ns=END_NS, dimensions={"customer": f"customer-{i:06d}"}) for i in range(n_calls)]
    gc.collect()
    tracemalloc.start()
    store = UsageMetrics(config)
    before = tracemalloc.get_traced_memory()[0]
    for call in calls:
        store.record_call(call, cost)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    series = sum(len(t) for t in store._usage_tables)
    timings = {}
    for openmetrics in (False, True):
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            body = store.render(openmetrics)
            runs.append(time.perf_counter() - start)
        timings[openmetrics] = (min(runs) * 1e3, sorted(runs)[2] * 1e3, len(body))
    start = time.perf_counter()
    for call in calls:
        store.record_call(call, cost)
    record_us = (time.perf_counter() - start) / n_calls * 1e6
    with capsys.disabled():
        print(f"\n[perf] {series} series, {used / series:.0f} B/series (tracemalloc, incl. label caches); "
              f"render classic best {timings[False][0]:.0f} ms / median {timings[False][1]:.0f} ms, "
              f"OpenMetrics best {timings[True][0]:.0f} ms / median {timings[True][1]:.0f} ms, "
              f"{timings[True][2] / 1e6:.1f} MB; record_call on existing series {record_us:.1f} us")
    assert series >= 100_000  # + the one duration histogram series
