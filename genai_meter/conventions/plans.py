"""Compiled plans per span shape: what classification decides from a span's keys alone, worked out once.

Instrumentations emit few distinct attribute-key sets. A *shape* is (scope name, the attribute keys
in the order the span carries them); its `Plan` holds what `Conventions.classify` would otherwise
work out per span from the keys alone:

- the source family (`family.family_of`: the family-defining keys, the scope as a hint, then the keys;
  shapes of the key-defined families, Vercel, OpenInference with a span kind and LangSmith, get no plan
  and take the full classifier). Two values can still change a key-told family: `gen_ai.system` naming
  Google ADK, and `telemetry.sdk.name` naming OpenLIT on the resource; the plan says when one may
  (`hint_system`, `hint_resource`) and the classifier then checks the value (`Conventions.classify`);
- whether the gen_ai.* reader can take its shortcut (`read_gen_ai_planned`): an operation key, no
  aggregate (agent-run) keys, no OpenLLMetry span kind, a family with no per-span operation logic;
- per configured dimension, only the keys the shape carries, in preference order;
- whether any key mentions 1-hour cache writes (`values.says_1h` is only run when one does);
- the service-tier keys the shape carries (response first), whether it says batch (`genai_meter.batch`),
  and the keys whose values are billed units (`genai_meter.usage.*`, Anthropic's 1-hour cache writes,
  image generation): a shape with units takes no template.

The same gen_ai.* span therefore takes the same plan, shortcut and template under any scope name but the
few that name a family of their own (docs/conventions.md).

Exact by construction: a plan only skips tests whose answer the keys already fix; every value is
still read and judged by the same code as the full path (tests/conventions/test_shape_plans.py
checks both paths on every fixture). The cache is bounded (`MAX_PLANS`, then it starts over) and
thread-safe without locks (a racing miss compiles twice; plans are immutable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genai_meter.conventions.family import VALUE_HINTED, family_of_keys, family_of_scope
from genai_meter.conventions.keys import (
    AI_OPERATION_ID,
    ANTHROPIC_CACHE_WRITE_1H,
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_IMAGE_SIZE,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_SYSTEM,
    GENAI_METER_BATCH,
    GENAI_METER_USAGE_PREFIX,
    LANGSMITH_SPAN_KIND,
    OPENINFERENCE_SPAN_KIND,
    TELEMETRY_SDK_NAME,
    TIER_KEYS,
    TRACELOOP_SPAN_KIND,
    UNIT_KEY_PREFIXES,
    UNIT_KEYS,
)
from genai_meter.conventions.pydantic_ai import is_run_totals
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.semconv import DETAILS, read_gen_ai, read_usage_and_model
from genai_meter.conventions.tables import (
    OPERATION_OUTCOMES,
    SKIPS,
    SOURCE_BOTOCORE,
    SOURCE_OPENLLMETRY,
    SOURCE_OTEL_CONTRIB,
    SOURCE_SEMCONV,
)
from genai_meter.conventions.templates import TemplateKeys, template_keys
from genai_meter.conventions.values import seconds
from genai_meter.records import SpanRecord

MAX_PLANS = 1024  # shapes remembered; past it the cache starts over
# Families read by `read_gen_ai` whose operation comes from gen_ai.operation.name alone (OpenLLMetry's when
# the shape has no traceloop.span.kind)
GEN_AI_SHORTCUT_FAMILIES = frozenset({SOURCE_OTEL_CONTRIB, SOURCE_BOTOCORE, SOURCE_SEMCONV, SOURCE_OPENLLMETRY})
# Keys whose values a reader common to every source reads as units (conventions.units); the other UNIT_KEYS
# are read by their source's reader
COMMON_UNIT_KEYS = frozenset({ANTHROPIC_CACHE_WRITE_1H, GEN_AI_REQUEST_IMAGE_SIZE})
_KEYED_FAMILIES = (AI_OPERATION_ID, OPENINFERENCE_SPAN_KIND, LANGSMITH_SPAN_KIND)  # family_of's key tests

Dimensions = tuple[tuple[str, tuple[str, ...], bool], ...]  # (name, attribute keys, read the resource too)


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """What the keys of one shape decide. Compared and hashed by identity (a part of template keys)."""

    family: str
    gen_ai_shortcut: bool  # `read_gen_ai_planned` applies
    dimensions: Dimensions  # as Conventions' dimensions, with only the keys this shape carries
    one_hour_keys: bool  # some key mentions ephemeral_1h (values.says_1h may find a count)
    ttft_key: bool  # gen_ai.response.time_to_first_chunk is present
    template: TemplateKeys | None = None  # the shape's calls follow templates (conventions.templates)
    hint_system: bool = False  # the keys told the family and gen_ai.system is there: ADK's value changes it
    hint_resource: bool = False  # the keys told the family: a resource saying OpenLIT changes it
    tier_keys: tuple[str, ...] = ()  # the service-tier keys of the shape, in keys.TIER_KEYS order
    batch_key: bool = False  # genai_meter.batch is present
    unit_keys: tuple[str, ...] = ()  # keys read as units by `Conventions` (genai_meter.usage.*, ...)


class ShapePlans:
    """The bounded cache of plans for one `Conventions` (its dimensions)."""

    def __init__(self, dimensions: Dimensions, deciding: tuple[str, ...] = ()) -> None:
        self.dimensions = dimensions
        self.deciding = frozenset(deciding)  # more keys whose values decide a call (batch rules)
        self._plans: dict[tuple[str, tuple[str, ...]], Plan | None] = {}

    def plan(self, span: SpanRecord, attributes: Mapping[str, Any]) -> Plan | None:
        """The plan of `span`'s shape; None: the shape needs the full classifier."""
        key = (span.scope_name, tuple(attributes))
        try:
            return self._plans[key]
        except KeyError:
            pass
        plan = self.compile(span.scope_name, key[1])
        plans = self._plans
        if len(plans) >= MAX_PLANS:
            plans.clear()
        plans[key] = plan
        return plan

    def compile(self, scope: str, keys: tuple[str, ...]) -> Plan | None:
        """The plan of one shape, or None when the keys do not decide its family."""
        present = frozenset(keys)
        if not present.isdisjoint(_KEYED_FAMILIES) or TELEMETRY_SDK_NAME in present:
            return None
        family = family_of_scope(scope) if scope else None
        hint_system = hint_resource = False
        if family is None:
            family = family_of_keys(present)
            hint_system = GEN_AI_SYSTEM in present
            hint_resource = family in VALUE_HINTED
        shortcut = (family in GEN_AI_SHORTCUT_FAMILIES and GEN_AI_OPERATION_NAME in present
                    and TRACELOOP_SPAN_KIND not in present and not is_run_totals(dict.fromkeys(present)))
        dimensions = tuple((name, tuple(k for k in dim_keys if k in present), resource)
                           for name, dim_keys, resource in self.dimensions)
        one_hour_keys = any("ephemeral_1h" in k for k in keys)
        ttft_key = GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in present
        unit_keys = tuple(k for k in keys if k in COMMON_UNIT_KEYS or k.startswith(GENAI_METER_USAGE_PREFIX))
        with_units = bool(unit_keys) or not present.isdisjoint(UNIT_KEYS) or any(
            k.startswith(UNIT_KEY_PREFIXES) for k in keys)
        deciding = frozenset(k for _, dim_keys, _ in dimensions for k in dim_keys) | (self.deciding & present)
        template = None if with_units else template_keys(
            present, keys, deciding, shortcut=shortcut, one_hour_keys=one_hour_keys, ttft_key=ttft_key)
        return Plan(family, shortcut, dimensions, one_hour_keys, ttft_key, template, hint_system, hint_resource,
                    tuple(k for k in TIER_KEYS if k in present), GENAI_METER_BATCH in present, unit_keys)


def read_gen_ai_planned(span: SpanRecord, a: Mapping[str, Any], plan: Plan) -> Reading | str:
    """`semconv.read_gen_ai` for a shape with `plan.gen_ai_shortcut`: the same reading, without the
    tests the keys have answered (agent-run totals, OpenLLMetry kinds). An operation value the
    shortcut has not seen before, or one that is no text, goes through `read_gen_ai` itself."""
    source = plan.family
    raw = a.get(GEN_AI_OPERATION_NAME)
    operation = OPERATION_OUTCOMES.get(raw) if type(raw) is str else None
    if not operation:
        return read_gen_ai(span, a, source)
    if operation in SKIPS:
        return operation
    reading = Reading(source, operation)
    provider_raw = read_usage_and_model(a, reading)
    hook = DETAILS.get(source)
    if hook is not None:
        hook(a, reading, provider_raw)
    if reading.ttft_s is None and plan.ttft_key:
        ttft = a.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttft is not None:
            reading.ttft_s = seconds(ttft)
    return reading

