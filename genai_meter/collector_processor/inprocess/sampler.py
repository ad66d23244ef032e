"""A sampler wrapper that lets the in-process meter see every LLM call, sampled or not."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from genai_meter.conventions import is_candidate


class MeteringSampler(Sampler):
    """Wraps the app's sampler so that dropped GenAI spans are still recorded (not exported).

    Where `base` decides DROP for a span whose start attributes carry GenAI markers, this returns
    RECORD_ONLY: span processors (and so `CostSpanProcessor`) see the span, while exporters, which
    only export sampled spans, still honour the app's sampling rate. Every LLM call is counted.
    Instrumentations that set their GenAI attributes only after the span starts need `all_spans`.
    """

    def __init__(self, base: Sampler, *, all_spans: bool = False) -> None:
        self.base = base
        # record every dropped span (for instrumentations that set no GenAI attribute at start)
        self.all_spans = all_spans

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: TraceState | None = None) -> SamplingResult:
        result = self.base.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP and (self.all_spans or (attributes and is_candidate(attributes))):
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"MeteringSampler{{{self.base.get_description()}}}"
