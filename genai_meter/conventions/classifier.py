"""`Conventions.classify`: one finished span -> an `LLMCall` or a skip reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.conventions.attribution import tool_name_of
from genai_meter.conventions.family import family_of, is_openlit
from genai_meter.conventions.keys import ADK_FRAMEWORK_SYSTEM, ERROR_TYPE, GEN_AI_SYSTEM, MARKER_KEYS, TIER_KEYS
from genai_meter.conventions.langsmith import read_langsmith
from genai_meter.conventions.openinference import read_openinference
from genai_meter.conventions.plans import Dimensions, Plan, ShapePlans, read_gen_ai_planned
from genai_meter.conventions.price_context import BatchRules, span_says_batch, tier_of
from genai_meter.conventions.reading import INVALID_TOKEN_COUNT, Reading, out_of_range, split_counts, split_tokens
from genai_meter.conventions.semconv import read_gen_ai
from genai_meter.conventions.span_units import common_units, unit_keys_of
from genai_meter.conventions.tables import (
    SOURCE_ADK,
    SOURCE_BOTOCORE,
    SOURCE_LANGSMITH,
    SOURCE_OPENINFERENCE,
    SOURCE_OPENLIT,
    SOURCE_OPENLLMETRY,
    SOURCE_OTEL_CONTRIB,
    SOURCE_PYDANTIC_AI,
    SOURCE_SEMCONV,
    SOURCE_VERCEL,
    normalize_provider,
)
from genai_meter.conventions.times import MAX_CALL_NS
from genai_meter.conventions.units import out_of_range as units_out_of_range
from genai_meter.conventions.units import split_units
from genai_meter.conventions.values import (
    error_type_text,
    event_ttft,
    first_present,
    says_1h,
)
from genai_meter.conventions.vercel import read_vercel
from genai_meter.records import LLMCall, SpanRecord, TokenCounts, ToolCall


class Conventions:
    """Classifies spans into `LLMCall`s for one config. Thread-safe; build once, share.

    Resource mappings are read-only (records.SpanRecord): the labels read from the last resource
    seen are kept, keyed by the mapping's identity (in-process spans share one resource object).
    """

    def __init__(self, config: Config, *, shape_plans: bool = True) -> None:
        self.config = config
        self._cap = config.limits.max_label_value_length
        self._max_tokens = config.limits.max_tokens_per_call
        self._service_keys = tuple(config.resource_keys.service)
        self._environment_keys = tuple(config.resource_keys.environment)
        self._dimensions: Dimensions = tuple((name, tuple(dim.attributes), dim.resource)
                                             for name, dim in config.active_dimensions.items())
        self._batch_rules = BatchRules(config.pricing.batch_rules)
        # what the keys of a span shape decide, worked out once per shape (conventions.plans)
        self._plans = ShapePlans(self._dimensions, self._batch_rules.attribute_keys) if shape_plans else None
        # (resource mapping, service, environment, dimension values read from it, all three and what else
        # of the resource decides a call as one hashable key, whether it says OpenLIT); replaced atomically
        self._last_resource: _ResourceLabels = (None, "", "", {}, (), False)

    def classify(self, span: SpanRecord) -> LLMCall | str:
        """An `LLMCall` for an inference span, else the skip reason (a `contract.SKIP_*` string)."""
        attributes = span.attributes
        if MARKER_KEYS.isdisjoint(attributes):
            return contract.SKIP_NOT_LLM
        plan = self._plans.plan(span, attributes) if self._plans is not None else None
        if plan is not None and (plan.hint_system or plan.hint_resource) and self._hinted_away(plan, span):
            plan = None  # a value names another family than the keys did (ADK, OpenLIT): the full path
        if plan is None:  # a shape the keys alone do not decide: the full path
            family = family_of(span, attributes)
            reading = READERS[family](span, attributes, family)
        elif plan.gen_ai_shortcut:
            reading = read_gen_ai_planned(span, attributes, plan)
        else:
            reading = READERS[plan.family](span, attributes, plan.family)
        if isinstance(reading, str):
            return reading
        return self._call(span, attributes, reading, plan)

    def _hinted_away(self, plan: Plan, span: SpanRecord) -> bool:
        """Whether a value names another family than the keys of `plan`'s shape did."""
        return ((plan.hint_system and span.attributes.get(GEN_AI_SYSTEM) == ADK_FRAMEWORK_SYSTEM)
                or (plan.hint_resource and self._resource_labels(span.resource)[5]))

    def _call(self, span: SpanRecord, attributes: Mapping[str, Any], reading: Reading,
              plan: Plan | None = None) -> LLMCall:
        tokens, has_usage = split_tokens(reading)
        invalid = ""
        if out_of_range(reading, self._max_tokens):  # implausible counts: flagged, carry no tokens, never priced
            invalid, tokens = INVALID_TOKEN_COUNT, TokenCounts()
        details = reading.details
        unit_keys = plan.unit_keys if plan is not None else unit_keys_of(attributes)
        if unit_keys:
            details = common_units(attributes, unit_keys, details)
        units: dict[str, int] = {}
        if details:
            if units_out_of_range(details, self._max_tokens):  # flagged like implausible token counts
                invalid, tokens = invalid or contract.INVALID_UNIT_COUNT, TokenCounts()
            elif not invalid:
                units = split_units(tokens, details)
                has_usage = has_usage or bool(units)
        error_type = attributes.get(ERROR_TYPE)
        is_error = span.is_error or error_type is not None
        if not has_usage:
            unmetered = "" if is_error else contract.UNMETERED_NO_USAGE
        elif reading.cache_unknown and reading.operation != "embeddings":
            unmetered = contract.UNMETERED_CACHE_UNKNOWN
        else:
            unmetered = ""
        provider, model = reading.provider, reading.model
        if not provider and isinstance(model, str) and "/" in model:  # "openai/gpt-4o" (gateways, LiteLLM)
            head, _, rest = model.partition("/")
            provider = normalize_provider(head)
            model = rest if provider else model
        cache_1h = (reading.cache_1h or (tokens.cache_write > 0 and (plan is None or plan.one_hour_keys)
                                         and says_1h(attributes))) and "cache_write_1h_tokens" not in units
        _, service, environment, resource_dimensions, _, _ = self._resource_labels(span.resource)
        duration_ns = span.end_ns - span.start_ns
        ttft_s = reading.ttft_s
        if ttft_s is None and span.events:
            ttft_s = event_ttft(span)
        cap = self._cap
        operation = reading.operation
        # positional: LLMCall's field order (records.py); a third of the cost of keywords
        call = LLMCall(
            service,
            environment,
            (provider if len(provider) <= cap else provider[:cap]) if provider else contract.UNKNOWN,
            (model if type(model) is str and len(model) <= cap else self._label(model))
            if model is not None and model != "" else contract.UNKNOWN,
            operation if len(operation) <= cap else self._label(operation),
            contract.STATUS_ERROR if is_error else contract.STATUS_OK,
            self._label(error_type_text(error_type)) if error_type is not None else "",
            duration_ns / 1e9 if 0 < duration_ns <= MAX_CALL_NS else 0.0,  # else unknown (times.py)
            ttft_s,
            tokens,
            span.end_ns,
            self._dimension_values(attributes, resource_dimensions,
                                   self._dimensions if plan is None else plan.dimensions),
            reading.source,
            unmetered,
            cache_1h,
        )
        if invalid:
            call.invalid = invalid
        if units:
            call.units = units
        tier = (tier_of(attributes, plan.tier_keys) if plan is not None else tier_of(attributes, TIER_KEYS)) \
            or reading.service_tier
        batch = reading.batch or ((plan is None or plan.batch_key) and span_says_batch(attributes))
        if tier == contract.TIER_BATCH:
            tier, batch = contract.TIER_DEFAULT, True
        if tier:
            call.service_tier = tier
        if batch or (self._batch_rules and self._batch_rules.matches(service, environment, attributes,
                                                                      span.resource)):
            call.batch = True
        return call

    def tool_call(self, span: SpanRecord) -> ToolCall | None:
        """The tool execution a span skipped as `non_inference` describes, when it names its tool."""
        tool = tool_name_of(span.attributes, self._cap)
        if not tool:
            return None
        _, service, environment, _, _, _ = self._resource_labels(span.resource)
        is_error = span.is_error or span.attributes.get(ERROR_TYPE) is not None
        return ToolCall(service, environment, tool, contract.STATUS_ERROR if is_error else contract.STATUS_OK,
                        span.end_ns)

    def template_key(self, span: SpanRecord) -> tuple[Any, ...] | None:
        """The key of `span`'s call template (conventions.templates), or None when the span needs the
        full classifier. Spans with equal keys classify into calls equal in every field but tokens,
        duration, time to first token and end time; `key[0]` is the shape's `Plan`."""
        plans = self._plans
        if plans is None:
            return None
        attributes = span.attributes
        plan = plans.plan(span, attributes)
        if plan is None or plan.template is None:
            return None
        if (plan.hint_system or plan.hint_resource) and self._hinted_away(plan, span):
            return None
        return (plan, self._resource_labels(span.resource)[4], span.is_error, plan.template.values(attributes))

    def from_template(self, template: LLMCall, span: SpanRecord, counts: tuple[int | None, ...]) -> LLMCall:
        """The call of `span`, whose template key is that of `template`'s span and whose raw token
        counts are `counts` (`templates.token_counts`): `template` with this span's numbers. The
        dimensions mapping is shared with the template (calls never change it)."""
        inp, out, cache_read, cache_write, reasoning = counts
        if inp is None and out is None and cache_read is None and cache_write is None and reasoning is None:
            tokens = TokenCounts()
        else:  # the shortcut's sources: input includes the cache, reasoning is a part of output
            tokens = split_counts(inp, out, cache_read, cache_write, reasoning, None, True, True)
        duration_ns = span.end_ns - span.start_ns
        t = template
        call = LLMCall(t.service, t.environment, t.provider, t.model, t.operation, t.status, t.error_type,
                       duration_ns / 1e9 if 0 < duration_ns <= MAX_CALL_NS else 0.0,  # else unknown (times.py)
                       event_ttft(span) if span.events else None,
                       tokens, span.end_ns, t.dimensions, t.source, t.unmetered, t.cache_write_1h)
        if t.service_tier or t.batch or t.estimate:  # the price context is the template's (its deciding values)
            call.service_tier, call.batch, call.estimate = t.service_tier, t.batch, t.estimate
        return call

    def _label(self, value: object) -> str:
        """`value` as a label value: a string of at most limits.max_label_value_length characters."""
        text = value if type(value) is str else str(value)
        return text if len(text) <= self._cap else text[: self._cap]

    def _resource_labels(self, resource: Mapping[str, Any]) -> _ResourceLabels:
        """Service, environment and resource-side dimension values of `resource` (cached by identity), the
        key of what in it decides a call, and whether it says OpenLIT."""
        last = self._last_resource
        if last[0] is resource:
            return last
        dimensions: dict[str, str] = {}
        for name, keys, use_resource in self._dimensions:
            value = first_present(resource, keys) if use_resource else None
            if value is not None:
                dimensions[name] = self._label(value)
        service = first_present(resource, self._service_keys)
        environment = first_present(resource, self._environment_keys)
        service_label = self._label(service) if service is not None else contract.UNKNOWN
        environment_label = self._label(environment) if environment is not None else contract.UNKNOWN
        openlit = is_openlit(resource)
        key: tuple[object, ...] = (service_label, environment_label, *dimensions.items())
        if openlit:
            key += (_OPENLIT,)
        rule_keys = self._batch_rules.attribute_keys
        if rule_keys:  # batch rules may read resource attributes
            key += (tuple(map(resource.get, rule_keys)),)
        last = (resource, service_label, environment_label, dimensions, key, openlit)
        self._last_resource = last
        return last

    def _dimension_values(self, attributes: Mapping[str, Any], from_resource: dict[str, str],
                          dimensions: Dimensions) -> dict[str, str]:
        """Raw values of the active dimensions: span keys first, then resource keys; absent -> omitted.
        `dimensions` are the configured ones, or a plan's (only the keys its shape carries)."""
        values: dict[str, str] = {}
        get = attributes.get
        cap = self._cap
        for name, keys, _ in dimensions:
            for key in keys:
                value = get(key)
                if value is not None and value != "":
                    values[name] = value if type(value) is str and len(value) <= cap else self._label(value)
                    break
            else:
                if name in from_resource:
                    values[name] = from_resource[name]
        return values


_ResourceLabels = tuple[object, str, str, dict[str, str], tuple[object, ...], bool]
_OPENLIT = ("\x00resource", "openlit")  # in a resource key: the resource says OpenLIT made its spans

READERS = {
    SOURCE_SEMCONV: read_gen_ai,
    SOURCE_OTEL_CONTRIB: read_gen_ai,
    SOURCE_BOTOCORE: read_gen_ai,
    SOURCE_OPENLLMETRY: read_gen_ai,
    SOURCE_OPENLIT: read_gen_ai,
    SOURCE_PYDANTIC_AI: read_gen_ai,
    SOURCE_ADK: read_gen_ai,
    SOURCE_OPENINFERENCE: read_openinference,
    SOURCE_VERCEL: read_vercel,
    SOURCE_LANGSMITH: read_langsmith,
}
