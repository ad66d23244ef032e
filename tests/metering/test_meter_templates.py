"""The Meter's call templates (metering.templates) give exactly the outcomes of the full classifier:
on every fixture, and on generated runs of spans that share template keys but not their numbers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.config import Config
from genai_meter.records import LLMCall, SpanRecord
from tests.support.record_spans import fixture_names, load_fixture

CONFIG = Config()


def _meters() -> tuple[Meter, Meter]:
    return Meter(CONFIG, []), Meter(CONFIG, [], templates=False)


def test_every_fixture_assesses_alike_with_and_without_templates_learned_and_used() -> None:
    templated, full = _meters()
    for name in fixture_names():
        span = load_fixture(name)
        for _ in range(3):  # learns, then takes the template
            assert templated.assess(span) == full.assess(span), name
    assert templated.templates is not None
    assert any(isinstance(t, LLMCall) for t in templated.templates._templates.values())


def test_a_template_is_taken_for_the_second_span_of_a_key() -> None:
    templated, full = _meters()
    span = load_fixture("recorded/openai_v2.chat")
    templated.assess(span)
    assert templated.templates is not None
    learned = list(templated.templates._templates.values())
    assert len(learned) == 1 and isinstance(learned[0], LLMCall)
    other = SpanRecord(span.name, {**span.attributes, "gen_ai.usage.input_tokens": 77,
                                   "gen_ai.usage.output_tokens": 5}, span.resource, span.start_ns, span.end_ns + 10,
                       span.is_error, span.scope_name, span.trace_id, b"87654321", span.span_id)
    outcome = templated.assess(other)
    assert outcome == full.assess(other)
    assert isinstance(outcome, tuple) and outcome[0].tokens.input + outcome[0].tokens.cache_read == 77
    assert outcome[0].parent_span_id == span.span_id


_COUNT = st.one_of(st.integers(0, 5000), st.integers(0, 5000), st.integers(-3, -1),
                   st.sampled_from([True, "12", 2.0, 10**15]))
_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
               "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens")


@st.composite
def _runs(draw: Any) -> list[SpanRecord]:
    """Spans of a few shapes and deciding values, each with its own numbers, ids and events."""
    resources = [{"service.name": "a", "customer.id": "r"}, {"service.name": "b"}]
    token_keys = draw(st.lists(st.sampled_from(_TOKEN_KEYS), unique=True))
    extra = draw(st.lists(st.sampled_from(["customer.id", "feature.id", "error.type", "gen_ai.system",
                                           "gen_ai.conversation.id", "user.id", "gen_ai.response.id"]),
                          unique=True))
    profiles: list[tuple[dict[str, Any], int, str]] = []
    for _ in range(2):  # deciding values, shared by the run's spans
        profile: dict[str, Any] = {
            "gen_ai.operation.name": draw(st.sampled_from(["chat", "embeddings", "execute_tool", "Chat"])),
            "gen_ai.provider.name": draw(st.sampled_from(["openai", "anthropic"])),
            "gen_ai.request.model": draw(st.sampled_from(["gpt-4o", "claude-sonnet-4-5", "no-such-model"])),
        }
        if draw(st.booleans()):
            profile["gen_ai.response.model"] = draw(st.sampled_from(["gpt-4o-2024-08-06", "openai/gpt-4o"]))
        for key in extra:
            profile[key] = draw(st.sampled_from(["x", "y", "<class 'openai.RateLimitError'>"]))
        profiles.append((profile, draw(st.integers(0, 1)), draw(st.sampled_from(
            ["opentelemetry.instrumentation.openai_v2", "opentelemetry.instrumentation.botocore"]))))
    spans = []
    for i in range(draw(st.integers(1, 12))):
        profile, resource, scope = profiles[draw(st.integers(0, 1))]
        attributes = dict(profile)
        if "gen_ai.response.id" in attributes:
            attributes["gen_ai.response.id"] = f"resp-{i}"
        for key in token_keys:
            attributes[key] = draw(_COUNT)
        events = draw(st.sampled_from([(), (("gen_ai.content.chunk", 5),), (("ai.stream.firstChunk", 10**18 + 7),)]))
        start = 10**18
        spans.append(SpanRecord("chat", attributes, resources[resource], start,
                                start + draw(st.integers(-5, 10**10)), draw(st.booleans()), scope,
                                bytes(15) + bytes([i % 7 + 1]), i.to_bytes(8, "big"),
                                draw(st.sampled_from([b"", bytes(7) + b"\x01"])),
                                draw(st.sampled_from(["", "ot=th:8"])), events))
    return spans


@settings(max_examples=300, deadline=None)
@given(_runs())
def test_generated_runs_assess_alike_with_and_without_templates(spans: list[SpanRecord]) -> None:
    templated, full = _meters()
    for span in spans:
        assert templated.assess(span) == full.assess(span)


def test_a_template_that_does_not_rebuild_its_call_is_refused_and_the_key_classified_in_full() -> None:
    templated, full = _meters()
    assert templated.templates is not None
    span = load_fixture("recorded/openai_v2.chat")
    found = templated.templates.find(span)
    assert found is not None and found[1] is None  # not learned yet
    call = full.assess(span)
    assert isinstance(call, tuple)
    wrong = templated.conventions.from_template(call[0], span, found[2])
    wrong.model = "another-model"
    templated.templates.learn(found[0], call[0], wrong)
    found = templated.templates.find(span)
    assert found is not None and found[1] is False
    assert found[0] not in templated.templates.entries
    assert templated.assess(span) == full.assess(span)
