"""The shared pipeline on real span fixtures: what counts once, what is skipped, and exact totals.

Costs are computed here by hand from published gpt-4o prices: $2.50 per million input tokens,
$1.25 per million cached input tokens, $10.00 per million output tokens (reasoning included).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from tests.support.record_spans import load_fixture

M = Decimal(1_000_000)
CHAT_1 = (1000 * Decimal("2.50") + 150 * Decimal("10.00")) / M  # $0.004
CHAT_2 = (1000 * Decimal("2.50") + 1000 * Decimal("1.25") + 300 * Decimal("10.00")) / M  # $0.00675


def cost_sum(metrics: UsageMetrics) -> Decimal:
    """The exact sum of every cost series."""
    family = metrics.family("llm_cost_usd_total")
    return sum((Decimal(str(value)) if not isinstance(value, Decimal) else value
                for _labels, value in family.series()), Decimal(0))


def skipped(metrics: UsageMetrics, reason: str) -> float:
    return metrics.get("genai_meter_spans_skipped_total", reason=reason) or 0


def linked(child: str, parent: str, trace: bytes = b"t" * 16) -> tuple:
    """Two fixtures as child and parent spans of one trace."""
    parent_span = dataclasses.replace(load_fixture(parent), trace_id=trace, span_id=b"parent01", parent_span_id=b"")
    child_span = dataclasses.replace(load_fixture(child), trace_id=trace, span_id=b"child001",
                                     parent_span_id=b"parent01")
    return child_span, parent_span


def test_agent_over_two_chats_counts_each_chat_once() -> None:
    metrics = UsageMetrics(Config())
    meter = Meter(Config(), [metrics])
    for name in ("pydantic_ai/chat_1", "pydantic_ai/chat_2", "pydantic_ai/agent_run"):  # children end first
        meter.process(load_fixture(name))
    assert cost_sum(metrics) == CHAT_1 + CHAT_2 == Decimal("0.01075")
    requests = metrics.family("llm_requests_total")
    assert sum(value for _labels, value in requests.series()) == 2
    assert skipped(metrics, "aggregate") == 1


def test_llm_span_around_an_llm_span_counts_the_call_once() -> None:
    metrics = UsageMetrics(Config())
    meter = Meter(Config(), [metrics])
    inner, outer = linked("pydantic_ai/chat_2", "pydantic_ai/chat_2")
    assert meter.process(inner) is not None
    assert meter.process(outer) is None
    assert cost_sum(metrics) == CHAT_2
    assert skipped(metrics, "nested_llm") == 1
    # an unrelated LLM span with the same ids in another trace still counts
    other_inner, other_outer = linked("pydantic_ai/chat_1", "pydantic_ai/chat_1", trace=b"u" * 16)
    meter.process(other_outer)
    assert cost_sum(metrics) == CHAT_2 + CHAT_1


def test_meter_returns_the_call_and_its_exact_cost() -> None:
    meter = Meter(Config(), [UsageMetrics(Config())])
    call, cost = meter.process(load_fixture("pydantic_ai/chat_2"))
    assert (call.provider, call.model) == ("openai", "gpt-4o-2024-08-06")
    assert cost is not None and cost.total == CHAT_2
    assert cost.by_type["cache_read"] == 1000 * Decimal("1.25") / M


def test_a_failing_recorder_is_counted_and_does_not_stop_the_others() -> None:
    class Broken:
        def record_call(self, call, cost) -> None:
            raise RuntimeError("boom")

        def record_skip(self, reason: str) -> None:
            raise RuntimeError("boom")

        def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
            pass

    metrics = UsageMetrics(Config())
    meter = Meter(Config(), [metrics, Broken()])
    assert meter.process(load_fixture("pydantic_ai/chat_1")) is None  # never raises
    assert metrics.get("genai_meter_processing_errors_total") == 1
    meter.process(load_fixture("pydantic_ai/chat_2"))
    assert metrics.get("genai_meter_processing_errors_total") == 2


def test_failed_calls_count_by_error_type_without_dimensions() -> None:
    metrics = UsageMetrics(Config())
    meter = Meter(Config(), [metrics])
    for _ in range(2):
        meter.process(load_fixture("semconv/rate_limited"))
    meter.process(load_fixture("pydantic_ai/chat_1"))  # a successful call is not an error
    errors = metrics.family("llm_request_errors_total")
    assert errors.labelnames == ("service_name", "environment", "provider", "model", "operation", "error_type")
    assert [(labels["model"], labels["error_type"], value) for labels, value in errors.series()] == [
        ("gpt-4o-mini", "429", 2)]
    assert metrics.get("llm_requests_total", service_name="checkout-api", environment="prod", provider="openai",
                       model="gpt-4o-mini", operation="chat", service_tier="default", customer="", feature="", organization="",
                       project="proj-42",
                       status="error") == 2


def test_otel_metrics_path_exports_the_error_counter_too() -> None:
    from genai_meter.exporters.otel_metrics import instrument_specs

    assert "llm_request_errors_total" in {spec.name for spec in instrument_specs(Config())}
