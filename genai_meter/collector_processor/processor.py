"""In-process metering: an OTel SDK SpanProcessor, and a sampler that lets it see every LLM call.

`CostSpanProcessor.on_end` runs on the thread that ended the span. It never raises into the app and
never blocks: a cheap marker check drops non-GenAI spans, GenAI spans go through the shared `Meter`
(plain arithmetic and counter updates under one short lock, no I/O).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from genai_meter.collector_processor.meter import Meter, Recorder
from genai_meter.config import Config, load_config
from genai_meter.conventions import is_candidate
from genai_meter.exporters import UsageMetrics
from genai_meter.records import SpanRecord

log = logging.getLogger("genai_meter")

_EMPTY: Mapping[str, object] = {}


def _plain(attributes: object) -> Mapping[str, object]:
    """The dict under the SDK's BoundedAttributes (immutable once a span has ended), else the mapping.

    Reading through BoundedAttributes' own methods doubles the cost of classifying a span.
    """
    plain = getattr(attributes, "_dict", None)
    if isinstance(plain, dict):
        return plain
    return attributes if attributes is not None else _EMPTY  # type: ignore[return-value]


def span_record(span: ReadableSpan) -> SpanRecord:
    """The neutral view of an SDK span (no copies of the attribute mappings)."""
    context = span.context
    resource = span.resource
    scope = span.instrumentation_scope
    status = span.status
    return SpanRecord(
        name=span.name,
        attributes=_plain(getattr(span, "_attributes", None) or span.attributes),
        resource=_plain(resource.attributes) if resource is not None else _EMPTY,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        is_error=status is not None and status.status_code is StatusCode.ERROR,
        scope_name=scope.name if scope is not None else "",
        trace_id=context.trace_id.to_bytes(16, "big") if context is not None else b"",
        span_id=context.span_id.to_bytes(8, "big") if context is not None else b"",
        parent_span_id=span.parent.span_id.to_bytes(8, "big") if span.parent is not None else b"",
        trace_state=context.trace_state.to_header() if context is not None and context.trace_state else "",
        events=tuple((event.name, event.timestamp) for event in span.events) if span.events else (),
    )


class CostSpanProcessor(SpanProcessor):
    """Meters every LLM span the app ends into usage and cost metrics.

    Add it to the app's TracerProvider *before* any sampling decision can drop spans (see
    `MeteringSampler`): a span that is never recorded never reaches `on_end` and is never counted.
    The metrics are in `self.metrics` (a `UsageMetrics`, scrape it with `serve_metrics` or
    register `self.metrics.as_collector()` in a prometheus_client registry) and, optionally, in
    further recorders such as `OTelMetricsRecorder` for OTLP push.
    """

    def __init__(self, config: Config | None = None, *, metrics: UsageMetrics | None = None,
                 recorders: Sequence[Recorder] = ()) -> None:
        self.config = config if config is not None else load_config()
        self.metrics = metrics if metrics is not None else UsageMetrics(self.config)
        self.meter = Meter(self.config, (self.metrics, *recorders))
        self._server: object | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Meter `span` if it is a GenAI span. Never raises, never blocks on I/O."""
        try:
            attributes = span.attributes
            if not attributes or not is_candidate(attributes):
                return
            self.meter.process(span_record(span))
        except Exception:  # pragma: no cover - Meter.process already counts its own failures
            log.debug("genai-meter: span skipped after an unexpected error", exc_info=True)

    def serve_metrics(self, listen: str = "127.0.0.1:9464") -> None:
        """Expose `self.metrics` on http://LISTEN/metrics from a daemon thread."""
        from genai_meter.collector_processor.metrics_http import start_metrics_server

        self._server = start_metrics_server(self.metrics, listen)

    def shutdown(self) -> None:
        """Stop the metrics endpoint, if this processor started one."""
        server = self._server
        self._server = None
        if server is not None:
            server.stop()  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: counts are updated in `on_end`."""
        return True


class MeteringSampler(Sampler):
    """Wraps the app's sampler so that dropped GenAI spans are still recorded (not exported).

    Where `base` decides DROP for a span whose start attributes carry GenAI markers, this returns
    RECORD_ONLY: span processors (and so `CostSpanProcessor`) see the span, while exporters, which
    only export sampled spans, still honour the app's sampling rate. Every LLM call is counted.
    Instrumentations that set their GenAI attributes only after the span starts need `all_spans`.
    """

    def __init__(self, base: Sampler, *, all_spans: bool = False) -> None:
        self.base = base
        self.all_spans = all_spans  # record every dropped span (for instrumentations that set no GenAI attribute at start)

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: TraceState | None = None) -> SamplingResult:
        result = self.base.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP and (self.all_spans or (attributes and is_candidate(attributes))):
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"MeteringSampler{{{self.base.get_description()}}}"
