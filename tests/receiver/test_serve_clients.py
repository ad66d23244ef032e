"""Real clients against `genai-meter serve`: the OTel SDK's OTLP exporters (gRPC, HTTP/protobuf,
HTTP with gzip), raw gRPC calls, retries after 503/UNAVAILABLE and after a counted request, and the
same spans arriving through HTTP and gRPC.

Expected costs are computed by hand from OpenAI's published gpt-4o prices ($2.50/M input,
$1.25/M cached input, $10/M output).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from tests.support.otlp import (
    Serve,
    llm_attributes,
    make_request,
    make_span,
    post_traces,
    scrape,
    start_serve,
    total,
    write_config,
)

pytestmark = pytest.mark.slow

MILLION = Decimal(1_000_000)
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    config = write_config(tmp_path_factory.mktemp("clients") / "genai-meter.yaml", {
        "server": {"max_concurrent_requests": 1, "request_timeout_seconds": 5, "max_body_bytes": 256 * 1024,
                   "shutdown_scrape_wait_seconds": 5},
    })
    service = start_serve(config)
    yield service
    assert service.stop() == 0, service.log()


def send_with_sdk(exporter: SpanExporter, customer: str, calls: int) -> None:
    """An app: `calls` chat calls traced the way opentelemetry-instrumentation-openai-v2 does."""
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-app",
                                                        "deployment.environment.name": "test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    for i in range(calls):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attributes(llm_attributes(customer=customer, input_tokens=1000 + i, output_tokens=100,
                                               cached=200))
        with tracer.start_as_current_span("GET /cart"):  # not an LLM span
            pass
    assert provider.force_flush(30_000)
    provider.shutdown()


def expected_cost(calls: int) -> Decimal:
    input_uncached = sum(1000 + i - 200 for i in range(calls))
    return (input_uncached * Decimal("2.50") + calls * 200 * Decimal("1.25") + calls * 100 * Decimal(10)) / MILLION


@pytest.mark.parametrize("client", ["grpc", "http", "http-gzip"])
def test_sdk_exporters(serve: Serve, client: str) -> None:
    customer = f"sdk-{client}"
    if client == "grpc":
        exporter: SpanExporter = GrpcSpanExporter(endpoint=f"http://{serve.grpc}", insecure=True)
    else:
        exporter = HttpSpanExporter(endpoint=f"http://{serve.http}/v1/traces",
                                    compression=Compression.Gzip if client == "http-gzip" else None)
    calls = 150
    send_with_sdk(exporter, customer, calls)
    samples = scrape(serve.metrics)
    labels = {"customer": customer, "service_name": "sdk-app", "environment": "test", "provider": "openai",
              "model": "gpt-4o", "operation": "chat"}
    assert total(samples, "llm_requests_total", status="ok", **labels) == calls
    assert total(samples, "llm_tokens_total", token_type="input", **labels) == sum(800 + i for i in range(calls))
    assert total(samples, "llm_tokens_total", token_type="cache_read", **labels) == calls * 200
    assert total(samples, "llm_tokens_total", token_type="output", **labels) == calls * 100
    assert total(samples, "llm_cost_usd_total", **labels) == pytest.approx(float(expected_cost(calls)), rel=1e-12)
    assert total(samples, "llm_cost_usd_total", cost_type="cache_read", **labels) == pytest.approx(
        float(calls * 200 * Decimal("1.25") / MILLION), rel=1e-12)


def grpc_export(address: str, body: bytes, timeout: float = 10.0, metadata=None) -> bytes:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        return call(body, timeout=timeout, metadata=metadata)


def test_grpc_status_codes(serve: Serve) -> None:
    with pytest.raises(grpc.RpcError) as bad:
        grpc_export(serve.grpc, b"\xff" * 32)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    too_big = make_request([make_span(llm_attributes(customer="grpc-big", **{"blob": "x" * 300_000}))])
    with pytest.raises(grpc.RpcError) as big:
        grpc_export(serve.grpc, too_big.SerializeToString())
    assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    bomb = make_request([make_span(llm_attributes(customer="grpc-big", **{"blob": "\0" * (8 << 20)}))])
    with grpc.insecure_channel(serve.grpc, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        with pytest.raises(grpc.RpcError) as inflated:  # the limit applies after decompression
            channel.unary_unary(EXPORT_METHOD)(bomb.SerializeToString(), timeout=10, compression=grpc.Compression.Gzip)
    assert inflated.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    good = make_span(llm_attributes(customer="grpc-partial"))
    bad_ids = make_span(llm_attributes(customer="grpc-partial"), ids=(b"", b""))
    answer = ExportTraceServiceResponse.FromString(grpc_export(serve.grpc, make_request([good, bad_ids]).SerializeToString()))
    assert answer.partial_success.rejected_spans == 1
    future = make_span(llm_attributes(customer="grpc-partial"), start_ns=time.time_ns() + 3600 * 10**9)
    answer = ExportTraceServiceResponse.FromString(grpc_export(serve.grpc, make_request([future]).SerializeToString()))
    assert answer.partial_success.rejected_spans == 1
    assert answer.partial_success.error_message == "1 span(s) rejected: end_time_in_future"
    assert ExportTraceServiceResponse.FromString(grpc_export(serve.grpc, b"")) == ExportTraceServiceResponse()
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="grpc-partial") == 1
    assert total(samples, "llm_requests_total", customer="grpc-big") == 0


def test_same_spans_through_http_and_grpc_count_once(serve: Serve) -> None:
    request = make_request([make_span(llm_attributes(customer="two-paths")) for _ in range(10)])
    assert post_traces(serve.http, request).status == 200
    grpc_export(serve.grpc, request.SerializeToString())
    assert post_traces(serve.http, request, gzip_body=True).status == 200
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="two-paths") == 10


def test_retry_after_a_counted_request_counts_once(serve: Serve) -> None:
    """The client timed out waiting for an answer to a request the service had counted, and sends
    it again: the spans are counted once, the repeats as duplicates."""
    request = make_request([make_span(llm_attributes(customer="retried")) for _ in range(7)])
    before = total(scrape(serve.metrics), "genai_meter_spans_duplicate_total")
    for _ in range(3):
        assert post_traces(serve.http, request).status == 200
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="retried") == 7
    assert total(samples, "genai_meter_spans_duplicate_total") - before == 14


class Blocker:
    """Holds the service's only request slot: a request whose body arrives late."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.body = make_request([make_span(llm_attributes(customer="blocker"))]).SerializeToString()
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          + f"Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body[:5])

    def release(self) -> bytes:
        self.sock.sendall(self.body[5:])
        answer = self.sock.recv(4096)
        self.sock.close()
        return answer


def test_overload_answers_503_and_retries_count_once(serve: Serve) -> None:
    blocker = Blocker(serve.http)
    time.sleep(0.2)
    try:
        reply = post_traces(serve.http, make_request([make_span(llm_attributes(customer="refused"))]))
        assert reply.status == 503
        assert reply.headers["retry-after"] == "1"
        with pytest.raises(grpc.RpcError) as unavailable:
            grpc_export(serve.grpc, make_request([make_span(llm_attributes(customer="refused"))]).SerializeToString())
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        # Real exporters retry 503 / UNAVAILABLE with backoff; free the slot meanwhile.
        threading.Timer(0.5, blocker.release).start()
        send_with_sdk(HttpSpanExporter(endpoint=f"http://{serve.http}/v1/traces", timeout=20), "retry-503", 5)
    finally:
        time.sleep(0.6)
    blocker2 = Blocker(serve.http)
    time.sleep(0.2)
    threading.Timer(0.5, blocker2.release).start()
    send_with_sdk(GrpcSpanExporter(endpoint=f"http://{serve.grpc}", insecure=True, timeout=20), "retry-unavailable", 5)
    time.sleep(0.6)
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="refused") == 0
    assert total(samples, "llm_requests_total", customer="retry-503") == 5
    assert total(samples, "llm_requests_total", customer="retry-unavailable") == 5
    assert total(samples, "llm_requests_total", customer="blocker") == 2  # both blockers, once each
