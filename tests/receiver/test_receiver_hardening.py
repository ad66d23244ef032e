"""What an adversarial probe broke in the OTLP/HTTP receiver, against a real `genai-meter serve`:
many-member gzip bodies, silent connections, oversized plain bodies (issue 8, items 1, 2, 5)."""

from __future__ import annotations

import gzip
import http.client
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_meter.collector_processor.receiver.decode import MAX_GZIP_MEMBERS, BadRequest, TooLarge, decompress
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

LIMIT = 20 * 1024 * 1024  # server.max_body_bytes, the default


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    # 2 s for a request (and so for a first request head): silent connections go quickly
    config = write_config(Path(tmp_path_factory.mktemp("hardening")) / "genai-meter.yaml",
                          {"server": {"request_timeout_seconds": 2}})
    raise_fd_limit(4096)  # the child inherits it: 1,100 silent connections need 1,100 descriptors each side
    process = start_serve(config)
    try:
        yield process
    finally:
        process.stop()


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= min(wanted, 2500), "cannot open enough descriptors"


def one_call() -> bytes:
    return bytes(make_request([make_span(llm_attributes())]).SerializeToString())


# ---------------------------------------------------------------------------------------------
# 1. gzip of many members: linear, bounded, off the event loop

def test_many_members_are_decompressed_in_linear_time_and_bounded() -> None:
    member = gzip.compress(b"")
    body = member * (LIMIT // len(member))  # ~1M empty members
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=f"more than {MAX_GZIP_MEMBERS} gzip members"):
        decompress(body, "gzip", LIMIT)
    assert time.perf_counter() - started < 0.5
    # members up to the bound still decode, whole and in order
    parts = [f"part {i};".encode() * 50 for i in range(MAX_GZIP_MEMBERS)]
    assert decompress(b"".join(gzip.compress(p) for p in parts), "gzip", LIMIT) == b"".join(parts)
    # linear without the bound too: 64k members take about 64x one thousand's time, not 4096x
    few, many = member * 1000, member * 64_000
    t0 = time.perf_counter()
    decompress(few, "gzip", LIMIT, max_members=10**9)
    t1 = time.perf_counter()
    decompress(many, "gzip", LIMIT, max_members=10**9)
    t2 = time.perf_counter()
    assert (t2 - t1) < 200 * max(t1 - t0, 1e-4), (t1 - t0, t2 - t1)
    with pytest.raises(TooLarge):  # output stays bounded whatever the member count
        decompress(gzip.compress(b"\0" * (LIMIT // 2)) * 3, "gzip", LIMIT)


def test_a_20_mib_many_member_body_is_answered_fast_while_others_are_served(serve: Serve) -> None:
    member = gzip.compress(b"")
    body = member * ((LIMIT - 1024) // len(member))
    answers: dict[str, tuple[int, float]] = {}

    def bomb() -> None:
        started = time.perf_counter()
        reply = post_traces(serve.http, body, headers={"Content-Encoding": "gzip"}, timeout=30)
        answers["bomb"] = (reply.status, time.perf_counter() - started)

    thread = threading.Thread(target=bomb)
    thread.start()
    others: list[tuple[int, float]] = []
    while not others or (thread.is_alive() and len(others) < 50):  # other clients, meanwhile
        started = time.perf_counter()
        reply = post_traces(serve.http, one_call(), timeout=10)
        others.append((reply.status, time.perf_counter() - started))
    thread.join(30)
    status, elapsed = answers["bomb"]
    assert status == 400 and elapsed < 1.0, answers  # (before: minutes, and everyone waited)
    assert all(s == 200 and t < 2.0 for s, t in others), others


# ---------------------------------------------------------------------------------------------
# 2. silent connections

def test_a_connection_that_sends_nothing_gets_the_head_deadline(serve: Serve) -> None:
    host, port = serve.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as silent:
        started = time.monotonic()
        assert silent.recv(1) == b""  # closed by the server, long before the 60 s idle timeout
        assert time.monotonic() - started < 5


def test_a_client_is_served_while_1100_silent_connections_are_open(serve: Serve) -> None:
    host, port = serve.http.rsplit(":", 1)
    silent: list[socket.socket] = []
    try:
        for _ in range(1100):
            silent.append(socket.create_connection((host, int(port)), timeout=5))
        time.sleep(0.3)  # all accepted: the server is at its connection limit
        for _ in range(3):
            reply = post_traces(serve.http, one_call(), timeout=5)
            assert reply.status == 200, reply
    finally:
        for sock in silent:
            sock.close()


# ---------------------------------------------------------------------------------------------
# 5. oversized plain body

@pytest.mark.parametrize("length", ["²", "1" * 4301, "-1"])
def test_a_content_length_that_is_no_number_is_a_400(serve: Serve, length: str) -> None:
    host, port = serve.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                    f"Content-Length: {length}\r\n\r\n".encode())
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_an_oversized_plain_body_gets_a_413_that_states_the_limit(serve: Serve) -> None:
    body = b"\0" * (LIMIT + 1024 * 1024)  # 21 MiB
    host, port = serve.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()  # the whole body went out: no EPIPE, no reset
        status, text = response.status, response.read()
        assert response.getheader("Connection") == "close"
    finally:
        conn.close()
    assert status == 413
    assert str(LIMIT).encode() in text  # google.rpc.Status RESOURCE_EXHAUSTED with the limit
    before = total(scrape(serve.metrics), "llm_requests_total")
    assert post_traces(serve.http, one_call()).status == 200  # and the service goes on
    assert total(scrape(serve.metrics), "llm_requests_total") == before + 1
