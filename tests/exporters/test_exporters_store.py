"""UsageMetrics: what one call counts, exactly (genai_meter.exporters.store)."""

from __future__ import annotations

import math
import threading
from datetime import date
from decimal import Decimal

import pytest

from genai_meter import __version__, contract
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.records import Cost, LLMCall, TokenCounts

END_NS = 1_795_449_600 * 10**9  # 2026-11-23T12:00:00Z
CLOCK = lambda: END_NS / 1e9  # noqa: E731

CONFIG = Config(dimensions={
    "customer": {"attributes": ["customer.id"], "max_values": 100},
    "feature": {"attributes": ["feature.id"]},
})
BASE = {"service_name": "checkout", "environment": "prod", "provider": "openai", "model": "gpt-4o",
        "operation": "chat"}  # histograms and errors; the usage counters add the service tier (USAGE)
USAGE = {**BASE, "service_tier": "default"}


def make_call(**kw: object) -> LLMCall:
    fields: dict = dict(service="checkout", environment="prod", provider="openai", model="gpt-4o",
                        operation="chat", status="ok", error_type="", duration_s=1.5, ttft_s=0.2,
                        tokens=TokenCounts(input=100, output=20), end_ns=END_NS,
                        dimensions={"customer": "acme", "feature": "search"})
    fields.update(kw)
    return LLMCall(**fields)


def make_cost(unit_prices: dict[str, str] | None = None, **by_type: str) -> Cost:
    return Cost(by_type={k: Decimal(v) for k, v in by_type.items()}, price_source="overrides",
                price_version="test", price_entry="openai/gpt-4o",
                unit_prices={k: Decimal(v) for k, v in (unit_prices or {}).items()})


def labels(**extra: str) -> dict[str, str]:
    return {**USAGE, "customer": "acme", "feature": "search", **extra}


@pytest.fixture
def store() -> UsageMetrics:
    return UsageMetrics(CONFIG, clock=CLOCK)


def test_one_call_counts_requests_tokens_cost_and_histograms(store: UsageMetrics) -> None:
    call = make_call(tokens=TokenCounts(input=100, cache_read=30, cache_write=7, output=20, reasoning=5))
    store.record_call(call, make_cost(input="0.00025", cache_read="0.0000375", cache_write="0.0000175",
                                      output="0.0002", reasoning="0.00005", request="0.0001"))

    assert store.get("llm_requests_total", **labels(status="ok")) == 1
    for token_type, count in call.tokens.as_dict().items():
        assert store.get("llm_tokens_total", **labels(token_type=token_type)) == count
    assert store.get_decimal("llm_cost_usd_total", **labels(cost_type="input")) == Decimal("0.00025")
    assert store.get_decimal("llm_cost_usd_total", **labels(cost_type="request")) == Decimal("0.0001")
    assert store.get("llm_request_duration_seconds_count", **BASE, status="ok") == 1
    assert store.get("llm_request_duration_seconds_sum", **BASE, status="ok") == 1.5
    assert store.get("llm_time_to_first_token_seconds_count", **BASE) == 1
    assert store.get(contract.SELF_SPANS_COUNTED) == 1
    assert store.get("llm_unpriced_requests_total", service_name="checkout", provider="openai",
                     model="gpt-4o") is None


def test_cost_is_exact_decimal_until_rendered(store: UsageMetrics) -> None:
    for _ in range(10):
        store.record_call(make_call(), make_cost(input="0.1"))
    exact = store.get_decimal("llm_cost_usd_total", **labels(cost_type="input"))
    assert exact == Decimal("1.0")
    assert sum([0.1] * 10) != 1.0  # what float accumulation would have exported
    assert store.get("llm_cost_usd_total", **labels(cost_type="input")) == 1.0
    assert b'cost_type="input"} 1.0\n' in store.render(False)


def test_only_nonzero_classes_create_series_and_series_stay(store: UsageMetrics) -> None:
    store.record_call(make_call(tokens=TokenCounts(input=10, reasoning=3)), make_cost(input="0.01"))
    assert store.get("llm_tokens_total", **labels(token_type="output")) is None
    assert store.get("llm_tokens_total", **labels(token_type="reasoning")) == 3
    assert store.get("llm_cost_usd_total", **labels(cost_type="output")) is None
    store.record_call(make_call(tokens=TokenCounts(input=5)), make_cost(input="0.005"))
    assert store.get("llm_tokens_total", **labels(token_type="reasoning")) == 3  # still exported
    assert store.get_decimal("llm_cost_usd_total", **labels(cost_type="input")) == Decimal("0.015")


def test_unpriced_call_counts_requests_and_tokens_but_no_cost(store: UsageMetrics) -> None:
    store.record_call(make_call(model="llama-local"), None)
    model = {**labels(), "model": "llama-local"}
    assert store.get("llm_unpriced_requests_total", service_name="checkout", provider="openai",
                     model="llama-local") == 1
    assert store.get("llm_requests_total", **model, status="ok") == 1
    assert store.get("llm_tokens_total", **model, token_type="input") == 100
    assert not [k for k in store.samples() if k[0] == "llm_cost_usd_total"]


def test_unmetered_reason_and_failed_status(store: UsageMetrics) -> None:
    store.record_call(make_call(tokens=TokenCounts(), unmetered="no_usage", status="error",
                                error_type="timeout"), make_cost())
    assert store.get("llm_unmetered_requests_total", service_name="checkout", provider="openai",
                     model="gpt-4o", reason="no_usage") == 1
    assert store.get("llm_requests_total", **labels(status="error")) == 1
    assert store.get("llm_request_duration_seconds_count", **BASE, status="error") == 1


def test_price_gauge_per_model_seen(store: UsageMetrics) -> None:
    store.record_call(make_call(), make_cost({"input": "2.50", "output": "10"}, input="0.00025"))
    store.record_call(make_call(model="gpt-4o-mini"), make_cost({"input": "0.15"}, input="0.000015"))
    price = "llm_price_usd_per_million_tokens"
    assert store.get_decimal(price, provider="openai", model="gpt-4o", token_type="input") == Decimal("2.50")
    assert store.get(price, provider="openai", model="gpt-4o", token_type="output") == 10.0
    assert store.get(price, provider="openai", model="gpt-4o-mini", token_type="input") == 0.15
    store.record_call(make_call(), make_cost({"input": "2.00", "output": "10"}, input="0.0002"))
    assert store.get(price, provider="openai", model="gpt-4o", token_type="input") == 2.0  # a gauge


def test_sample_weight_multiplies_counts_exactly(store: UsageMetrics) -> None:
    store.record_call(make_call(sample_weight=4.0), make_cost(input="0.3"))
    store.record_call(make_call(sample_weight=0.5), make_cost(input="0.3"))
    assert store.get("llm_requests_total", **labels(status="ok")) == 4.5
    assert store.get("llm_tokens_total", **labels(token_type="input")) == 450
    assert store.get_decimal("llm_cost_usd_total", **labels(cost_type="input")) == Decimal("1.35")
    # histograms describe the latency distribution of the calls seen: unweighted
    assert store.get("llm_request_duration_seconds_count", **BASE, status="ok") == 2
    assert store.get(contract.SELF_SPANS_COUNTED) == 2


def test_broken_weights_and_negative_counts_never_make_counters_go_down(store: UsageMetrics) -> None:
    store.record_call(make_call(sample_weight=math.nan), make_cost(input="0.1"))
    store.record_call(make_call(sample_weight=-2.0, tokens=TokenCounts(input=-50, output=20)),
                      make_cost(input="-0.1", output="0.01"))
    assert store.get("llm_requests_total", **labels(status="ok")) == 2
    assert store.get("llm_tokens_total", **labels(token_type="input")) == 100
    assert store.get("llm_tokens_total", **labels(token_type="output")) == 40
    assert store.get_decimal("llm_cost_usd_total", **labels(cost_type="input")) == Decimal("0.1")


def test_histogram_buckets_are_inclusive_and_bad_values_are_safe(store: UsageMetrics) -> None:
    for duration in (1.28, 1.2800001, 400.0, -3.0, math.nan):
        store.record_call(make_call(duration_s=duration, ttft_s=None), make_cost())
    bucket = "llm_request_duration_seconds_bucket"
    assert store.get(bucket, **BASE, status="ok", le="0.01") == 1  # -3 clamps to 0
    assert store.get(bucket, **BASE, status="ok", le="1.28") == 2  # le is inclusive
    assert store.get(bucket, **BASE, status="ok", le="2.56") == 3
    assert store.get(bucket, **BASE, status="ok", le="327.68") == 3
    assert store.get(bucket, **BASE, status="ok", le="+Inf") == 4  # NaN is not observed
    assert store.get("llm_request_duration_seconds_count", **BASE, status="ok") == 4
    assert store.get("llm_request_duration_seconds_sum", **BASE, status="ok") == 1.28 + 1.2800001 + 400.0
    assert store.get("llm_time_to_first_token_seconds_count", **BASE) is None
    assert store.get("llm_requests_total", **labels(status="ok")) == 5


def test_self_metrics(store: UsageMetrics) -> None:
    store.record_skip(contract.SKIP_NOT_LLM)
    store.record_skip(contract.SKIP_NOT_LLM)
    store.record_skip(contract.SKIP_AGGREGATE)
    store.record_self(contract.SELF_SPANS_RECEIVED, 512)
    store.record_self(contract.SELF_SPANS_REJECTED, reason="too_large")
    store.record_self(contract.SELF_PROCESSING_ERRORS)
    assert store.get(contract.SELF_SPANS_SKIPPED, reason="not_llm") == 2
    assert store.get(contract.SELF_SPANS_SKIPPED, reason="aggregate") == 1
    assert store.get(contract.SELF_SPANS_RECEIVED) == 512
    assert store.get(contract.SELF_SPANS_REJECTED, reason="too_large") == 1
    assert store.get(contract.SELF_PROCESSING_ERRORS) == 1
    # exported at zero from the start, so rate() and alerts work before the first event
    for name in (contract.SELF_SPANS_DUPLICATE, contract.SELF_SPANS_SAMPLED, contract.SELF_SPANS_FORWARDED):
        assert store.get(name) == 0
    assert store.get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 0
    assert store.get(contract.SELF_SERIES_OVERFLOW, metric="llm_cost_usd_total") == 0
    assert store.get(contract.SELF_BUILD_INFO, version=__version__) == 1


def test_record_self_rejects_unknown_names_and_labels(store: UsageMetrics) -> None:
    with pytest.raises(ValueError):
        store.record_self("genai_meter_made_up_total")
    with pytest.raises(ValueError):
        store.record_self(contract.SELF_SPANS_REJECTED)  # reason missing
    with pytest.raises(ValueError):
        store.record_self(contract.SELF_SPANS_RECEIVED, reason="x")
    with pytest.raises(ValueError):
        store.record_self(contract.SELF_BUILD_INFO, version="1")


def test_pricing_info_versions() -> None:
    store = UsageMetrics(CONFIG, catalog_version="0.2.3", overrides_version="2026-10-01",
                         catalog_date=date(2026, 12, 1))
    info, day = contract.SELF_PRICING_INFO, contract.SELF_PRICING_CATALOG_TIME
    assert store.get(info, catalog_version="0.2.3", overrides_version="2026-10-01", catalog_date="2026-12-01") == 1
    assert store.get(day) == 1_796_083_200  # 2026-12-01T00:00:00Z
    store.set_pricing_info("0.2.4", "2026-11-01", date(2026, 12, 7))
    assert store.get(info, catalog_version="0.2.4", overrides_version="2026-11-01", catalog_date="2026-12-07") == 1
    assert store.get(info, catalog_version="0.2.3", overrides_version="2026-10-01", catalog_date="2026-12-01") == 0
    assert store.get(day) == 1_796_083_200 + 6 * 86_400
    assert b"genai_meter_pricing_catalog_timestamp_seconds 1796601600" in store.render()
    assert UsageMetrics(CONFIG).get(info, catalog_version="unknown", overrides_version="none",
                                    catalog_date="unknown") == 1


def test_metric_prefix_from_config() -> None:
    store = UsageMetrics(Config(metric_prefix="acme_llm", dimensions={}))
    store.record_call(make_call(dimensions={}), make_cost(input="1"))
    assert store.get("acme_llm_requests_total", **USAGE, status="ok") == 1
    assert store.get_decimal("acme_llm_cost_usd_total", **USAGE, cost_type="input") == Decimal("1")
    assert b"\nllm_" not in store.render(False)


def test_concurrent_recording_and_rendering_is_exact(store: UsageMetrics) -> None:
    threads, per_thread = 8, 1500
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            store.render(True)

    def work(n: int) -> None:
        for i in range(per_thread):
            store.record_call(make_call(dimensions={"customer": f"c{(n * per_thread + i) % 50}"}),
                              make_cost(input="0.001", output="0.002"))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    scraper.join()
    total = threads * per_thread
    samples = store.samples()
    assert sum(v for (name, _), v in samples.items() if name == "llm_requests_total") == total
    assert sum(v for (name, _), v in samples.items() if name == "llm_tokens_total") == total * 120
    cost = store.family("llm_cost_usd_total")
    assert sum(cost.values, Decimal(0)) == Decimal("0.003") * total
