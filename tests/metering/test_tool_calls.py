"""Tool spans carry no tokens and no cost: they are skipped as `non_inference` and counted by tool
name on llm_tool_calls_total, on both paths (in-process and received), with a cap on tool names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from genai_meter.collector_processor.metering import Meter
from genai_meter.config import Config, LimitsConfig
from genai_meter.exporters import UsageMetrics
from tests.support.otlp import make_request, make_span, post_traces, scrape, start_serve, total, write_config
from tests.support.record_spans import load_fixture

TOOL_FIXTURES = ("semconv/execute_tool", "pydantic_ai/tool", "adk/execute_tool", "openinference/tool")


def tool_series(metrics: UsageMetrics) -> dict[tuple[str, str], float]:
    family = metrics.family("llm_tool_calls_total")
    return {(labels["tool_name"], labels["status"]): value for labels, value in family.series()}


@pytest.mark.parametrize("fixture", TOOL_FIXTURES)
def test_tool_spans_of_every_source_count_by_tool_name(fixture: str) -> None:
    metrics = UsageMetrics(Config())
    meter = Meter(Config(), [metrics])
    span = load_fixture(fixture)
    assert meter.process(span) is None  # not an LLM call: no tokens, no cost
    series = tool_series(metrics)
    assert len(series) == 1 and list(series.values()) == [1]
    (name, status), = series
    assert name and name != "__overflow__"
    assert status in ("ok", "error")
    assert metrics.get("genai_meter_spans_skipped_total", reason="non_inference") == 1
    assert metrics.get("llm_requests_total") is None


def test_tool_names_past_the_cap_fold_and_totals_stay_exact() -> None:
    config = Config(limits=LimitsConfig(max_tool_names=2))
    metrics = UsageMetrics(config)
    meter = Meter(config, [metrics])
    base = load_fixture("semconv/execute_tool")
    for i, name in enumerate(["search", "search", "fetch", "calc", "sql", "search"]):
        attributes = {**base.attributes, "gen_ai.tool.name": name}
        meter.process(dataclasses.replace(base, attributes=attributes, span_id=bytes([i]) * 8))
    series = tool_series(metrics)
    assert series == {("search", "ok"): 3, ("fetch", "ok"): 1, ("__overflow__", "ok"): 2}


@pytest.mark.slow
def test_received_tool_spans_are_counted_once(tmp_path: Path) -> None:
    serve = start_serve(write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0}}))
    try:
        spans = [make_span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search"})
                 for _ in range(3)]
        request = make_request(spans)
        assert post_traces(serve.http, request).status == 200
        assert post_traces(serve.http, request).status == 200  # a retry: duplicates, counted once
        samples = scrape(serve.metrics)
        assert total(samples, "llm_tool_calls_total", tool_name="web_search") == 3
        assert total(samples, "llm_requests_total") == 0
    finally:
        assert serve.stop() == 0
