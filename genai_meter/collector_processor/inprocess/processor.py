"""In-process metering: an OTel SDK SpanProcessor that meters the LLM spans an app ends.

`CostSpanProcessor.on_end` runs on the thread that ended the span. It never raises into the app and
never blocks: a cheap marker check drops non-GenAI spans, GenAI spans go through the shared `Meter`
(plain arithmetic and counter updates under one short lock, no I/O).

A GenAI span whose end time is no plausible instant (conventions.times.EndTimes: not an int in
0..2^63 - 1, later than the clock plus `receiver.max_future_skew_seconds`, or, with a ledger, older than
`ledger.retention_days`) is not metered: there is no client to refuse it to, so it is skipped and counted
in genai_meter_spans_rejected_total{reason} (the receiver's reasons), as the receiver counts the spans
it refuses.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from genai_meter.collector_processor.inprocess.ledger_recorder import LedgerRecorder
from genai_meter.collector_processor.metering import Recorder, build_meter
from genai_meter.config import Config, load_config
from genai_meter.conventions import MARKER_KEYS, is_candidate
from genai_meter.conventions.times import INT63, EndTimes
from genai_meter.exporters import UsageMetrics
from genai_meter.exporters.endpoint import start_metrics_server
from genai_meter.exporters.httpd import HttpServer
from genai_meter.ledger.urls import LEDGER_ENV
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
    if type(span) is ReadableSpan:  # what the SDK's Span.end() hands to processors
        return _sdk_span_record(span, _plain(span._attributes))
    return _public_span_record(span)


def _sdk_span_record(span: ReadableSpan, attributes: Mapping[str, object]) -> SpanRecord:
    """`span_record` for the SDK's own ReadableSpan, read from its fields.

    Speed: its properties cost more than what they return (`events` copies the event list into a
    tuple, `attributes` wraps the dict in a MappingProxyType, TraceState's truth test runs a
    Python `__len__`), and they run for every LLM span. The SDK never changes an ended span's
    fields (they are immutable after `end()`), so reading them directly is the same data.
    """
    context = span._context
    parent = span._parent
    scope = span._instrumentation_scope
    status = span._status
    events = span._events
    if context is not None:
        trace_id = context.trace_id.to_bytes(16, "big")
        span_id = context.span_id.to_bytes(8, "big")
        state = context.trace_state
        trace_state = state.to_header() if getattr(state, "_dict", state) else ""
    else:
        trace_id = span_id = b""
        trace_state = ""
    # positional, in SpanRecord's field order (records.py): keywords cost twice as much
    return SpanRecord(
        span._name,
        attributes,  # `_plain(span._attributes)`, which the caller has at hand
        _resource_attributes(span._resource),
        span._start_time or 0,
        span._end_time or 0,
        status is not None and status.status_code is StatusCode.ERROR,
        scope.name if scope is not None else "",
        trace_id,
        span_id,
        parent.span_id.to_bytes(8, "big") if parent is not None else b"",
        trace_state,
        # a BoundedList's truth test is a Python __len__; its deque's is not
        tuple([(event.name, event.timestamp) for event in events]) if getattr(events, "_dq", events) else (),
    )


_last_resource: tuple[object, Mapping[str, object]] = (None, _EMPTY)


def _resource_attributes(resource: object) -> Mapping[str, object]:
    """The attribute dict of `resource`, remembered for the last resource seen (a provider's spans
    share one; replaced as a whole, so thread-safe)."""
    global _last_resource
    last = _last_resource
    if last[0] is resource and resource is not None:
        return last[1]
    plain = _plain(resource.attributes) if resource is not None else _EMPTY  # type: ignore[attr-defined]
    _last_resource = (resource, plain)
    return plain


def _public_span_record(span: ReadableSpan) -> SpanRecord:
    """`span_record` through the public ReadableSpan properties (any other implementation)."""
    context = span.context
    resource = span.resource
    scope = span.instrumentation_scope
    status = span.status
    events = span.events
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
        events=tuple((event.name, event.timestamp) for event in events) if events else (),
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
                 recorders: Sequence[Recorder] = (), ledger_url: str | None = None) -> None:
        self.config = config if config is not None else load_config()
        self.metrics = metrics if metrics is not None else UsageMetrics(self.config)
        # a ClickHouse ledger only when asked for (argument, $GENAI_METER_LEDGER, ledger.url): never a default
        url = ledger_url or os.environ.get(LEDGER_ENV) or self.config.ledger.url
        self.ledger = LedgerRecorder.from_config(self.config, url, self.metrics)
        extra = (self.ledger,) if self.ledger is not None else ()
        self.meter = build_meter(self.config, (self.metrics, *recorders, *extra))
        # a ledger (this one, or one among the extra recorders) keeps calls for ledger.retention_days
        ledgers = self.ledger is not None or any(isinstance(r, LedgerRecorder) for r in recorders)
        self.end_times = EndTimes.of(self.config, ledgers)
        # the bounds, relative to the clock, for the comparisons of `_meter` (without a ledger: 2^64 ns of
        # retention, no lower bound beyond 0)
        self._skew_ns = self.end_times.max_future_skew_ns
        self._retention_ns = self.end_times.retention_ns if self.end_times.retention_ns is not None else 1 << 64
        self._server: HttpServer | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Meter `span` if it is a GenAI span. Never raises, never blocks on I/O."""
        try:
            # most spans end here: one C-level scan of the keys of the dict under the SDK's
            # BoundedAttributes (the `attributes` property would wrap it, and iterate it in Python)
            if type(span) is ReadableSpan:
                attributes = _plain(span._attributes)
                if attributes and not MARKER_KEYS.isdisjoint(attributes):
                    self._meter(_sdk_span_record(span, attributes))
                return
            public = span.attributes
            if public and is_candidate(public):
                self._meter(span_record(span))
        except Exception:  # pragma: no cover - Meter.process already counts its own failures
            log.debug("genai-meter: span skipped after an unexpected error", exc_info=True)

    def _meter(self, record: SpanRecord) -> None:
        """Meter `record` when its end time is a plausible instant (`self.end_times` now), else count it as
        rejected with the reason (the comparisons of EndTimes.bounds, inlined: one clock reading per span)."""
        end = record.end_ns
        now = time.time_ns()
        if type(end) is int and 0 <= end < INT63 and now - self._retention_ns <= end <= now + self._skew_ns:
            self.meter.process(record)
        else:
            self.meter.record_rejected(EndTimes.reason(end, *self.end_times.bounds(now)))

    def serve_metrics(self, listen: str = "127.0.0.1:9464") -> None:
        """Expose `self.metrics` on http://LISTEN/metrics from a daemon thread."""
        self._server = start_metrics_server(self.metrics, listen)

    def shutdown(self) -> None:
        """Hand queued calls to the ledger; stop the metrics endpoint, if this processor started one."""
        if self.ledger is not None:
            self.ledger.close()
        server = self._server
        self._server = None
        if server is not None:
            server.stop()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: counts are updated in `on_end`."""
        return True
