"""Shape plans (conventions.plans) classify exactly like the full classifier, on every fixture and on
generated spans of planned shapes, the first time a shape is seen and from the cache."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.conventions.plans import MAX_PLANS, ShapePlans
from genai_meter.records import LLMCall, SpanRecord
from tests.support.record_spans import fixture_names, load_fixture

CONFIG = Config()


def _both(span: SpanRecord) -> tuple[object, object, object]:
    planned = Conventions(CONFIG)
    full = Conventions(CONFIG, shape_plans=False)
    return planned.classify(span), planned.classify(span), full.classify(span)


def test_every_fixture_classifies_alike_with_and_without_plans() -> None:
    names = fixture_names()
    assert len(names) > 40
    for name in names:
        first, cached, full = _both(load_fixture(name))
        assert first == full, name
        assert cached == full, name


def test_the_openai_v2_shape_is_planned_with_the_shortcut() -> None:
    span = load_fixture("recorded/openai_v2.chat")
    plans = ShapePlans(Conventions(CONFIG)._dimensions)
    plan = plans.plan(span, span.attributes)
    assert plan is not None and plan.family == "otel_contrib" and plan.gen_ai_shortcut
    assert plans.plan(span, span.attributes) is plan  # cached per shape


def test_shapes_of_key_defined_families_get_no_plan() -> None:
    plans = ShapePlans(())
    assert plans.compile("opentelemetry.instrumentation.openai_v2", ("ai.operationId",)) is None  # Vercel keys
    assert plans.compile("", ("openinference.span.kind", "llm.token_count.prompt")) is None
    assert plans.compile("", ("gen_ai.operation.name", "telemetry.sdk.name")) is None  # a span saying OpenLIT


def test_gen_ai_shapes_are_planned_alike_under_any_scope() -> None:
    """The scope is a hint: without one that names a family, the keys decide and the shortcut applies."""
    plans = ShapePlans(())
    keys = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.usage.input_tokens")
    for scope in ("", "my-company.llm", "opentelemetry.instrumentation.openai.v1",
                  "openinference.instrumentation.openai"):
        plan = plans.compile(scope, keys)
        assert plan is not None and plan.family == "semconv" and plan.gen_ai_shortcut, scope
        assert plan.template is not None and plan.hint_resource and not plan.hint_system, scope
    plan = plans.compile("my-company.llm", (*keys, "gen_ai.is_streaming"))
    assert plan is not None and plan.family == "openllmetry" and plan.gen_ai_shortcut
    plan = plans.compile("my-company.llm", (*keys, "gen_ai.system"))
    assert plan is not None and plan.hint_system  # gen_ai.system=gcp.vertex.agent makes it ADK's
    plan = plans.compile("my-company.llm", (*keys, "genai_meter.usage.web_searches"))
    assert plan is not None and plan.template is None and plan.unit_keys == ("genai_meter.usage.web_searches",)


def test_a_value_naming_another_family_takes_the_full_path() -> None:
    conventions = Conventions(CONFIG)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "gcp.vertex.agent",
                  "gen_ai.request.model": "gemini-2.5-flash", "gen_ai.usage.input_tokens": 10}
    call = conventions.classify(SpanRecord("call_llm", attributes, {}, 0, 1, scope_name="my-app"))
    assert isinstance(call, LLMCall) and call.source == "adk" and call.provider == "gcp.gemini"
    assert conventions.template_key(SpanRecord("call_llm", attributes, {}, 0, 1, scope_name="my-app")) is None
    openlit = {"telemetry.sdk.name": "openlit"}
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 4}
    call = conventions.classify(SpanRecord("chat m", attributes, openlit, 0, 1, scope_name="my-app"))
    assert isinstance(call, LLMCall) and call.source == "openlit" and call.tokens.input == 10  # exclusive
    assert conventions.template_key(SpanRecord("chat m", attributes, openlit, 0, 1, scope_name="my-app")) is None


def test_the_plan_cache_is_bounded() -> None:
    plans = ShapePlans(())
    for i in range(MAX_PLANS + 10):
        span = SpanRecord("chat", {f"k{i}": 1, "gen_ai.operation.name": "chat"}, {}, 0, 1,
                          scope_name="opentelemetry.instrumentation.openai_v2")
        plans.plan(span, span.attributes)
    assert len(plans._plans) <= MAX_PLANS


_VALUES = st.one_of(st.integers(-5, 3_000_000), st.sampled_from(["12", "", " 7 ", "x", "²"]), st.booleans(),
                    st.floats(allow_nan=True), st.none())
_OPTIONAL = {
    "gen_ai.usage.input_tokens": _VALUES, "gen_ai.usage.output_tokens": _VALUES,
    "gen_ai.usage.cache_read.input_tokens": _VALUES, "gen_ai.usage.cache_creation.input_tokens": _VALUES,
    "gen_ai.usage.reasoning.output_tokens": _VALUES, "gen_ai.usage.prompt_tokens": _VALUES,
    "gen_ai.provider.name": st.sampled_from(["openai", "aws.bedrock", "az.ai.openai", "", "AWS"]),
    "gen_ai.system": st.sampled_from(["openai", "anthropic", ""]),
    "gen_ai.request.model": st.sampled_from(["gpt-4o", "openai/gpt-4o", "", "m" * 300]),
    "gen_ai.response.model": st.sampled_from(["gpt-4o-2024-08-06", ""]),
    "gen_ai.response.time_to_first_chunk": st.one_of(st.floats(allow_nan=True), st.integers(-1, 5)),
    "error.type": st.sampled_from(["timeout", "<class 'openai.RateLimitError'>"]),
    "customer.id": st.sampled_from(["acme", "", "c" * 200]), "tenant.id": st.sampled_from(["t1", ""]),
    "feature.id": st.sampled_from(["search", ""]), "org.id": st.sampled_from(["o1"]),
    "anthropic.cache_creation.ephemeral_1h_input_tokens": st.integers(0, 10),
    "gen_ai.aggregated_usage.input_tokens": st.integers(0, 10),
}


@st.composite
def _spans(draw: Any) -> SpanRecord:
    attributes: dict[str, Any] = {}
    operation = draw(st.sampled_from(["chat", "text_completion", "embeddings", "invoke_agent", "execute_tool",
                                      "", "  ", "Chat", "completion", 7, None]))
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
    for key in draw(st.lists(st.sampled_from(sorted(_OPTIONAL)), unique=True)):
        value = draw(_OPTIONAL[key])
        if value is not None:
            attributes[key] = value
    scope = draw(st.sampled_from(["opentelemetry.instrumentation.openai_v2", "opentelemetry.instrumentation.botocore",
                                  "openlit.otel", "pydantic-ai", "opentelemetry.instrumentation.openai", ""]))
    resource = draw(st.sampled_from([{}, {"service.name": "s", "project.id": "p", "org.id": "o"}]))
    return SpanRecord(draw(st.sampled_from(["chat gpt-4o", "span"])), attributes, resource, 10**18,
                      10**18 + draw(st.integers(-5, 10**10)), is_error=draw(st.booleans()), scope_name=scope)


@settings(max_examples=400, deadline=None)
@given(_spans())
def test_generated_spans_classify_alike_with_and_without_plans(span: SpanRecord) -> None:
    first, cached, full = _both(span)
    assert first == full
    assert cached == full
