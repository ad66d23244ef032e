"""Call templates (conventions.templates): for templated shapes classification reads only the
deciding keys and the token keys, and `from_template` rebuilds every fixture's call exactly."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.conventions.attribution import CONVERSATION_KEYS, USER_KEYS
from genai_meter.conventions.templates import TOKEN_KEYS, token_counts
from genai_meter.records import LLMCall, SpanRecord
from tests.support.record_spans import fixture_names, load_fixture

CONFIG = Config()


class ReadRecorder(Mapping[str, Any]):
    """A read-only mapping that notes every key whose value is read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        value = self.data[key]
        self.read.add(key)  # (absent keys are a part of the shape)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _templated_fixtures() -> list[str]:
    """The fixtures of templated shapes that are calls (a tool span of such a shape is skipped, never learned)."""
    conventions = Conventions(CONFIG)
    return [name for name in fixture_names() if conventions.template_key(load_fixture(name)) is not None
            and isinstance(conventions.classify(load_fixture(name)), LLMCall)]


def test_the_openai_v2_fixtures_take_templates() -> None:
    names = _templated_fixtures()
    assert "recorded/openai_v2.chat" in names
    assert len(names) >= 3


def test_semconv_spans_take_templates_under_any_scope() -> None:
    """The scope is a hint: an app's own scope, OpenLLMetry's and OpenInference's read gen_ai.* spans alike."""
    span = load_fixture("recorded/openai_v2.chat")
    conventions = Conventions(CONFIG)
    reference = conventions.classify(span)
    assert isinstance(reference, LLMCall)
    for scope in ("my-company.llm", "", "opentelemetry.instrumentation.openai.v1",
                  "openinference.instrumentation.openai"):
        other = SpanRecord(span.name, span.attributes, span.resource, span.start_ns, span.end_ns, span.is_error,
                           scope)
        assert conventions.template_key(other) is not None, scope
        call = conventions.classify(other)
        assert isinstance(call, LLMCall), scope
        assert (call.provider, call.model, call.operation, call.tokens) == (
            reference.provider, reference.model, reference.operation, reference.tokens), scope
        assert call.source == "semconv", scope


def test_classification_of_templated_shapes_reads_only_deciding_and_token_keys() -> None:
    for name in _templated_fixtures():
        span = load_fixture(name)
        key = Conventions(CONFIG).template_key(span)
        assert key is not None
        allowed = set(key[0].template.value_keys) | set(TOKEN_KEYS) | set(CONVERSATION_KEYS) | set(USER_KEYS)
        recorder = ReadRecorder(dict(span.attributes))
        traced = SpanRecord(span.name, recorder, span.resource, span.start_ns, span.end_ns, span.is_error,
                            span.scope_name, span.trace_id, span.span_id, span.parent_span_id, span.trace_state,
                            span.events)
        assert isinstance(Conventions(CONFIG).classify(traced), LLMCall), name
        assert recorder.read, name
        assert recorder.read <= allowed, (name, recorder.read - allowed)


def test_every_templated_fixture_is_rebuilt_from_its_own_call() -> None:
    for name in _templated_fixtures():
        span = load_fixture(name)
        conventions = Conventions(CONFIG)
        call = conventions.classify(span)
        assert isinstance(call, LLMCall), name
        counts = token_counts(span.attributes, CONFIG.limits.max_tokens_per_call)
        assert counts is not None, name
        assert conventions.from_template(call, span, counts) == call, name


def test_a_count_that_is_no_plain_integer_in_range_takes_the_full_classifier() -> None:
    ceiling = CONFIG.limits.max_tokens_per_call
    assert token_counts({"gen_ai.usage.input_tokens": 5}, ceiling) == (5, None, None, None, None)
    for bad in (-1, ceiling + 1, True, "5", 5.0):
        assert token_counts({"gen_ai.usage.input_tokens": bad}, ceiling) is None, bad


def test_values_of_keys_that_decide_nothing_are_no_part_of_the_key() -> None:
    span = load_fixture("recorded/openai_v2.chat")
    conventions = Conventions(CONFIG)
    other = SpanRecord(span.name, {**span.attributes, "gen_ai.response.id": "chatcmpl-other",
                                   "gen_ai.usage.input_tokens": 999}, span.resource, span.start_ns + 5,
                       span.end_ns + 9, span.is_error, span.scope_name, span.trace_id, b"12345678")
    assert conventions.template_key(other) == conventions.template_key(span)
    errored = SpanRecord(span.name, dict(span.attributes), span.resource, span.start_ns, span.end_ns, True,
                         span.scope_name)
    assert conventions.template_key(errored) != conventions.template_key(span)
