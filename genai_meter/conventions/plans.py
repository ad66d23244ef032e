"""Compiled plans per span shape: what classification decides from a span's keys alone, worked out once.

Instrumentations emit few distinct attribute-key sets. A *shape* is (scope name, the attribute keys
in the order the span carries them); its `Plan` holds what `Conventions.classify` would otherwise
work out per span from the keys alone:

- the source family (only when the scope and the keys decide it: spans whose family depends on a
  value or on the span name get no plan and take the full classifier);
- whether the gen_ai.* reader can take its shortcut (`read_gen_ai_planned`): an operation key, no
  aggregate (agent-run) keys, a family with no per-span operation logic;
- per configured dimension, only the keys the shape carries, in preference order;
- whether any key mentions 1-hour cache writes (`values.says_1h` is only run when one does).

Exact by construction: a plan only skips tests whose answer the keys already fix; every value is
still read and judged by the same code as the full path (tests/conventions/test_shape_plans.py
checks both paths on every fixture). The cache is bounded (`MAX_PLANS`, then it starts over) and
thread-safe without locks (a racing miss compiles twice; plans are immutable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genai_meter.conventions.family import family_of_scope
from genai_meter.conventions.keys import (
    AI_OPERATION_ID,
    GEN_AI_OPERATION_NAME,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    LANGSMITH_SPAN_KIND,
    OPENINFERENCE_SPAN_KIND,
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
)
from genai_meter.conventions.templates import TemplateKeys, template_keys
from genai_meter.conventions.values import seconds
from genai_meter.records import SpanRecord

MAX_PLANS = 1024  # shapes remembered; past it the cache starts over
# Families read by `read_gen_ai` whose operation comes from gen_ai.operation.name alone
GEN_AI_SHORTCUT_FAMILIES = frozenset({SOURCE_OTEL_CONTRIB, SOURCE_BOTOCORE})
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


class ShapePlans:
    """The bounded cache of plans for one `Conventions` (its dimensions)."""

    def __init__(self, dimensions: Dimensions) -> None:
        self.dimensions = dimensions
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
        """The plan of one shape, or None when a value or the span name can change its family."""
        present = frozenset(keys)
        if not present.isdisjoint(_KEYED_FAMILIES) or not scope:
            return None
        family = family_of_scope(scope)
        if family is None or family == SOURCE_OPENLLMETRY:  # decided by values, or by the span name
            return None
        shortcut = (family in GEN_AI_SHORTCUT_FAMILIES and GEN_AI_OPERATION_NAME in present
                    and not is_run_totals(dict.fromkeys(present)))
        dimensions = tuple((name, tuple(k for k in dim_keys if k in present), resource)
                           for name, dim_keys, resource in self.dimensions)
        one_hour_keys = any("ephemeral_1h" in k for k in keys)
        ttft_key = GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in present
        dimension_keys = frozenset(k for _, dim_keys, _ in dimensions for k in dim_keys)
        template = template_keys(present, keys, dimension_keys, shortcut=shortcut, one_hour_keys=one_hour_keys,
                                 ttft_key=ttft_key)
        return Plan(family, shortcut, dimensions, one_hour_keys, ttft_key, template)


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

