"""conventions: real span fixtures of every source -> exact LLMCall fields or skip reasons."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_meter import contract
from genai_meter.config import Config, parse_config
from genai_meter.conventions import (
    MARKER_KEYS,
    Conventions,
    is_candidate,
    normalize_operation,
    normalize_provider,
)
from genai_meter.records import LLMCall, SpanRecord
from tests.support.fake_openai import FakeOpenAI
from tests.support.record_spans import (
    INSTRUMENTATIONS,
    OPTIONAL_SCENARIOS,
    fixture_names,
    load_fixture,
    read_fixture,
    record_live,
    recorded_name,
    span_record_from_dict,
)

AGG, NON, NOT_LLM = contract.SKIP_AGGREGATE, contract.SKIP_NON_INFERENCE, contract.SKIP_NOT_LLM
CACHE_UNKNOWN, NO_USAGE = contract.UNMETERED_CACHE_UNKNOWN, contract.UNMETERED_NO_USAGE


@dataclass(frozen=True)
class Expect:
    """The fields one fixture must classify to. tokens: (input, cache_read, cache_write, output, reasoning)."""

    source: str
    provider: str
    model: str
    operation: str
    tokens: tuple[int, int, int, int, int]
    status: str = contract.STATUS_OK
    unmetered: str = ""
    cache_write_1h: bool = False
    units: tuple[tuple[str, int], ...] = ()  # LLMCall.units, sorted
    service_tier: str = ""
    batch: bool = False


EXPECTED: dict[str, Expect | str] = {
    # --- recorded from the real instrumentations (tests/support/record_spans.py) ---
    # openai-v2 reports no cache or reasoning tokens at all: cost is an upper bound.
    "recorded/openai_v2.chat": Expect("otel_contrib", "openai", "gpt-4o", "chat", (10000, 0, 0, 2000, 0),
                                      unmetered=CACHE_UNKNOWN, service_tier="default"),
    "recorded/openai_v2.chat_stream": Expect("otel_contrib", "openai", "gpt-4o", "chat", (10000, 0, 0, 2000, 0),
                                             unmetered=CACHE_UNKNOWN, service_tier="default"),
    "recorded/openai_v2.embeddings": Expect("otel_contrib", "openai", "text-embedding-3-small", "embeddings",
                                            (10000, 0, 0, 0, 0)),
    "recorded/openai_v2.chat_error": Expect("otel_contrib", "openai", "gpt-4o-fails", "chat", (0, 0, 0, 0, 0),
                                            status="error"),
    # OpenLLMetry: cache-inclusive input, reasoning a part of output (absent on the streaming span).
    "recorded/openllmetry.chat": Expect("openllmetry", "openai", "gpt-4o", "chat", (6000, 4000, 0, 1500, 500),
                                        service_tier="default"),
    "recorded/openllmetry.chat_stream": Expect("openllmetry", "openai", "gpt-4o", "chat", (6000, 4000, 0, 2000, 0)),
    "recorded/openllmetry.embeddings": Expect("openllmetry", "openai", "text-embedding-3-small", "embeddings",
                                              (10000, 0, 0, 0, 0)),
    "recorded/openllmetry.chat_error": Expect("openllmetry", "openai", "gpt-4o-fails", "chat", (0, 0, 0, 0, 0),
                                              status="error"),
    # OpenInference: the same arithmetic under llm.token_count.*
    "recorded/openinference.chat": Expect("openinference", "openai", "gpt-4o", "chat", (6000, 4000, 0, 1500, 500)),
    "recorded/openinference.chat_stream": Expect("openinference", "openai", "gpt-4o", "chat",
                                                 (6000, 4000, 0, 1500, 500)),
    "recorded/openinference.embeddings": Expect("openinference", "openai", "text-embedding-3-small", "embeddings",
                                                (10000, 0, 0, 0, 0)),
    "recorded/openinference.chat_error": Expect("openinference", "openai", "gpt-4o-fails", "chat", (0, 0, 0, 0, 0),
                                                status="error"),
    # Service tiers: the response value (openai-v2 and OpenLLMetry record both), else the request's
    # (OpenInference's invocation parameters); OpenAI answers "default" when none was asked for.
    "recorded/openai_v2.chat_flex": Expect("otel_contrib", "openai", "gpt-5-mini", "chat", (10000, 0, 0, 2000, 0),
                                           unmetered=CACHE_UNKNOWN, service_tier="flex"),
    "recorded/openai_v2.chat_priority": Expect("otel_contrib", "openai", "gpt-4o", "chat", (10000, 0, 0, 2000, 0),
                                               unmetered=CACHE_UNKNOWN, service_tier="priority"),
    "recorded/openllmetry.chat_flex": Expect("openllmetry", "openai", "gpt-5-mini", "chat",
                                             (6000, 4000, 0, 1500, 500), service_tier="flex"),
    "recorded/openllmetry.chat_priority": Expect("openllmetry", "openai", "gpt-4o", "chat",
                                                 (6000, 4000, 0, 1500, 500), service_tier="priority"),
    "recorded/openinference.chat_flex": Expect("openinference", "openai", "gpt-5-mini", "chat",
                                               (6000, 4000, 0, 1500, 500), service_tier="flex"),
    "recorded/openinference.chat_priority": Expect("openinference", "openai", "gpt-4o", "chat",
                                                   (6000, 4000, 0, 1500, 500), service_tier="priority"),
    # Audio: OpenInference reports OpenAI's audio token details (parts of prompt and completion: text input
    # = 10000 - 4000 cached - 3000 audio, text output = 2000 - 500 reasoning - 1000 audio); openai-v2 and
    # OpenLLMetry report totals only (the meter marks their cost an estimate).
    "recorded/openinference.chat_audio": Expect("openinference", "openai", "gpt-audio", "chat",
                                                (3000, 4000, 0, 500, 500),
                                                units=(("input_audio_tokens", 3000), ("output_audio_tokens", 1000))),
    "recorded/openai_v2.chat_audio": Expect("otel_contrib", "openai", "gpt-audio", "chat", (10000, 0, 0, 2000, 0),
                                            unmetered=CACHE_UNKNOWN, service_tier="default"),
    "recorded/openllmetry.chat_audio": Expect("openllmetry", "openai", "gpt-audio", "chat",
                                              (6000, 4000, 0, 1500, 500), service_tier="default"),
    # Image generation (OpenInference only): images by size and quality, a custom unit
    "recorded/openinference.images": Expect("openinference", "openai", "dall-e-3", "image_generation",
                                            (0, 0, 0, 0, 0), units=(("custom.image_1024x1024_hd", 2),)),
    # --- semconv, current and older ---
    "semconv/anthropic_current": Expect("semconv", "anthropic", "claude-sonnet-4-5-20250929", "chat",
                                        (3000, 8000, 1000, 600, 300)),
    "semconv/legacy_prompt_tokens": Expect("semconv", "azure.ai.openai", "gpt-4-0613", "chat", (500, 0, 0, 120, 0)),
    "semconv/cache_exceeds_input": Expect("semconv", "anthropic", "claude-3-5-haiku", "chat", (0, 50, 0, 20, 0)),
    "semconv/rate_limited": Expect("semconv", "openai", "gpt-4o-mini", "chat", (0, 0, 0, 0, 0), status="error"),
    "semconv/no_usage": Expect("semconv", "vllm", "llama-3.1-8b", "text_completion", (0, 0, 0, 0, 0),
                               unmetered=NO_USAGE),
    "semconv/invoke_agent": AGG,
    "semconv/execute_tool": NON,
    "semconv/retrieval": NON,
    # --- OpenLLMetry, current and legacy keys ---
    "openllmetry/anthropic_legacy_cache_write": Expect("openllmetry", "anthropic", "claude-3-5-sonnet-20241022",
                                                       "chat", (1500, 3000, 2000, 800, 0)),
    # no OpenLLMetry key (its scope prefix is shared with the contrib packages): read by its gen_ai.* keys alone
    "openllmetry/anthropic_current": Expect("semconv", "anthropic", "claude-sonnet-4-5-20250929", "chat",
                                            (1500, 3000, 2000, 800, 0)),
    "openllmetry/openai_legacy_completion": Expect("openllmetry", "openai", "gpt-3.5-turbo-instruct",
                                                   "text_completion", (40, 0, 0, 16, 0)),
    "openllmetry/cohere_rerank": Expect("openllmetry", "cohere", "rerank-english-v3.0", "rerank", (0, 0, 0, 0, 0),
                                        unmetered=NO_USAGE),
    "openllmetry/workflow": AGG,
    # --- OpenInference ---
    "openinference/anthropic_cache": Expect("openinference", "anthropic", "claude-3-5-sonnet-20241022", "chat",
                                            (1500, 3000, 2000, 800, 0)),
    "openinference/vertex_gemini": Expect("openinference", "gcp.vertex_ai", "gemini-2.5-pro", "chat",
                                          (2000, 0, 0, 300, 600)),
    "openinference/chain": AGG,
    "openinference/agent": AGG,
    "openinference/tool": NON,
    "openinference/retriever": NON,
    "openinference/reranker": NON,
    # --- Vercel AI SDK 4 / 5 / 6 ---
    "vercel/v4_generate_text": AGG,
    "vercel/v4_do_generate_openai": Expect("vercel", "openai", "gpt-4o-2024-08-06", "chat",
                                           (6000, 4000, 0, 1500, 500)),
    "vercel/v4_do_stream_anthropic": Expect("vercel", "anthropic", "claude-3-5-sonnet-20241022", "chat",
                                            (1500, 3000, 2000, 800, 0)),
    "vercel/v4_do_generate_no_metadata": Expect("vercel", "openai", "gpt-4o-mini", "chat", (300, 0, 0, 50, 0),
                                                unmetered=CACHE_UNKNOWN),
    "vercel/v5_do_generate_openai": Expect("vercel", "openai", "gpt-5-2025-08-07", "chat",
                                           (6000, 4000, 0, 1500, 500)),
    # Anthropic's raw usage: every cache write for 1 hour (a unit of its own, 1-hour rate), served at standard
    "vercel/v5_do_stream_anthropic_1h": Expect("vercel", "anthropic", "claude-sonnet-4-5", "chat",
                                               (1500, 3000, 0, 800, 0), units=(("cache_write_1h_tokens", 2000),)),
    "vercel/v5_do_generate_google": Expect("vercel", "gcp.gemini", "gemini-2.5-flash", "chat", (600, 400, 0, 200, 300)),
    "vercel/v5_do_embed": Expect("vercel", "openai", "text-embedding-3-small", "embeddings", (64, 0, 0, 0, 0)),
    "vercel/v5_stream_text": AGG,
    "vercel/v5_tool_call": NON,
    "vercel/v6_do_generate_anthropic": Expect("vercel", "anthropic", "claude-sonnet-4-5", "chat",
                                              (1500, 3000, 2000, 600, 200)),
    # --- OpenLIT ---
    "openlit/openai_chat": Expect("openlit", "openai", "gpt-4o-2024-08-06", "chat", (6000, 4000, 0, 1500, 500)),
    "openlit/anthropic_chat": Expect("openlit", "anthropic", "claude-3-5-sonnet-20241022", "chat",
                                     (1500, 3000, 2000, 800, 0)),
    "openlit/crewai_agent": AGG,
    "openlit/vectordb": NON,
    # --- pydantic-ai ---
    "pydantic_ai/agent_run": AGG,
    "pydantic_ai/legacy_agent_run": AGG,
    "pydantic_ai/chat_1": Expect("pydantic_ai", "openai", "gpt-4o-2024-08-06", "chat", (1000, 0, 0, 150, 0)),
    "pydantic_ai/chat_2": Expect("pydantic_ai", "openai", "gpt-4o-2024-08-06", "chat", (1000, 1000, 0, 200, 100)),
    "pydantic_ai/tool": NON,
    # --- LangSmith ---
    "langsmith/llm_anthropic": Expect("langsmith", "anthropic", "claude-sonnet-4-5-20250929", "chat",
                                      (1500, 3000, 0, 800, 0), units=(("cache_write_1h_tokens", 2000),)),
    "langsmith/llm_openai_reasoning": Expect("langsmith", "openai", "o4-mini", "chat", (6000, 4000, 0, 1500, 500)),
    "langsmith/chain": AGG,
    "langsmith/retriever": NON,
    # --- Google ADK ---
    "adk/call_llm": Expect("adk", "gcp.gemini", "gemini-2.5-flash", "generate_content", (5000, 0, 0, 700, 300),
                           unmetered=CACHE_UNKNOWN),
    "adk/generate_content": Expect("adk", "gcp.gemini", "gemini-2.5-pro", "generate_content",
                                   (3000, 2000, 0, 700, 300)),
    "adk/invoke_agent": AGG,
    "adk/execute_tool": NON,
    # --- Bedrock via botocore ---
    "bedrock/converse": Expect("botocore", "aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "chat",
                               (1200, 0, 0, 300, 0), unmetered=CACHE_UNKNOWN),
    "bedrock/invoke_model_throttled": Expect("botocore", "aws.bedrock", "amazon.titan-text-express-v1", "chat",
                                             (0, 0, 0, 0, 0), status="error"),
}


@pytest.fixture(scope="module")
def conventions() -> Conventions:
    return Conventions(Config())


def _tokens(call: LLMCall) -> tuple[int, int, int, int, int]:
    t = call.tokens
    return (t.input, t.cache_read, t.cache_write, t.output, t.reasoning)


# ---------------------------------------------------------------------------------------------
# Every fixture classifies exactly as expected
# ---------------------------------------------------------------------------------------------

def test_every_fixture_has_an_expectation() -> None:
    assert set(fixture_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_classifies_exactly(conventions: Conventions, name: str) -> None:
    span = load_fixture(name)
    expected = EXPECTED[name]
    assert is_candidate(span.attributes)
    result = conventions.classify(span)
    if isinstance(expected, str):
        assert result == expected
        return
    assert isinstance(result, LLMCall), result
    assert (result.source, result.provider, result.model, result.operation) == \
        (expected.source, expected.provider, expected.model, expected.operation)
    assert _tokens(result) == expected.tokens
    assert (result.status, result.unmetered, result.cache_write_1h) == \
        (expected.status, expected.unmetered, expected.cache_write_1h)
    assert (tuple(sorted(result.units.items())), result.service_tier, result.batch) == \
        (expected.units, expected.service_tier, expected.batch)
    assert result.end_ns == span.end_ns
    assert result.duration_s == pytest.approx((span.end_ns - span.start_ns) / 1e9)
    assert result.sample_weight == 1.0
    assert all(isinstance(v, str) for v in (result.service, result.environment, result.provider, result.model,
                                            result.operation, result.status, result.error_type, result.source))
    assert all(n >= 0 for n in _tokens(result))


def test_recorded_resource_fills_service_environment_and_resource_dimension(conventions: Conventions) -> None:
    call = conventions.classify(load_fixture("recorded/openllmetry.chat"))
    assert isinstance(call, LLMCall)
    assert (call.service, call.environment) == ("fixture-app", "test")
    assert call.dimensions == {"project": "proj-7"}  # customer/feature were on the app's parent span only


def test_input_and_output_totals_match_what_the_source_reported(conventions: Conventions) -> None:
    # Inclusive source: the three input classes add up to the reported input count.
    call = conventions.classify(load_fixture("openinference/anthropic_cache"))
    assert isinstance(call, LLMCall)
    assert (call.tokens.input_total, call.tokens.output_total) == (6500, 800)
    # Exclusive source (OpenLIT passes Anthropic's numbers through): cache counts come on top.
    call = conventions.classify(load_fixture("openlit/anthropic_chat"))
    assert isinstance(call, LLMCall)
    assert (call.tokens.input_total, call.tokens.output_total) == (1500 + 3000 + 2000, 800)


# ---------------------------------------------------------------------------------------------
# Aggregates: an agent over two chats counts the chats once each
# ---------------------------------------------------------------------------------------------

def test_agent_span_over_two_chats_counts_each_chat_once(conventions: Conventions) -> None:
    agent = load_fixture("pydantic_ai/agent_run")
    chats = [load_fixture("pydantic_ai/chat_1"), load_fixture("pydantic_ai/chat_2")]
    results = [conventions.classify(span) for span in (agent, *chats)]
    calls = [r for r in results if isinstance(r, LLMCall)]
    assert results[0] == AGG and len(calls) == 2
    # What was counted equals the agent's own totals, so nothing was counted twice.
    assert sum(c.tokens.input_total for c in calls) == agent.attributes["gen_ai.aggregated_usage.input_tokens"]
    assert sum(c.tokens.output_total for c in calls) == agent.attributes["gen_ai.aggregated_usage.output_tokens"]
    assert sum(c.tokens.cache_read for c in calls) == \
        agent.attributes["gen_ai.aggregated_usage.details.cache_read_tokens"]


def test_vercel_wrapper_and_its_model_call_count_once(conventions: Conventions) -> None:
    wrapper = conventions.classify(load_fixture("vercel/v4_generate_text"))
    call = conventions.classify(load_fixture("vercel/v4_do_generate_openai"))
    assert wrapper == AGG and isinstance(call, LLMCall)
    assert call.tokens.input_total == 10000 and call.tokens.output_total == 2000


@pytest.mark.parametrize(("operation", "expected"), [
    ("invoke_agent", AGG), ("create_agent", AGG), ("invoke_workflow", AGG),
    ("execute_tool", NON), ("retrieval", NON),
    ("chat", "chat"), ("text_completion", "text_completion"), ("generate_content", "generate_content"),
    ("embeddings", "embeddings"),
])
def test_semconv_operations(conventions: Conventions, operation: str, expected: str) -> None:
    span = _span({"gen_ai.operation.name": operation, "gen_ai.provider.name": "openai",
                  "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10})
    result = conventions.classify(span)
    assert (result if isinstance(result, str) else result.operation) == expected


@pytest.mark.parametrize(("request_type", "expected"), [
    ("chat", "chat"), ("completion", "text_completion"), ("embedding", "embeddings"), ("rerank", "rerank"),
])
def test_openllmetry_request_types(conventions: Conventions, request_type: str, expected: str) -> None:
    span = _span({"gen_ai.system": "OpenAI", "llm.request.type": request_type, "gen_ai.request.model": "m",
                  "gen_ai.usage.prompt_tokens": 5}, name="openai.whatever", scope="opentelemetry.instrumentation.openai")
    result = conventions.classify(span)
    assert isinstance(result, LLMCall) and result.operation == expected and result.provider == "openai"


@pytest.mark.parametrize(("name", "expected"), [
    ("openai.chat", "chat"), ("openai.completion", "text_completion"), ("openai.embeddings", "embeddings"),
    ("openai.response", "chat"), ("bedrock.converse", "chat"), ("cohere.rerank", "rerank"),
])
def test_openllmetry_operation_from_span_name(conventions: Conventions, name: str, expected: str) -> None:
    for extra, source in (({"gen_ai.is_streaming": False}, "openllmetry"), ({}, "semconv")):
        span = _span({"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5,
                      **extra}, name=name, scope="opentelemetry.instrumentation.openai.v1")
        result = conventions.classify(span)
        assert isinstance(result, LLMCall) and result.operation == expected and result.source == source


@pytest.mark.parametrize(("kind", "expected"), [
    ("LLM", "chat"), ("EMBEDDING", "embeddings"), ("CHAIN", AGG), ("AGENT", AGG), ("TOOL", NON),
    ("RETRIEVER", NON), ("RERANKER", NON), ("GUARDRAIL", NON), ("EVALUATOR", NON), ("PROMPT", NON),
])
def test_openinference_span_kinds(conventions: Conventions, kind: str, expected: str) -> None:
    span = _span({"openinference.span.kind": kind, "llm.model_name": "m", "llm.token_count.prompt": 3})
    result = conventions.classify(span)
    assert (result if isinstance(result, str) else result.operation) == expected


# ---------------------------------------------------------------------------------------------
# Status, errors, unmetered
# ---------------------------------------------------------------------------------------------

def test_error_type_without_error_status_is_an_error(conventions: Conventions) -> None:
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                  "error.type": "<class 'openai.RateLimitError'>"})
    result = conventions.classify(span)
    assert isinstance(result, LLMCall)
    assert (result.status, result.error_type, result.unmetered) == ("error", "openai.RateLimitError", "")


def test_error_status_with_usage_keeps_its_tokens(conventions: Conventions) -> None:
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 7}, is_error=True)
    result = conventions.classify(span)
    assert isinstance(result, LLMCall)
    assert (result.status, result.error_type, _tokens(result)) == ("error", "", (100, 0, 0, 7, 0))


def test_contrib_span_with_cache_attribute_is_not_cache_unknown(conventions: Conventions) -> None:
    data = json.loads(json.dumps(_fixture_dict("recorded/openai_v2.chat")))
    data["attributes"]["gen_ai.usage.cache_read.input_tokens"] = 4000
    call = conventions.classify(span_record_from_dict(data))
    assert isinstance(call, LLMCall)
    assert call.unmetered == "" and _tokens(call) == (6000, 4000, 0, 2000, 0)


def test_reasoning_larger_than_output_is_clamped(conventions: Conventions) -> None:
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 50,
                  "gen_ai.usage.reasoning.output_tokens": 80})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall) and _tokens(call) == (10, 0, 0, 0, 50)


def test_odd_attribute_values_are_not_trusted(conventions: Conventions) -> None:
    # a count that is present but impossible (-5, NaN) makes the whole call invalid: never priced
    # (issue 8: one span must not inflate or silently shrink the bill)
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": "120", "gen_ai.usage.output_tokens": -5,
                  "gen_ai.usage.cache_read.input_tokens": True, "gen_ai.usage.reasoning.output_tokens": float("nan")})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall) and _tokens(call) == (0, 0, 0, 0, 0)
    assert call.invalid == "token_count_out_of_range"


# ---------------------------------------------------------------------------------------------
# Time to first token
# ---------------------------------------------------------------------------------------------

def test_ttft_from_attribute_events_and_vercel_milliseconds(conventions: Conventions) -> None:
    assert _call(conventions, "semconv/anthropic_current").ttft_s == pytest.approx(0.35)
    assert _call(conventions, "vercel/v4_do_stream_anthropic").ttft_s == pytest.approx(0.4125)
    assert _call(conventions, "openlit/openai_chat").ttft_s == pytest.approx(0.25)
    span = load_fixture("recorded/openinference.chat_stream")
    first = next(t for n, t in span.events if n == "First Token Stream Event")
    assert _call(conventions, "recorded/openinference.chat_stream").ttft_s == pytest.approx((first - span.start_ns) / 1e9)
    assert _call(conventions, "recorded/openai_v2.chat").ttft_s is None


def test_event_before_span_start_gives_no_ttft(conventions: Conventions) -> None:
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": 1}, events=(("ai.stream.firstChunk", 1_000),))
    call = conventions.classify(span)
    assert isinstance(call, LLMCall) and call.ttft_s is None


# ---------------------------------------------------------------------------------------------
# Dimensions, resource labels, label caps
# ---------------------------------------------------------------------------------------------

DIM_CONFIG = {
    "dimensions": {
        "customer": {"attributes": ["customer.id", "tenant.id"], "resource": True},
        "feature": {"attributes": ["feature.id", "ai.telemetry.metadata.feature"]},
        "project": {"attributes": ["project.id"], "resource": False},
        "team": {"attributes": ["team.id"], "enabled": False},
    },
}


def test_dimensions_span_over_resource_first_key_wins() -> None:
    conventions = Conventions(parse_config(DIM_CONFIG))
    span = _span({**_CHAT, "tenant.id": "t-9", "customer.id": "acme", "ai.telemetry.metadata.feature": "search",
                  "team.id": "core"},
                 resource={"customer.id": "from-resource", "project.id": "p-1", "service.name": "svc"})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall)
    # customer: span's first key wins over its second key and over the resource; feature: second key;
    # project: only on the resource, which it may not read; team: disabled.
    assert call.dimensions == {"customer": "acme", "feature": "search"}


def test_dimension_falls_back_to_resource_and_stringifies() -> None:
    conventions = Conventions(parse_config(DIM_CONFIG))
    span = _span({**_CHAT, "feature.id": 42}, resource={"tenant.id": "t-9", "customer.id": "c-1"})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall)
    assert call.dimensions == {"customer": "c-1", "feature": "42"}  # resource keys in order: customer.id first


def test_service_and_environment_from_configured_resource_keys() -> None:
    config = parse_config({"resource_keys": {"service": ["app.name", "service.name"],
                                             "environment": ["env"]}})
    call = Conventions(config).classify(_span(_CHAT, resource={"service.name": "svc", "app.name": "app"}))
    assert isinstance(call, LLMCall) and (call.service, call.environment) == ("app", contract.UNKNOWN)
    call = Conventions(Config()).classify(_span(_CHAT, resource={}))
    assert isinstance(call, LLMCall) and (call.service, call.environment) == (contract.UNKNOWN, contract.UNKNOWN)
    call = Conventions(Config()).classify(_span(_CHAT, resource={"deployment.environment": "staging"}))
    assert isinstance(call, LLMCall) and call.environment == "staging"  # the older key


def test_label_values_are_capped() -> None:
    conventions = Conventions(parse_config({"limits": {"max_label_value_length": 16}}))
    long = "x" * 40
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "p" * 30, "gen_ai.request.model": long,
                  "gen_ai.usage.input_tokens": 1, "customer.id": long, "error.type": long},
                 resource={"service.name": long})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall)
    for value in (call.model, call.provider, call.service, call.error_type, call.dimensions["customer"]):
        assert value == value[:16] and len(value) == 16


def test_missing_provider_and_model_are_unknown(conventions: Conventions) -> None:
    call = conventions.classify(_span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3}))
    assert isinstance(call, LLMCall) and (call.provider, call.model) == (contract.UNKNOWN, contract.UNKNOWN)


def test_gateway_model_ids_name_the_provider(conventions: Conventions) -> None:
    span = _span({"ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": "gateway",
                  "ai.model.id": "anthropic/claude-sonnet-4", "ai.usage.inputTokens": 10, "ai.usage.outputTokens": 2})
    call = conventions.classify(span)
    assert isinstance(call, LLMCall) and (call.provider, call.model) == ("anthropic", "claude-sonnet-4")


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("openai", "openai"), ("OpenAI", "openai"), ("Anthropic", "anthropic"), ("az.ai.openai", "azure.ai.openai"),
    ("az.ai.inference", "azure.ai.inference"), ("vertex_ai", "gcp.vertex_ai"), ("gemini", "gcp.gemini"),
    ("aws.bedrock", "aws.bedrock"), ("AWS", "aws.bedrock"), ("bedrock", "aws.bedrock"), ("mistralai", "mistral_ai"),
    ("xai", "x_ai"), ("ibm.watson.ai", "ibm.watsonx.ai"), ("openai.chat", "openai"), ("openai.responses", "openai"),
    ("anthropic.messages", "anthropic"), ("google.generative-ai", "gcp.gemini"),
    ("google.vertex.chat", "gcp.vertex_ai"), ("vertex.anthropic.messages", "gcp.vertex_ai"),
    ("amazon-bedrock", "aws.bedrock"), ("azure-openai.chat", "azure.ai.openai"), ("mistral.chat", "mistral_ai"),
    ("togetherai.chat", "togetherai"), ("google-gla", "gcp.gemini"), ("google_vertexai", "gcp.vertex_ai"),
    ("gcp.vertex.agent", ""), ("langchain", ""), ("vllm", "vllm"), (None, ""), (42, ""),
])
def test_normalize_provider(raw: object, expected: str) -> None:
    assert normalize_provider(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("chat", "chat"), ("completion", "text_completion"), ("embedding", "embeddings"), ("Embeddings", "embeddings"),
    ("generate_content", "generate_content"), ("something_new", "something_new"),
])
def test_normalize_operation(raw: str, expected: str) -> None:
    assert normalize_operation(raw) == expected


# ---------------------------------------------------------------------------------------------
# The pre-filter, robustness, content, speed
# ---------------------------------------------------------------------------------------------

HTTP_SPAN = {"http.request.method": "GET", "http.route": "/orders/{id}", "http.response.status_code": 200,
             "url.path": "/orders/7", "url.scheme": "https", "server.address": "shop", "server.port": 443,
             "network.protocol.version": "1.1", "user_agent.original": "curl/8", "client.address": "10.0.0.1"}


def test_non_llm_spans_are_rejected_by_both(conventions: Conventions) -> None:
    assert not is_candidate(HTTP_SPAN)
    assert conventions.classify(_span(HTTP_SPAN)) == NOT_LLM
    assert not is_candidate({})


_KEYS = sorted(MARKER_KEYS | {"http.route", "gen_ai.usage.cache_read.input_tokens", "ai.usage.inputTokens",
                              "llm.token_count.prompt", "error.type", "ai.response.providerMetadata",
                              "gen_ai.usage.input_token_details"})
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**9), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["LLM", "chat", "CHAIN", "ai.generateText.doGenerate",
                                                           "invoke_agent", "gcp.vertex.agent", "{'cache_read': 5}",
                                                           "{\"anthropic\": {\"cacheCreationInputTokens\": 9}}"]),
                    st.lists(st.text(max_size=3), max_size=2).map(tuple))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8), st.sampled_from(
    ["", "ai", "pydantic-ai", "langsmith", "gcp.vertex.agent", "opentelemetry.util.genai.handler",
     "opentelemetry.instrumentation.openai.v1", "openlit.otel.tracing"]))
def test_classify_never_raises_and_agrees_with_is_candidate(attributes: dict[str, Any], scope: str) -> None:
    attributes = {k: v for k, v in attributes.items() if v is not None}
    result = Conventions(Config()).classify(_span(attributes, scope=scope))
    assert (result == NOT_LLM) == (not is_candidate(attributes))
    if isinstance(result, LLMCall):
        assert all(n >= 0 for n in _tokens(result))
        assert result.status in (contract.STATUS_OK, contract.STATUS_ERROR)
        assert result.unmetered in ("", NO_USAGE, CACHE_UNKNOWN)


class _Watched(Mapping[str, Any]):
    """A read-only mapping that records every key whose value was read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        self.read.add(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._data:
            self.read.add(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


CONTENT_KEYS = ("gen_ai.prompt.0.content", "gen_ai.completion.0.content", "input.value", "output.value",
                "gen_ai.input.messages", "gen_ai.output.messages", "ai.prompt.messages", "ai.response.text",
                "llm.input_messages.0.message.content", "gcp.vertex.agent.llm_request", "pydantic_ai.all_messages")


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.startswith("recorded/")))
def test_message_content_is_never_read(conventions: Conventions, name: str) -> None:
    data = _fixture_dict(name)
    attributes = _Watched({**data["attributes"], **dict.fromkeys(CONTENT_KEYS, "SECRET PROMPT"),
                           "some.ephemeral_1h_input_tokens": 0})
    span = span_record_from_dict(data)
    span.attributes = attributes
    conventions.classify(span)
    assert attributes.read.isdisjoint(CONTENT_KEYS)


def test_speed_of_prefilter_and_classify(conventions: Conventions) -> None:
    """Loose bounds that catch a regression by an order of magnitude (targets: < 1 us and a few us)."""
    http = dict(HTTP_SPAN)
    span = load_fixture("recorded/openllmetry.chat")
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        is_candidate(http)
    prefilter_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        conventions.classify(span)
    classify_us = (time.perf_counter() - start) / n * 1e6
    assert prefilter_us < 2.0, prefilter_us
    assert classify_us < 40.0, classify_us


# ---------------------------------------------------------------------------------------------
# Drift: re-record the real instrumentations and compare with the stored fixtures
# ---------------------------------------------------------------------------------------------

def _signature(result: LLMCall | str) -> object:
    """What must not drift between recordings (timing and ids excluded)."""
    if isinstance(result, str):
        return result
    return (result.source, result.service, result.environment, result.provider, result.model, result.operation,
            result.status, result.error_type, _tokens(result), result.unmetered, result.cache_write_1h,
            result.ttft_s is None, tuple(sorted(result.dimensions.items())), result.service_tier, result.batch,
            tuple(sorted(result.units.items())))


@pytest.mark.slow
@pytest.mark.parametrize("instrumentation", sorted(INSTRUMENTATIONS))
def test_live_recording_classifies_like_stored_fixtures(conventions: Conventions, instrumentation: str) -> None:
    live = {scenario: spans for scenario, spans in record_live(instrumentation).items()
            if spans or scenario not in OPTIONAL_SCENARIOS}
    assert sorted(live) == sorted({n.split(".", 1)[1] for n in EXPECTED if n.startswith(f"recorded/{instrumentation}.")})
    for scenario, spans in live.items():
        assert len(spans) == 1, f"{instrumentation} {scenario}: {len(spans)} spans"
        stored = load_fixture(recorded_name(instrumentation, scenario))
        assert _signature(conventions.classify(span_record_from_dict(spans[0]))) == \
            _signature(conventions.classify(stored)), f"{instrumentation} {scenario} drifted"


# ---------------------------------------------------------------------------------------------
# tests/support/fake_openai.py, with the real openai SDK
# ---------------------------------------------------------------------------------------------

@pytest.fixture()
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(response_model=None)
    server.start()
    yield server
    server.stop()


def _client(server: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def test_fake_openai_chat_reports_usage_and_echoes_model(fake: FakeOpenAI) -> None:
    response = _client(fake).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert response.model == "gpt-4o-mini"
    usage = response.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10000, 2000, 12000)
    assert usage.prompt_tokens_details.cached_tokens == 4000  # type: ignore[union-attr]
    assert usage.completion_tokens_details.reasoning_tokens == 500  # type: ignore[union-attr]
    assert fake.requests[0][0] == "/v1/chat/completions" and fake.requests[0][1]["model"] == "gpt-4o-mini"


def test_fake_openai_stream_sends_usage_only_when_asked(fake: FakeOpenAI) -> None:
    client = _client(fake)
    messages = [{"role": "user", "content": "hi"}]
    chunks = list(client.chat.completions.create(model="m", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 10000 and chunks[-1].choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake server."
    plain = list(client.chat.completions.create(model="m", messages=messages, stream=True))
    assert all(c.usage is None for c in plain)


def test_fake_openai_embeddings_and_configured_usage() -> None:
    with FakeOpenAI(prompt_tokens=77, response_model="text-embedding-3-small-v9") as server:
        response = _client(server).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert (response.usage.prompt_tokens, len(response.data), response.model) == (77, 2, "text-embedding-3-small-v9")


def test_fake_openai_errors_on_demand(fake: FakeOpenAI) -> None:
    fake.fail_next(429)
    with pytest.raises(openai.RateLimitError):
        _client(fake).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    reply = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert reply.status_code == 200  # the failure was used up
    fake.failing_models["bad-model"] = 500
    reply = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "bad-model", "messages": []})
    assert reply.status_code == 500 and reply.headers["x-should-retry"] == "false"
    assert reply.json()["error"]["type"] == "server_error"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

_CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
         "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}


def _span(attributes: Mapping[str, Any], *, name: str = "span", scope: str = "", is_error: bool = False,
          resource: Mapping[str, Any] | None = None, events: tuple[tuple[str, int], ...] = ()) -> SpanRecord:
    start = 1_795_000_000_000_000_000
    return SpanRecord(name=name, attributes=dict(attributes), resource=dict(resource or {}), start_ns=start,
                      end_ns=start + 2_000_000_000, is_error=is_error, scope_name=scope, events=events)


def _fixture_dict(name: str) -> dict[str, Any]:
    return read_fixture(name)


def _call(conventions: Conventions, name: str) -> LLMCall:
    result = conventions.classify(load_fixture(name))
    assert isinstance(result, LLMCall), result
    return result
