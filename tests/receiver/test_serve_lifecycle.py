"""Start-up and graceful shutdown of `genai-meter serve` (SIGTERM / SIGINT)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import grpc
import pytest

from genai_meter.cli import main
from tests.support.otlp import (
    http_request,
    llm_attributes,
    make_request,
    make_span,
    parse_exposition,
    post_traces,
    scrape,
    start_serve,
    total,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_sigterm_keeps_metrics_until_scraped_then_exits_0(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 30}})
    serve = start_serve(config)
    try:
        assert http_request(serve.metrics, "GET", "/readyz").status == 200
        scrape(serve.metrics)  # a Prometheus scrapes it: the shutdown waits for its next scrape
        assert post_traces(serve.http, make_request([make_span(llm_attributes(customer="last")) for _ in range(4)])).status == 200
        serve.signal(signal.SIGTERM)
        assert wait_for(lambda: http_request(serve.metrics, "GET", "/readyz").status == 503, 5)
        # receivers refuse new spans, and say so in a way clients retry
        refused = post_traces(serve.http, make_request([make_span(llm_attributes(customer="late"))]))
        assert refused.status == 503 and refused.headers.get("retry-after") == "1"
        with grpc.insecure_channel(serve.grpc) as channel, pytest.raises(grpc.RpcError) as unavailable:
            channel.unary_unary(EXPORT_METHOD)(make_request([make_span(llm_attributes(customer="late"))])
                                               .SerializeToString(), timeout=5)
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        time.sleep(1.0)
        assert serve.process.poll() is None  # still waiting for its last scrape
        assert http_request(serve.metrics, "GET", "/healthz").status == 200
        started = time.monotonic()
        final = http_request(serve.metrics, "GET", "/metrics")
        assert final.status == 200
        samples = parse_exposition(final.body.decode())
        assert total(samples, "llm_requests_total", customer="last") == 4
        assert total(samples, "llm_requests_total", customer="late") == 0
        assert serve.wait(10) == 0
        assert time.monotonic() - started < 5
        assert "final scrape answered" in serve.log()
    finally:
        serve.stop(5)


def test_in_flight_request_finishes_during_shutdown(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 20,
                                                           "request_timeout_seconds": 10}})
    serve = start_serve(config)
    try:
        body = make_request([make_span(llm_attributes(customer="inflight")) for _ in range(3)]).SerializeToString()
        host, port = serve.http.rsplit(":", 1)
        scrape(serve.metrics)  # scraped before: the shutdown keeps /metrics up for the next scrape
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        time.sleep(0.3)
        serve.signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[10:])
        answer = sock.recv(4096)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert total(scrape(serve.metrics), "llm_requests_total", customer="inflight") == 3
        assert serve.wait(30) == 0
    finally:
        serve.stop(5)


def test_no_scrape_wait_and_bounded_wait(tmp_path: Path) -> None:
    for wait_s, limit in ((0, 5.0), (1, 6.0)):
        config = write_config(tmp_path / f"c{wait_s}.yaml", {"server": {"shutdown_scrape_wait_seconds": wait_s}})
        serve = start_serve(config)
        try:
            started = time.monotonic()
            serve.signal(signal.SIGINT if wait_s else signal.SIGTERM)
            assert serve.wait(limit + 5) == 0
            assert time.monotonic() - started < limit
        finally:
            serve.stop(5)


def test_port_in_use_fails_cleanly(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        serve = start_serve(None, "--http-listen", f"127.0.0.1:{port}", wait_ready=False)
        assert serve.wait(30) == 1
        assert "cannot start" in serve.log()
    finally:
        taken.close()


def test_bad_flags_are_config_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--http-listen", "nowhere"]) == 2
    assert "http_listen" in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2
