"""Forwarding: received spans go on to a trace store over OTLP/HTTP, with their cost on them.

Optional, and never the only path for traces (docs/topologies.md): the recommended topology has the
user's Collector send traces to the trace store and, separately, to genai-meter. When
`server.forward_endpoint` is set, the receiver hands each request to `Forwarder.submit` *after*
counting it; a sender thread adds cost attributes to the counted LLM spans, strips message content
(`server.forward_strip_content`, on by default) and POSTs the request as `application/x-protobuf`.

Forwarding trouble never reaches counting: `submit` only appends to a queue bounded by spans
(`MAX_QUEUED_SPANS`) and drops what does not fit. Every span handed over ends in exactly one of
`genai_meter_spans_forwarded_total` or `genai_meter_spans_forward_dropped_total{reason}`:

- `queue_full`: the queue held `max_queued_spans` spans already (the downstream is slow or down);
- `retries_exhausted`: retryable answers (429, 502, 503, 504, connection errors, timeouts) for
  longer than `RetryPolicy.max_elapsed_s`;
- `rejected`: any other non-2xx answer (never retried, as OTLP asks), spans the downstream
  reported in `partial_success.rejected_spans`, or a server certificate that fails verification;
- `shutdown`: still queued or in flight when `shutdown`'s time bound ran out, or submitted after it;
- `error`: the request could not be rewritten, serialized or sent for an unexpected reason (a bug;
  logged).

The HTTP side is forwarding.client (standard library `http.client`, one keep-alive connection).
"""

from __future__ import annotations

import gzip
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from genai_meter import __version__, contract
from genai_meter.collector_processor.forwarding.client import OtlpHttpClient
from genai_meter.collector_processor.forwarding.cost_attributes import annotate_span, strip_content
from genai_meter.config import Config
from genai_meter.records import Cost, LLMCall

log = logging.getLogger("genai_meter")

MAX_QUEUED_SPANS = 100_000  # spans waiting to be sent; past it new requests are dropped (queue_full)
DROP_LOG_INTERVAL_S = 60.0  # a drop reason is logged at most once per interval (it is always counted)
DEFAULT_TRACES_PATH = "/v1/traces"  # used when the endpoint URL has no path

DROP_QUEUE_FULL = "queue_full"
DROP_RETRIES_EXHAUSTED = "retries_exhausted"
DROP_REJECTED = "rejected"
DROP_SHUTDOWN = "shutdown"
DROP_ERROR = "error"

Counted = Mapping[tuple[bytes, bytes], tuple[LLMCall, Cost | None]]


class SelfRecorder(Protocol):
    """Where forwarding counts itself (any `meter.Recorder` fits)."""

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long one request is tried. Waits grow exponentially with jitter (the Collector's shape)."""

    attempt_timeout_s: float = 10.0  # one POST: connect, send, answer
    max_elapsed_s: float = 60.0  # give up (retries_exhausted) once a request has been tried this long
    initial_backoff_s: float = 0.5  # first wait after a retryable answer
    max_backoff_s: float = 10.0  # waits double up to this
    jitter: float = 0.5  # each wait is drawn uniformly from backoff * [1 - jitter, 1 + jitter]
    retry_after_cap_s: float = 30.0  # a longer Retry-After is cut to this


class _Item(NamedTuple):
    request: ExportTraceServiceRequest
    counted: Counted
    spans: int


def span_count(request: ExportTraceServiceRequest) -> int:
    """Number of spans in an OTLP request."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class Forwarder:
    """Sends received OTLP requests on to `endpoint`, cost attributes added, content stripped.

    Threads: `submit` is called from the receiver's threads; one sender thread (started by `start`)
    does all rewriting and I/O. Ownership: `submit` takes the request object and the `counted`
    mapping over; the caller must not read or modify either afterwards, since the sender thread
    mutates the request in place (no copy is made, so forwarding costs no second parse).
    """

    def __init__(self, config: Config, recorder: SelfRecorder, *, endpoint: str | None = None,
                 headers: dict[str, str] | None = None, max_queued_spans: int = MAX_QUEUED_SPANS,
                 retry: RetryPolicy | None = None, compression: str | None = None,
                 strip_content: bool | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        """`endpoint` defaults to `config.server.forward_endpoint` (an OTLP/HTTP traces URL; a URL
        without a path gets /v1/traces). `headers` are sent with every request (e.g. Authorization).
        `compression` "gzip" compresses bodies; `strip_content` defaults to
        `config.server.forward_strip_content`. Raises ValueError for a missing or unusable URL."""
        url = endpoint if endpoint is not None else config.server.forward_endpoint
        if not url:
            raise ValueError("forwarding needs an endpoint (server.forward_endpoint or --forward-endpoint)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"forward endpoint must be an http:// or https:// URL, got {url!r}")
        if compression not in (None, "none", "gzip"):
            raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"forward endpoint {url!r}: {exc}") from None
        https = parts.scheme == "https"
        port = port or (443 if https else 80)
        path = parts.path if parts.path not in ("", "/") else DEFAULT_TRACES_PATH
        self.endpoint = f"{parts.scheme}://{parts.hostname}:{port}{path}"  # for logs: no credentials
        self._gzip = compression == "gzip"
        sent_headers = {"Content-Type": "application/x-protobuf", "User-Agent": f"genai-meter/{__version__}"}
        if self._gzip:
            sent_headers["Content-Encoding"] = "gzip"
        sent_headers.update(headers or {})
        self._client = OtlpHttpClient(parts.hostname, port, f"{path}?{parts.query}" if parts.query else path,
                                      sent_headers, https=https, ssl_context=ssl_context)
        self._strip = config.server.forward_strip_content if strip_content is None else strip_content
        self._recorder = recorder
        self._retry = retry or RetryPolicy()
        self._max_spans = max_queued_spans

        self._cond = threading.Condition()  # guards the queue and the lifecycle flags below
        self._queue: deque[_Item] = deque()
        self._queued_spans = 0
        self._closing = False  # shutdown began: no new items, flush until the deadline
        self._stopped = False  # the deadline passed: the sender stops
        self._deadline: float | None = None  # monotonic; set by shutdown
        self._sleep = threading.Condition()  # retry waits; notified when shutdown begins or ends
        self._thread: threading.Thread | None = None
        self._last_drop_log: dict[str, float] = {}

    # --- receiver side -------------------------------------------------------------------------

    @property
    def queued_spans(self) -> int:
        """Spans waiting to be sent (not counting the request in flight)."""
        return self._queued_spans

    def start(self) -> None:
        """Start the sender thread (a daemon). Calling it again does nothing."""
        with self._cond:
            if self._thread is not None or self._closing:
                return
            self._thread = threading.Thread(target=self._run, name="genai-meter-forwarder", daemon=True)
        self._thread.start()

    def submit(self, request: ExportTraceServiceRequest, counted: Counted) -> None:
        """Queue a counted request for forwarding, taking ownership of it. Non-blocking, never raises.

        `counted` maps (trace_id, span_id) of each counted LLM span in `request` to its call and cost
        (cost None: unpriced). A request that does not fit the queue is dropped and counted.
        """
        try:
            spans = span_count(request)
            if spans == 0:
                return
            with self._cond:
                if self._closing:
                    reason = DROP_SHUTDOWN
                elif self._queued_spans + spans > self._max_spans:
                    reason = DROP_QUEUE_FULL
                else:
                    self._queue.append(_Item(request, counted, spans))
                    self._queued_spans += spans
                    self._cond.notify()
                    return
            self._drop(reason, spans, f"{self._queued_spans} spans already queued" if reason == DROP_QUEUE_FULL
                       else "submitted after shutdown")
        except Exception:  # never into the receiver
            log.exception("genai-meter: forwarding could not queue a request")

    def shutdown(self, timeout_s: float) -> None:
        """Stop taking requests, send what can be sent within `timeout_s`, then stop.

        Returns within about `timeout_s` (plus up to half a second to unblock a stuck socket).
        Whatever is still queued or in flight then is counted as dropped{reason="shutdown"}.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()
            thread = self._thread
        self._wake_sleeper()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._stopped = True
            leftovers = list(self._queue)
            self._queue.clear()
            self._queued_spans = 0
            self._cond.notify_all()
        self._wake_sleeper()
        left = sum(item.spans for item in leftovers)
        if left:
            self._drop(DROP_SHUTDOWN, left, "still queued at the end of shutdown")
        if thread is not None and thread.is_alive():
            self._client.abort()  # unblock a request stuck on the network; it counts itself
            thread.join(0.5)

    # --- sender thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if self._stopped or not self._queue:
                        return
                    item = self._queue.popleft()
                    self._queued_spans -= item.spans
                try:
                    self._deliver(item)
                except Exception:  # a bug must not stop the sender (the queue would only fill)
                    log.exception("genai-meter: forwarding failed unexpectedly")
                    self._client.close()
                    self._drop(DROP_ERROR, item.spans, "unexpected error while sending")
        finally:
            self._client.close()

    def _deliver(self, item: _Item) -> None:
        """Rewrite, serialize and send one request, retrying; counts its outcome exactly once."""
        try:
            body = self._prepare(item.request, item.counted)
        except Exception:
            log.exception("genai-meter: a request could not be prepared for forwarding")
            self._drop(DROP_ERROR, item.spans, "rewrite or serialization failed")
            return
        policy = self._retry
        started = time.monotonic()
        backoff = policy.initial_backoff_s
        while True:
            limit, reason = self._limit(started)
            remaining = limit - time.monotonic()
            if remaining <= 0:
                self._drop(reason, item.spans, "no time left to send")
                return
            answer = self._client.post(body, min(policy.attempt_timeout_s, remaining))
            if answer.kind == "ok":
                rejected = min(answer.rejected_spans, item.spans)
                if item.spans - rejected:
                    self._count(contract.SELF_SPANS_FORWARDED, item.spans - rejected)
                if rejected:
                    self._drop(DROP_REJECTED, rejected, f"partial success: {answer.detail}")
                return
            if answer.kind == "reject":
                self._drop(DROP_REJECTED, item.spans, answer.detail)
                return
            wait = backoff * random.uniform(1.0 - policy.jitter, 1.0 + policy.jitter)
            backoff = min(backoff * 2.0, policy.max_backoff_s)
            if answer.retry_after_s is not None:  # never sooner than asked (a 0 does not mean hammer)
                wait = max(wait, min(answer.retry_after_s, policy.retry_after_cap_s))
            if not self._wait(time.monotonic() + wait, started):
                limit, reason = self._limit(started)
                self._drop(reason, item.spans, f"last answer: {answer.detail}")
                return

    def _limit(self, started: float) -> tuple[float, str]:
        """When this request must be given up, and under which reason."""
        limit, reason = started + self._retry.max_elapsed_s, DROP_RETRIES_EXHAUSTED
        if self._stopped:
            return float("-inf"), DROP_SHUTDOWN
        deadline = self._deadline
        if deadline is not None and deadline <= limit:
            limit, reason = deadline, DROP_SHUTDOWN
        return limit, reason

    def _wait(self, wake_at: float, started: float) -> bool:
        """Sleep until `wake_at`; False (at once) if that is past the request's limit, which
        shutdown may bring forward while sleeping."""
        with self._sleep:
            while True:
                limit, _ = self._limit(started)
                if wake_at >= limit:
                    return False
                now = time.monotonic()
                if now >= wake_at:
                    return True
                self._sleep.wait(wake_at - now)

    def _wake_sleeper(self) -> None:
        with self._sleep:
            self._sleep.notify_all()

    def _prepare(self, request: ExportTraceServiceRequest, counted: Counted) -> bytes:
        if counted or self._strip:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        if counted:
                            entry = counted.get((span.trace_id, span.span_id))
                            if entry is not None:
                                annotate_span(span, entry[0], entry[1])
                        if self._strip:
                            strip_content(span)
        body = request.SerializeToString()
        return gzip.compress(body, compresslevel=1) if self._gzip else body

    # --- accounting ----------------------------------------------------------------------------

    def _count(self, name: str, amount: float, **labels: str) -> None:
        try:
            self._recorder.record_self(name, amount, **labels)
        except Exception:  # a broken sink must not stop forwarding
            log.debug("genai-meter: self-metric %s not recorded", name, exc_info=True)

    def _drop(self, reason: str, spans: int, detail: str) -> None:
        self._count(contract.SELF_SPANS_FORWARD_DROPPED, spans, reason=reason)
        now = time.monotonic()
        last = self._last_drop_log.get(reason)
        if last is None or now - last >= DROP_LOG_INTERVAL_S:
            self._last_drop_log[reason] = now
            log.warning("genai-meter: dropped %d spans forwarding to %s (%s: %s); counted in %s, "
                        "logged at most once a minute", spans, self.endpoint, reason, detail,
                        contract.SELF_SPANS_FORWARD_DROPPED)
