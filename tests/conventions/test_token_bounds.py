"""Implausible token counts make a call invalid: flagged, never priced, counted only in a self-metric
(issue 8, items 3 and 4). Real conventions, prices and metrics store; no mocks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from genai_meter import contract
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.conventions.values import count_value, first_int
from genai_meter.exporters import UsageMetrics
from genai_meter.records import LLMCall, SpanRecord, TokenCounts

INVALID = "token_count_out_of_range"


def span(**usage: Any) -> SpanRecord:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                  "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o",
                  "customer.id": "acme", **usage}
    end = time.time_ns()
    return SpanRecord(name="chat gpt-4o", attributes=attributes,
                      resource={"service.name": "checkout", "deployment.environment.name": "prod"},
                      scope_name="opentelemetry.instrumentation.openai_v2", start_ns=end - 10**9, end_ns=end,
                      trace_id=b"t" * 16, span_id=(time.perf_counter_ns() % 2**63).to_bytes(8, "big"))


def classify(config: Config, **usage: Any) -> LLMCall:
    call = Conventions(config).classify(span(**usage))
    assert isinstance(call, LLMCall), call
    return call


@pytest.mark.parametrize("bad", [2**63 - 1, -5, 100_000_001, "²", "٣", "1" * 4301, "-3", "+3", "1e9", float("nan"),
                                 -1.0, 1e300, "12 345"])
def test_an_implausible_count_makes_the_call_invalid(bad: object) -> None:
    call = classify(Config(), **{"gen_ai.usage.input_tokens": bad, "gen_ai.usage.output_tokens": 200})
    assert call.invalid == INVALID
    assert call.tokens == TokenCounts()  # nothing of an untrusted call adds to any total


@pytest.mark.parametrize("key", ["gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
                                 "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.total_tokens"])
def test_every_count_is_checked(key: str) -> None:
    usage = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200, key: 2**63 - 1}
    assert classify(Config(), **usage).invalid == INVALID


def test_plausible_counts_stay_valid_and_the_ceiling_is_configurable() -> None:
    call = classify(Config(), **{"gen_ai.usage.input_tokens": " 1200 ", "gen_ai.usage.output_tokens": 300.0})
    assert call.invalid == "" and (call.tokens.input, call.tokens.output) == (1200, 300)
    assert Config().limits.max_tokens_per_call == 100_000_000
    small = Config.model_validate({"limits": {"max_tokens_per_call": 5000}})
    assert classify(small, **{"gen_ai.usage.input_tokens": 5000}).invalid == ""
    assert classify(small, **{"gen_ai.usage.input_tokens": 5001}).invalid == INVALID


def test_count_parsing_is_strict_and_never_raises() -> None:
    assert count_value("42") == 42 and count_value(7) == 7 and count_value(3.0) == 3
    assert count_value("") is None and count_value(True) is None and count_value(None) is None
    for bad in ("²", "1" * 4301, "0x10", "4.5", "-1", float("inf")):
        number = count_value(bad)
        assert number is not None and number < 0, bad
    # a good count under any alternate key wins over a bad one
    assert first_int({"a": "²", "b": 9}, ("a", "b")) == 9
    assert first_int({"a": "²"}, ("a", "b")) == -1


def test_a_2_63_count_adds_nothing_to_costs_or_budgets_and_is_counted_invalid() -> None:
    config = Config.model_validate({"budgets": [{"name": "all", "period": "day", "limit_usd": "10"}]})
    metrics = UsageMetrics(config)
    meter = Meter(config, [metrics])
    good = meter.process(span(**{"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200}))
    assert good is not None and good[1] is not None
    cost_before = metrics.samples()
    for bad in (2**63 - 1, "²", "1" * 4301):
        outcome = meter.process(span(**{"gen_ai.usage.input_tokens": bad, "gen_ai.usage.output_tokens": 200}))
        assert outcome is not None, bad  # returned for the ledger: flagged, no cost
        call, cost = outcome
        assert call.invalid == INVALID and cost is None
    after = metrics.samples()
    for (name, labels), value in after.items():
        if name.startswith(("llm_", "genai_meter_budget")) and "rejected" not in name:
            assert cost_before.get((name, labels)) == value, name  # no cost, token, request or budget moved
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason=INVALID) == 3
    assert metrics.get(contract.SELF_PROCESSING_ERRORS) in (None, 0)
