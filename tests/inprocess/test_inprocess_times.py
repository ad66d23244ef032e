"""The in-process processor reads a span's times as the receiver does (docs/accuracy.md, "Times and
weights"): a span whose end time is no plausible instant is skipped and counted in
genai_meter_spans_rejected_total{reason} (there is no client to refuse it to), too old only with a ledger;
a duration or time to first token outside 0..1 day is unknown, never an overflow of the ledger's integers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from genai_meter import contract
from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.ledger_recorder import LedgerRecorder
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger import migrate, open_writer

DAY_NS = 86_400 * 10**9
ATTRIBUTES = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
              "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 10}


def ended(tracer: Any, start_ns: int, end_ns: int, **extra: Any) -> None:
    span = tracer.start_span("chat gpt-4o", attributes={**ATTRIBUTES, **extra}, start_time=start_ns)
    span.end(end_time=end_ns)


def sample(metrics: UsageMetrics, name: str) -> float:
    return sum(v for (n, _), v in metrics.samples().items() if n == name)


def rejected(metrics: UsageMetrics, reason: str) -> float:
    return metrics.get(contract.SELF_SPANS_REJECTED, reason=reason) or 0


def app() -> tuple[TracerProvider, Any, UsageMetrics]:
    """An SDK provider with the processor (no ledger), its tracer and the processor's metrics."""
    config = Config()
    metrics = UsageMetrics(config)
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(config, metrics=metrics))
    return provider, provider.get_tracer("app"), metrics


def test_implausible_end_times_are_skipped_and_counted() -> None:
    provider, tracer, metrics = app()
    now = time.time_ns()
    ended(tracer, now - 10**9, now)
    ended(tracer, 4_083_000_000 * 10**9 - 10**9, 4_083_000_000 * 10**9)  # 2099
    ended(tracer, 0, 2**63 + 1)
    ended(tracer, -10, -5)
    ended(tracer, 1, now - 500 * DAY_NS)  # old, but there is no ledger: counted
    provider.shutdown()
    assert sample(metrics, "llm_requests_total") == 2
    assert (rejected(metrics, "end_time_in_future"), rejected(metrics, "end_time_out_of_range")) == (1, 2)
    assert rejected(metrics, "too_old") == 0


def test_with_a_ledger_too_old_spans_are_skipped(tmp_path: Path) -> None:
    config = Config()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate(url, config)
    metrics = UsageMetrics(config)
    recorder = LedgerRecorder(open_writer(url, config), metrics)
    processor = CostSpanProcessor(config, metrics=metrics, recorders=[recorder])
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    now = time.time_ns()
    ended(tracer, now - 401 * DAY_NS - 10**9, now - 401 * DAY_NS)
    ended(tracer, now - 399 * DAY_NS - 10**9, now - 399 * DAY_NS)
    recorder.close()
    provider.shutdown()
    assert (sample(metrics, "llm_requests_total"), rejected(metrics, "too_old")) == (1, 1)


def test_durations_and_ttfts_out_of_range_are_unknown() -> None:
    provider, tracer, metrics = app()
    now = time.time_ns()
    ended(tracer, 0, now)  # a start of 0: 56 years
    ended(tracer, now + 10**9, now)  # a start after the end
    ended(tracer, now - 2 * 10**9, now, **{"gen_ai.response.time_to_first_chunk": 9.3e12})
    ended(tracer, now - 2 * 10**9, now, **{"gen_ai.response.time_to_first_chunk": 10**400})  # an int past a float
    ended(tracer, now - 2 * 10**9, now, **{"gen_ai.response.time_to_first_chunk": 0.5})
    provider.shutdown()
    assert sample(metrics, "llm_requests_total") == 5
    assert sample(metrics, "llm_request_duration_seconds_sum") == 6.0  # 0 + 0 + 3 x 2 s
    assert (sample(metrics, "llm_time_to_first_token_seconds_count"),
            sample(metrics, "llm_time_to_first_token_seconds_sum")) == (1, 0.5)
    assert metrics.get(contract.SELF_PROCESSING_ERRORS) in (None, 0)
