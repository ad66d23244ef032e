"""OTLP/HTTP against a real `genai-meter serve`: status codes, bodies, limits, bad input.

One service for the module; each test uses its own customer ids and compares before/after, so the
tests stay independent. After every kind of bad input the service still answers and the figures
counted before are unchanged.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.support.otlp import (
    Serve,
    gpt4o_cost,
    http_request,
    json_request,
    json_span,
    llm_attributes,
    make_request,
    make_span,
    otlp_json,
    plain_span,
    post_traces,
    scrape,
    start_serve,
    total,
    write_config,
)

pytestmark = pytest.mark.slow

MAX_BODY = 1024 * 1024
CUSTOMER_CAP = 300


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    config = write_config(tmp_path_factory.mktemp("http") / "genai-meter.yaml", {
        "server": {"max_body_bytes": MAX_BODY, "request_timeout_seconds": 2, "shutdown_scrape_wait_seconds": 5},
        "dimensions": {"customer": {"attributes": ["customer.id"], "max_values": CUSTOMER_CAP}},
        "limits": {"max_series_per_metric": 5000},
    })
    service = start_serve(config)
    yield service
    assert service.stop() == 0, service.log()


def requests_of(serve: Serve, customer: str) -> float:
    return total(scrape(serve.metrics), "llm_requests_total", customer=customer)


def test_protobuf_counts_and_costs(serve: Serve) -> None:
    spans = [make_span(llm_attributes(customer="pb", input_tokens=1000, output_tokens=200, cached=400))
             for _ in range(5)]
    reply = post_traces(serve.http, make_request(spans + [plain_span()]))
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(reply.body) == ExportTraceServiceResponse()
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="pb") == 5
    assert total(samples, "llm_tokens_total", customer="pb", token_type="input") == 5 * 600
    assert total(samples, "llm_tokens_total", customer="pb", token_type="cache_read") == 5 * 400
    assert total(samples, "llm_cost_usd_total", customer="pb") == pytest.approx(float(5 * gpt4o_cost(1000, 200, 400)))


def test_gzip_body(serve: Serve) -> None:
    reply = post_traces(serve.http, make_request([make_span(llm_attributes(customer="gz"))]), gzip_body=True)
    assert reply.status == 200
    assert requests_of(serve, "gz") == 1


ENDED = time.time_ns() - 60 * 10**9  # within the ledger's retention whenever the tests run


def test_handwritten_otlp_json_counts_like_protobuf(serve: Serve) -> None:
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
            "scopeSpans": [{
                "scope": {"name": "my.instrumentation", "version": "1.0"},
                "spans": [{
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174",
                    "parentSpanId": "eee19b7ec3c1b173",
                    "name": "chat gpt-4o",
                    "kind": 3,
                    "startTimeUnixNano": str(ENDED - 1_500_000_000),  # strings, as OTLP/JSON writes int64s
                    "endTimeUnixNano": str(ENDED),
                    "attributes": [
                        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                        {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "2000"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 100}},
                        {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "1000"}},
                        {"key": "gen_ai.response.finish_reasons",
                         "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
                        {"key": "customer.id", "value": {"stringValue": "json-hand"}},
                    ],
                    "droppedAttributesCount": 0,
                    "status": {"code": 0},
                    "futureField": {"ignored": True},
                }],
            }],
        }],
    }
    reply = post_traces(serve.http, json.dumps(body).encode(), content_type="application/json")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body) == {}
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="json-hand", service_name="json-app") == 1
    assert total(samples, "llm_cost_usd_total", customer="json-hand") == pytest.approx(
        float(gpt4o_cost(2000, 100, 1000)))
    # the same body again: the same span, counted once
    assert post_traces(serve.http, json.dumps(body).encode(), content_type="application/json").status == 200
    assert requests_of(serve, "json-hand") == 1


def test_partial_success_for_rejected_spans(serve: Serve) -> None:
    good = make_span(llm_attributes(customer="partial"))
    bad = make_span(llm_attributes(customer="partial"), ids=(bytes(16), bytes(8)))
    reply = post_traces(serve.http, make_request([good, bad]))
    assert reply.status == 200
    response = ExportTraceServiceResponse.FromString(reply.body)
    assert response.partial_success.rejected_spans == 1
    assert "invalid_id" in response.partial_success.error_message
    assert requests_of(serve, "partial") == 1

    bad_json = json_span(llm_attributes(customer="partial-json"))
    bad_json["traceId"] = "zz"
    reply = post_traces(serve.http, otlp_json(json_request([bad_json, json_span(llm_attributes(customer="partial-json"))])),
                        content_type="application/json")
    assert reply.status == 200
    assert json.loads(reply.body)["partialSuccess"]["rejectedSpans"] == "1"
    assert requests_of(serve, "partial-json") == 1


def test_spans_with_implausible_end_times_are_a_partial_success(serve: Serve) -> None:
    """A span dated 2099 or at 2^63 ns is refused with its reason; the rest of the request is counted."""
    good = make_span(llm_attributes(customer="dated"))
    year_2099 = make_span(llm_attributes(customer="dated"), start_ns=4_083_000_000 * 10**9)
    overflowing = make_span(llm_attributes(customer="dated"), start_ns=2**63)
    reply = post_traces(serve.http, make_request([good, year_2099, overflowing]))
    assert reply.status == 200
    response = ExportTraceServiceResponse.FromString(reply.body)
    assert response.partial_success.rejected_spans == 2
    assert "1 span(s) rejected: end_time_in_future" in response.partial_success.error_message
    assert "1 span(s) rejected: end_time_out_of_range" in response.partial_success.error_message
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="dated") == 1
    assert total(samples, "genai_meter_spans_rejected_total", reason="end_time_in_future") == 1


def status_of(body: bytes, content_type: str) -> status_pb2.Status:
    if content_type == "application/json":
        return json_format.Parse(body, status_pb2.Status())
    return status_pb2.Status.FromString(body)


def test_bad_input_gets_the_right_status_and_changes_nothing(serve: Serve) -> None:
    assert post_traces(serve.http, make_request([make_span(llm_attributes(customer="keep")) for _ in range(3)])).status == 200
    before = scrape(serve.metrics)
    valid = make_request([make_span(llm_attributes(customer="never"))]).SerializeToString()

    cases = [
        ("truncated protobuf", valid[:-5], {"Content-Type": "application/x-protobuf"}, 400),
        ("garbage protobuf", b"\xff" * 64, {"Content-Type": "application/x-protobuf"}, 400),
        ("garbage json", b"{not json", {"Content-Type": "application/json"}, 400),
        ("json array", b"[1, 2]", {"Content-Type": "application/json"}, 400),
        ("deep json", b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         {"Content-Type": "application/json"}, 400),
        ("corrupt gzip", b"\x1f\x8b\x08\x00garbage", {"Content-Type": "application/x-protobuf",
                                                      "Content-Encoding": "gzip"}, 400),
        ("gzip bomb", gzip.compress(b"\0" * (64 << 20), 9), {"Content-Type": "application/x-protobuf",
                                                             "Content-Encoding": "gzip"}, 413),
        ("body over the limit", valid + b"\0" * MAX_BODY, {"Content-Type": "application/x-protobuf"}, 413),
        ("wrong content type", valid, {"Content-Type": "text/plain"}, 415),
        ("no content type", valid, {}, 415),
        ("unknown encoding", valid, {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, 415),
    ]
    for name, body, headers, expected in cases:
        reply = http_request(serve.http, "POST", "/v1/traces", body, headers)
        assert reply.status == expected, (name, reply)
        if expected in (400, 413) and reply.body:
            status = status_of(reply.body, reply.headers["content-type"])
            assert status.code in (code_pb2.INVALID_ARGUMENT, code_pb2.RESOURCE_EXHAUSTED), name
            assert status.message, name

    assert http_request(serve.http, "GET", "/v1/traces").status == 405
    assert http_request(serve.http, "POST", "/v1/metrics", valid, {"Content-Type": "application/x-protobuf"}).status == 404
    assert http_request(serve.metrics, "GET", "/healthz").status == 200
    after = scrape(serve.metrics)
    for key in (k for k in before if k[0].startswith("llm_")):
        assert after[key] == before[key], key
    assert total(after, "llm_requests_total", customer="never") == 0


def test_huge_attribute_values(serve: Serve) -> None:
    long_customer = "c" * 10_000
    prompt = "p" * 500_000
    span = make_span(llm_attributes(customer=long_customer, **{"gen_ai.input.messages": prompt}))
    assert post_traces(serve.http, make_request([span])).status == 200
    samples = scrape(serve.metrics)
    values = {dict(labels).get("customer", "") for (name, labels) in samples if name == "llm_requests_total"}
    assert all(len(v) <= 128 for v in values)
    assert any(v.startswith("cccc") for v in values)
    assert not any(prompt[:100] in dict(labels).values() for (_, labels) in samples)


def test_slow_client_is_cut_off_and_others_are_served(serve: Serve) -> None:
    host, port = serve.http.rsplit(":", 1)
    slow = socket.create_connection((host, int(port)), timeout=10)
    try:
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        started = time.monotonic()
        assert post_traces(serve.http, make_request([make_span(llm_attributes(customer="fast"))])).status == 200
        data = b""
        try:
            while chunk := slow.recv(4096):
                data += chunk
                slow.sendall(b"X")  # trickle: a per-read timeout would never fire
                time.sleep(0.2)
        except OSError:
            pass
        assert time.monotonic() - started < 6  # request_timeout_seconds is 2
        assert data == b"" or data.startswith(b"HTTP/1.1 408")
    finally:
        slow.close()
    assert requests_of(serve, "fast") == 1


def test_keep_alive_and_chunked_bodies(serve: Serve) -> None:
    import http.client

    host, port = serve.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for i in range(3):
            body = make_request([make_span(llm_attributes(customer="keepalive"))]).SerializeToString()
            if i == 2:
                conn.request("POST", "/v1/traces", body=iter([body[:10], body[10:]]),
                             headers={"Content-Type": "application/x-protobuf"}, encode_chunked=True)
            else:
                conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()
    assert requests_of(serve, "keepalive") == 3


def test_metrics_endpoint_formats(serve: Serve) -> None:
    post_traces(serve.http, make_request([make_span(llm_attributes(customer="fmt"))]))
    om = http_request(serve.metrics, "GET", "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",  # what Prometheus 2.42 sends
        "Accept-Encoding": "gzip"})
    assert om.status == 200
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.headers["content-encoding"] == "gzip"
    text = gzip.decompress(om.body).decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE llm_requests counter" in text
    classic = http_request(serve.metrics, "GET", "/metrics", headers={"Accept": "text/plain"})
    assert classic.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "content-encoding" not in classic.headers
    assert "# TYPE llm_requests_total counter" in classic.body.decode()
    assert http_request(serve.metrics, "GET", "/readyz").status == 200
    assert http_request(serve.metrics, "GET", "/nope").status == 404
    assert http_request(serve.metrics, "POST", "/metrics", b"x").status == 405


def test_100k_distinct_customers_stay_bounded(serve: Serve) -> None:
    """Last in the module: it fills the customer label cap, so later new customers would fold."""
    before = scrape(serve.metrics)
    overflow_before = total(before, "genai_meter_label_overflow_total", dimension="customer")
    sent = 0
    for batch in range(50):  # 2000 spans (~0.5 MB) per request: under the 1 MiB limit
        spans = [make_span(llm_attributes(customer=f"many-{batch}-{i}", input_tokens=10, output_tokens=1,
                                          model="gpt-4o-mini"))
                 for i in range(2000)]
        assert post_traces(serve.http, make_request(spans), gzip_body=True, timeout=60).status == 200
        sent += len(spans)
    after = scrape(serve.metrics)
    assert total(after, "llm_requests_total", model="gpt-4o-mini") - total(before, "llm_requests_total",
                                                                            model="gpt-4o-mini") == sent
    customers = {dict(labels).get("customer") for (name, labels) in after if name == "llm_requests_total"}
    assert len(customers) <= CUSTOMER_CAP + 2  # the cap, "" and __overflow__
    assert "__overflow__" in customers
    assert total(after, "genai_meter_label_overflow_total", dimension="customer") > overflow_before
