"""Forwarding: counted spans go on to a real OTLP/HTTP receiver on loopback, cost added, content stripped.

The downstream is a small real OTLP/HTTP trace receiver (`Downstream`, below): it accepts
`POST /v1/traces` as application/x-protobuf (gzip too), decodes every delivered
ExportTraceServiceRequest and answers from a script (503, 429 + Retry-After, 400, partial success),
so retries, rejections and drops are exercised over real sockets. The only double is `SelfMetrics`,
the sink of the forwarder's genai_meter_* self-metrics.
"""

from __future__ import annotations

import gzip
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from genai_meter import contract
from genai_meter.collector_processor.forwarding import cost_attributes as ca
from genai_meter.collector_processor.forwarding.client import parse_retry_after
from genai_meter.collector_processor.forwarding.forwarder import (
    DROP_QUEUE_FULL,
    DROP_REJECTED,
    DROP_RETRIES_EXHAUSTED,
    DROP_SHUTDOWN,
    Forwarder,
    RetryPolicy,
    span_count,
)
from genai_meter.config import Config, ServerConfig
from genai_meter.records import Cost, LLMCall, TokenCounts

pytestmark = pytest.mark.timeout(60)

FAST_RETRY = RetryPolicy(attempt_timeout_s=2.0, max_elapsed_s=1.0, initial_backoff_s=0.05,
                         max_backoff_s=0.2, jitter=0.2, retry_after_cap_s=2.0)


# --- the downstream: a real OTLP/HTTP trace receiver on loopback ---------------------------------

class Downstream:
    """OTLP/HTTP receiver on 127.0.0.1 storing the requests it accepted (2xx answers only)."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]] | None = None,
                 delay_s: float = 0.0, close_after_response: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.script = deque(script or [])  # answers in order; then 200 with an empty response
        self.delay_s = delay_s
        self.close_after_response = close_after_response
        self.lock = threading.Lock()
        self.requests: list[ExportTraceServiceRequest] = []
        self.posts: list[tuple[float, dict[str, str], tuple[str, int]]] = []  # time, headers, peer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.downstream = self  # type: ignore[attr-defined]
        self.scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host}:{port}/v1/traces"

    def spans(self) -> list[Span]:
        with self.lock:
            return [span for request in self.requests for rs in request.resource_spans
                    for ss in rs.scope_spans for span in ss.spans]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver
    timeout = 10

    def do_POST(self) -> None:
        downstream: Downstream = self.server.downstream  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            return self._reply(404, {}, b"")
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self._reply(415, {}, b"")
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        with downstream.lock:
            downstream.posts.append((time.monotonic(), dict(self.headers), self.client_address))
            status, headers, payload = downstream.script.popleft() if downstream.script else (200, {}, b"")
            if 200 <= status < 300:
                downstream.requests.append(request)
        if downstream.delay_s:
            time.sleep(downstream.delay_s)
        self._reply(status, headers, payload)
        if downstream.close_after_response:
            self.close_connection = True  # close without saying so: a stale keep-alive for the client

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        if 200 <= status < 300 and not payload:
            payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def downstream(**kwargs) -> Iterator[Downstream]:
    server = Downstream(**kwargs)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


class SelfMetrics:
    """Test double for the self-metric sink: sums record_self calls by name and labels."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        with self.lock:
            self.values[(name, tuple(sorted(labels.items())))] += amount

    @property
    def forwarded(self) -> float:
        return self.values[(contract.SELF_SPANS_FORWARDED, ())]

    def dropped(self, reason: str) -> float:
        return self.values[(contract.SELF_SPANS_FORWARD_DROPPED, (("reason", reason),))]

    @property
    def dropped_total(self) -> float:
        return sum(v for (name, _), v in self.values.items() if name == contract.SELF_SPANS_FORWARD_DROPPED)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --- spans, calls and costs -----------------------------------------------------------------------

def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def attrs(kvs) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in kvs:
        assert item.key not in out, f"duplicate attribute {item.key}"
        which = item.value.WhichOneof("value")
        out[item.key] = getattr(item.value, which)
    return out


def make_span(n: int, attributes: dict[str, object], events: list[tuple[str, dict[str, object]]] = ()) -> Span:
    span = Span(trace_id=bytes([n]) * 16, span_id=bytes([n]) * 8, name=f"span-{n}",
                start_time_unix_nano=1_800_000_000_000_000_000, end_time_unix_nano=1_800_000_001_000_000_000)
    span.attributes.extend(kv(k, v) for k, v in attributes.items())
    for name, event_attrs in events:
        event = span.events.add(name=name, time_unix_nano=1_800_000_000_500_000_000)
        event.attributes.extend(kv(k, v) for k, v in event_attrs.items())
    return span


def make_request(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": [kv("service.name", "checkout")]},
        scope_spans=[ScopeSpans(scope={"name": "test"}, spans=list(spans))])])


def make_call(model: str = "gpt-4o") -> LLMCall:
    return LLMCall(service="checkout", environment="prod", provider="openai", model=model, operation="chat",
                   status="ok", error_type="", duration_s=1.0, ttft_s=None,
                   tokens=TokenCounts(input=6000, cache_read=4000, output=1500, reasoning=500),
                   end_ns=1_800_000_001_000_000_000)


COST = Cost(by_type={"input": Decimal("0.015"), "cache_read": Decimal("0.005"), "cache_write": Decimal("0"),
                     "output": Decimal("0.015"), "reasoning": Decimal("0.005"), "request": Decimal("0.0001")},
            price_source="overrides", price_version="2026-10-01", price_entry="openai/gpt-4o@2026-10-01")

SECRET = "my card number is 4111"
LLM_ATTRS = {
    "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 10000, "gen_ai.usage.output_tokens": 2000,
    "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": SECRET, "gen_ai.completion.0.content": SECRET,
    "gen_ai.prompt.name": "support-template", "gen_ai.input.messages": SECRET,
    "gen_ai.output.messages": SECRET, "gen_ai.system_instructions": SECRET,
}
LLM_EVENTS = [
    ("gen_ai.user.message", {"content": SECRET}),
    ("gen_ai.choice", {"message": SECRET}),
    ("gen_ai.content.prompt", {"gen_ai.prompt": SECRET}),
    ("gen_ai.client.inference.operation.details", {"gen_ai.input.messages": SECRET, "gen_ai.request.model": "gpt-4o"}),
    ("exception", {"exception.type": "Timeout"}),
]


def sample_request() -> tuple[ExportTraceServiceRequest, dict]:
    """Five spans: priced LLM, LLM with its own gen_ai.usage.cost, unpriced LLM, OpenInference LLM, HTTP."""
    priced = make_span(1, LLM_ATTRS, LLM_EVENTS)
    own_cost = make_span(2, {**LLM_ATTRS, "gen_ai.usage.cost": 0.5})
    unpriced = make_span(3, {**LLM_ATTRS, "gen_ai.request.model": "mystery-1"})
    openinference = make_span(4, {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                                  "llm.input_messages.0.message.content": SECRET, "llm.input_messages.0.message.role": "user",
                                  "llm.output_messages.0.message.content": SECRET, "input.value": SECRET,
                                  "input.mime_type": "application/json", "output.value": SECRET,
                                  "llm.token_count.prompt": 10})
    http_span = make_span(5, {"http.route": "/checkout", "http.response.status_code": 200,
                              "traceloop.entity.input": SECRET, "ai.prompt.messages": SECRET,
                              "ai.response.text": SECRET, "gen_ai.tool.call.arguments": SECRET,
                              "ai.usage.promptTokens": 7})
    request = make_request(priced, own_cost, unpriced, openinference, http_span)
    counted = {
        (priced.trace_id, priced.span_id): (make_call(), COST),
        (own_cost.trace_id, own_cost.span_id): (make_call(), COST),
        (unpriced.trace_id, unpriced.span_id): (make_call("mystery-1"), None),
        (openinference.trace_id, openinference.span_id): (make_call(), COST),
    }
    return request, counted


def forwarder(config: Config | None = None, metrics: SelfMetrics | None = None, **kwargs) -> Forwarder:
    kwargs.setdefault("retry", FAST_RETRY)
    return Forwarder(config or Config(), metrics or SelfMetrics(), **kwargs)


# --- delivery, cost attributes, content -----------------------------------------------------------

def test_forwards_spans_with_exact_cost_attributes_and_content_stripped() -> None:
    metrics = SelfMetrics()
    request, counted = sample_request()
    with downstream() as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url)
        fwd.start()
        fwd.submit(request, counted)
        fwd.shutdown(5.0)
        spans = {span.span_id[0]: span for span in down.spans()}

    assert sorted(spans) == [1, 2, 3, 4, 5]
    assert metrics.forwarded == 5 and metrics.dropped_total == 0

    priced = attrs(spans[1].attributes)
    assert priced[ca.COST_TOTAL] == float(COST.total) == float(Decimal("0.0401"))
    for cost_type in contract.COST_TYPES:
        assert priced[f"genai_meter.cost.{cost_type}_usd"] == float(COST.by_type[cost_type])
    assert priced[ca.COST_PRICE_SOURCE] == "overrides"
    assert priced[ca.COST_PRICE_ENTRY] == "openai/gpt-4o@2026-10-01"
    assert priced[ca.COST_PRICE_VERSION] == "2026-10-01"
    assert priced[ca.GEN_AI_USAGE_COST] == float(COST.total)
    assert ca.COST_UNPRICED not in priced
    # Content gone; usage, model and the prompt template's name kept.
    assert SECRET not in repr(spans[1])
    assert {k for k in priced if k.startswith(("gen_ai.prompt.", "gen_ai.completion."))} == {"gen_ai.prompt.name"}
    assert priced["gen_ai.usage.input_tokens"] == 10000 and priced["gen_ai.request.model"] == "gpt-4o"
    assert spans[1].dropped_attributes_count == 6
    assert [event.name for event in spans[1].events] == ["gen_ai.client.inference.operation.details", "exception"]
    assert attrs(spans[1].events[0].attributes) == {"gen_ai.request.model": "gpt-4o"}
    assert spans[1].dropped_events_count == 3

    own_cost = attrs(spans[2].attributes)
    assert own_cost[ca.GEN_AI_USAGE_COST] == 0.5  # the instrumentation's own figure is left alone
    assert own_cost[ca.COST_TOTAL] == float(COST.total)

    unpriced = attrs(spans[3].attributes)
    assert unpriced[ca.COST_UNPRICED] is True
    assert not [k for k in unpriced if k.endswith("_usd") or k.startswith("genai_meter.cost.price")]
    assert ca.GEN_AI_USAGE_COST not in unpriced

    openinference = attrs(spans[4].attributes)
    assert SECRET not in repr(spans[4])
    assert openinference["input.mime_type"] == "application/json" and openinference["llm.token_count.prompt"] == 10
    assert openinference[ca.COST_TOTAL] == float(COST.total)

    http_span = attrs(spans[5].attributes)  # not an LLM span: only stripped
    assert http_span == {"http.route": "/checkout", "http.response.status_code": 200, "ai.usage.promptTokens": 7}
    assert spans[5].dropped_attributes_count == 4
    assert spans[5].name == "span-5" and spans[5].end_time_unix_nano == 1_800_000_001_000_000_000


def test_content_is_kept_when_stripping_is_off() -> None:
    config = Config(server=ServerConfig(forward_strip_content=False))
    request, counted = sample_request()
    original = {span.span_id[0]: attrs(span.attributes) for span in make_request_spans(request)}
    with downstream() as down:
        fwd = forwarder(config, endpoint=down.url)
        fwd.start()
        fwd.submit(request, counted)
        fwd.shutdown(5.0)
        spans = {span.span_id[0]: span for span in down.spans()}
    assert attrs(spans[5].attributes) == original[5]  # untouched
    priced = attrs(spans[1].attributes)
    assert priced["gen_ai.prompt.0.content"] == SECRET and priced["gen_ai.input.messages"] == SECRET
    assert priced[ca.COST_TOTAL] == float(COST.total)
    assert len(spans[1].events) == len(LLM_EVENTS) and spans[1].dropped_attributes_count == 0


def make_request_spans(request: ExportTraceServiceRequest) -> list[Span]:
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def test_upstream_cost_attributes_are_replaced_not_duplicated() -> None:
    span = make_span(1, {"genai_meter.cost.total_usd": 9.0, "genai_meter.cost.unpriced": True, "x": "y"})
    ca.annotate_span(span, make_call(), COST)
    values = attrs(span.attributes)  # attrs() asserts keys are unique
    assert values[ca.COST_TOTAL] == float(COST.total) and ca.COST_UNPRICED not in values and values["x"] == "y"


def test_headers_gzip_and_keep_alive() -> None:
    metrics = SelfMetrics()
    with downstream() as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url, compression="gzip",
                        headers={"Authorization": "Bearer t0ken"})
        fwd.start()
        for n in range(1, 6):
            fwd.submit(make_request(make_span(n, {"http.route": "/"})), {})
        fwd.shutdown(5.0)
        assert metrics.forwarded == 5 and len(down.requests) == 5
        assert {post[1]["Authorization"] for post in down.posts} == {"Bearer t0ken"}
        assert {post[1]["Content-Encoding"] for post in down.posts} == {"gzip"}
        assert len({post[2] for post in down.posts}) == 1  # one keep-alive connection


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test certificate")
def test_https_with_a_verified_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    metrics = SelfMetrics()
    with downstream(tls=server_tls) as down:
        trusted = forwarder(metrics=metrics, endpoint=down.url,
                            ssl_context=ssl.create_default_context(cafile=str(cert)))
        trusted.start()
        trusted.submit(make_request(make_span(1, {})), {})
        trusted.shutdown(5.0)
        assert metrics.forwarded == 1 and len(down.requests) == 1
        untrusted = forwarder(metrics=metrics, endpoint=down.url)  # the system CA store: not trusted
        untrusted.start()
        untrusted.submit(make_request(make_span(2, {})), {})
        untrusted.shutdown(5.0)
        assert metrics.dropped(DROP_REJECTED) == 1 and len(down.requests) == 1  # not retried


def test_endpoint_without_path_posts_to_v1_traces() -> None:
    with downstream() as down:
        fwd = forwarder(endpoint=down.url.removesuffix("/v1/traces"))
        fwd.start()
        fwd.submit(make_request(make_span(1, {})), {})
        fwd.shutdown(5.0)
        assert len(down.requests) == 1


def test_server_closing_an_idle_keep_alive_connection_costs_no_retry() -> None:
    metrics = SelfMetrics()
    with downstream(close_after_response=True) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url,
                        retry=RetryPolicy(initial_backoff_s=5.0, max_elapsed_s=20.0))
        fwd.start()
        started = time.monotonic()
        for n in range(1, 4):
            fwd.submit(make_request(make_span(n, {})), {})
            wait_for(lambda: metrics.forwarded == n)
            time.sleep(0.05)  # let the server's close land before the next request
        fwd.shutdown(5.0)
        assert time.monotonic() - started < 3.0  # no 5 s backoff was taken
        assert len(down.posts) == 3 and metrics.dropped_total == 0


# --- trouble downstream -----------------------------------------------------------------------------

def test_downstream_down_never_blocks_submit_and_drops_after_retries() -> None:
    metrics = SelfMetrics()
    fwd = forwarder(metrics=metrics, endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces")
    fwd.start()
    submit_times = []
    for n in range(1, 21):
        request, counted = sample_request()
        started = time.perf_counter()
        fwd.submit(request, counted)
        submit_times.append(time.perf_counter() - started)
    assert max(submit_times) < 0.05  # counting never waits for the network
    # 20 requests x 5 spans: the first ones exhaust their 1 s retry budget; shutdown drops the rest.
    wait_for(lambda: metrics.dropped(DROP_RETRIES_EXHAUSTED) >= 5, timeout_s=5)
    fwd.shutdown(0.5)
    assert metrics.forwarded == 0
    assert metrics.dropped(DROP_RETRIES_EXHAUSTED) + metrics.dropped(DROP_SHUTDOWN) == 100
    assert metrics.dropped_total == 100


def test_503_then_200_is_retried_and_delivered_once() -> None:
    metrics = SelfMetrics()
    with downstream(script=[(503, {}, b""), (503, {}, b"")]) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url)
        fwd.start()
        request, counted = sample_request()
        fwd.submit(request, counted)
        wait_for(lambda: metrics.forwarded == 5)
        fwd.shutdown(5.0)
        assert len(down.posts) == 3 and len(down.requests) == 1
        assert metrics.dropped_total == 0


def test_429_retry_after_is_honoured() -> None:
    metrics = SelfMetrics()
    with downstream(script=[(429, {"Retry-After": "1"}, b"")]) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url,
                        retry=RetryPolicy(initial_backoff_s=0.01, jitter=0.0, max_elapsed_s=10.0))
        fwd.start()
        fwd.submit(make_request(make_span(1, {})), {})
        wait_for(lambda: metrics.forwarded == 1)
        fwd.shutdown(5.0)
        (first, *_), (second, *_) = down.posts
        assert second - first >= 0.95
        assert len(down.requests) == 1


def test_400_is_rejected_without_retry() -> None:
    metrics = SelfMetrics()
    with downstream(script=[(400, {}, b"bad")]) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url)
        fwd.start()
        request, counted = sample_request()
        fwd.submit(request, counted)
        wait_for(lambda: metrics.dropped(DROP_REJECTED) == 5)
        fwd.shutdown(5.0)
        assert len(down.posts) == 1 and not down.requests and metrics.forwarded == 0


def test_partial_success_counts_rejected_spans() -> None:
    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 2
    answer.partial_success.error_message = "2 spans too old"
    metrics = SelfMetrics()
    with downstream(script=[(200, {}, answer.SerializeToString())]) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url)
        fwd.start()
        request, counted = sample_request()
        fwd.submit(request, counted)
        fwd.shutdown(5.0)
        assert len(down.posts) == 1
    assert metrics.forwarded == 3 and metrics.dropped(DROP_REJECTED) == 2


def test_queue_full_drops_by_span_count() -> None:
    metrics = SelfMetrics()
    with downstream() as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url, max_queued_spans=12)
        for _ in range(3):  # not started yet: everything queues; 5 + 5 fit, the third does not
            request, counted = sample_request()
            fwd.submit(request, counted)
        assert fwd.queued_spans == 10 and metrics.dropped(DROP_QUEUE_FULL) == 5
        fwd.submit(make_request(make_span(9, {}), make_span(10, {})), {})  # 2 more spans fit exactly
        assert fwd.queued_spans == 12
        fwd.start()
        fwd.shutdown(5.0)
        assert len(down.requests) == 3
    assert metrics.forwarded == 12 and metrics.dropped_total == 5


def test_shutdown_flushes_the_queue_within_its_bound() -> None:
    metrics = SelfMetrics()
    with downstream(delay_s=0.05) as down:
        fwd = forwarder(metrics=metrics, endpoint=down.url)
        fwd.start()
        for _ in range(10):
            request, counted = sample_request()
            fwd.submit(request, counted)
        started = time.monotonic()
        fwd.shutdown(5.0)
        assert time.monotonic() - started < 3.0
        assert len(down.requests) == 10
    assert metrics.forwarded == 50 and metrics.dropped_total == 0
    fwd.submit(sample_request()[0], {})  # after shutdown: counted, not queued
    assert metrics.dropped(DROP_SHUTDOWN) == 5


def test_shutdown_is_bounded_when_the_downstream_hangs() -> None:
    # A listening socket that never answers: connect succeeds, the response never comes.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        metrics = SelfMetrics()
        fwd = forwarder(metrics=metrics, endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces",
                        retry=RetryPolicy(attempt_timeout_s=30.0, max_elapsed_s=60.0))
        fwd.start()
        for _ in range(4):
            request, counted = sample_request()
            fwd.submit(request, counted)
        time.sleep(0.2)  # the first request is now in flight
        started = time.monotonic()
        fwd.shutdown(1.0)
        assert time.monotonic() - started < 2.0
        assert metrics.dropped(DROP_SHUTDOWN) == 20 and metrics.forwarded == 0
    finally:
        listener.close()


# --- pieces ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, content", [
    ("gen_ai.prompt", True), ("gen_ai.prompt.3.content", True), ("gen_ai.prompt.name", False),
    ("gen_ai.completion.0.role", True), ("gen_ai.input.messages", True), ("gen_ai.output.messages", True),
    ("gen_ai.system_instructions", True), ("gen_ai.tool.call.arguments", True), ("gen_ai.tool.call.result", True),
    ("gen_ai.content.prompt", True), ("llm.input_messages.0.message.content", True),
    ("llm.output_messages.1.message.tool_calls.0.tool_call.function.arguments", True),
    ("llm.prompts", True), ("input.value", True), ("output.value", True), ("input.mime_type", False),
    ("ai.prompt", True), ("ai.prompt.messages", True), ("ai.response.text", True), ("ai.response.object", True),
    ("ai.response.toolCalls", True), ("traceloop.entity.input", True), ("traceloop.entity.output", True),
    ("gen_ai.usage.prompt_tokens", False), ("gen_ai.usage.input_tokens", False), ("ai.usage.promptTokens", False),
    ("llm.token_count.prompt", False), ("gen_ai.request.model", False), ("gen_ai.prompts_extra", False),
    ("gen_ai.tool.call.id", False), ("ai.promptFormat", False),
])
def test_content_keys(key: str, content: bool) -> None:
    assert ca.is_content_key(key) is content


@pytest.mark.parametrize("name, content", [
    ("gen_ai.content.prompt", True), ("gen_ai.content.completion", True), ("gen_ai.choice", True),
    ("gen_ai.user.message", True), ("gen_ai.system.message", True), ("gen_ai.tool.message", True),
    ("gen_ai.assistant.message", True), ("gen_ai.client.inference.operation.details", False),
    ("exception", False), ("llm.content.completion.chunk", False),
])
def test_content_events(name: str, content: bool) -> None:
    assert ca.is_content_event(name) is content


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_bad_endpoints_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="needs an endpoint"):
        Forwarder(Config(), SelfMetrics())
    with pytest.raises(ValueError, match="http"):
        Forwarder(Config(), SelfMetrics(), endpoint="grpc://collector:4317")
    fwd = Forwarder(Config(server=ServerConfig(forward_endpoint="https://user:pw@tempo.example:4318")),
                    SelfMetrics())
    assert fwd.endpoint == "https://tempo.example:4318/v1/traces"  # no credentials in what gets logged


def test_span_count() -> None:
    request, _ = sample_request()
    assert span_count(request) == 5 and span_count(ExportTraceServiceRequest()) == 0


# --- docs/topologies.md stays true to the code --------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "topologies.md"
OTELCOL_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "filter", "tail_sampling", "transform"},
    "exporters": {"otlp", "otlphttp", "otlp_grpc", "otlp_http", "loadbalancing"},
}


def doc_yaml_blocks() -> list[dict]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def test_doc_collector_configs_are_complete() -> None:
    configs = [block for block in doc_yaml_blocks() if "service" in block]
    assert len(configs) == 4
    for config in configs:
        pipelines = config["service"]["pipelines"]
        assert pipelines and all(name.startswith("traces") for name in pipelines)
        for kind, known in OTELCOL_TYPES.items():
            for component in config[kind]:
                assert component.split("/")[0] in known, component
        for pipeline in pipelines.values():
            for kind in OTELCOL_TYPES:
                for component in pipeline.get(kind, []):
                    assert component in config[kind], f"{component} is used but not defined"
        for name, pipeline in pipelines.items():  # genai-meter's copy is never behind a sampler
            if any(e.endswith("genai-meter") for e in pipeline["exporters"]):
                assert "tail_sampling" not in pipeline.get("processors", []), name
                processors = pipeline["processors"]
                assert processors.index("filter/genai-only") < processors.index("batch")


def test_doc_genai_meter_configs_are_valid() -> None:
    from genai_meter.config import parse_config

    configs = [block for block in doc_yaml_blocks() if "server" in block]
    assert len(configs) == 3
    for block in configs:
        parse_config(block, "docs/topologies.md")


def test_doc_lists_every_stripped_key() -> None:
    text = DOC.read_text()
    for key in sorted(ca.CONTENT_KEYS | ca.CONTENT_EVENT_NAMES | ca.CONTENT_KEEP_KEYS):
        assert f"`{key}" in text, key
    for key in (ca.COST_TOTAL, ca.COST_PRICE_SOURCE, ca.COST_PRICE_ENTRY, ca.COST_PRICE_VERSION,
                ca.COST_UNPRICED, ca.COST_UNMETERED, ca.GEN_AI_USAGE_COST):
        assert f"`{key}`" in text, key
