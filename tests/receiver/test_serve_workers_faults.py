"""`serve --workers 2` when a worker stops answering or dies: scrapes stay fast and exact, a hung
worker is replaced, and a span answered 200 is never lost nor dropped as a duplicate on retry."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from tests.support.otlp import (
    Serve,
    llm_attributes,
    make_request,
    make_span,
    post_traces,
    scrape,
    start_serve,
    total,
    wait_for,
    write_config,
)


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Serve]:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0}})
    service = start_serve(config, "--workers", "2")
    yield service
    service.stop()


def pids(serve: Serve) -> list[int]:
    return [int(p) for p in re.findall(r"pids (\d+), (\d+)", serve.log())[-1]]


@pytest.mark.slow
def test_a_stopped_worker_neither_slows_scrapes_nor_keeps_its_connections(workers: Serve) -> None:
    for n in range(8):  # fresh connections: both workers get some
        assert post_traces(workers.http, make_request([make_span(llm_attributes(customer=f"s{n}"))])).status == 200
    assert total(scrape(workers.metrics), "llm_requests_total") == 8
    victim = pids(workers)[0]
    os.kill(victim, signal.SIGSTOP)
    try:
        started = time.monotonic()
        samples = scrape(workers.metrics)
        assert time.monotonic() - started < 2.0  # within the 1 s render bound (+ scrape overhead)
        assert total(samples, "llm_requests_total") == 8  # the stopped worker's last figures
        assert total(samples, "genai_meter_workers_unresponsive") == 1
        assert wait_for(lambda: "has not answered" in workers.log(), 15)  # killed ...
        assert wait_for(lambda: "restarting it" in workers.log(), 10)  # ... and replaced
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert wait_for(lambda: total(scrape(workers.metrics), "genai_meter_workers_unresponsive") == 0, 20)
    for n in range(8):  # every new connection is served again
        assert post_traces(workers.http, make_request([make_span(llm_attributes(customer=f"t{n}"))]),
                           ).status == 200
    assert total(scrape(workers.metrics), "llm_requests_total") == 16


def ledger_calls(customer: str) -> int:
    """Calls of `customer` in this test's ledger (the data dir conftest gives every test)."""
    config = Config()
    reader = open_reader(f"sqlite:///{os.environ['GENAI_METER_DATA_DIR']}/ledger.db", config)
    try:
        return reader.totals(0, 2**62, {"customer": [customer]})[0].calls
    finally:
        reader.close()


@pytest.mark.slow
def test_a_killed_worker_loses_no_answered_span_and_a_retry_counts_once(workers: Serve) -> None:
    request = make_request([make_span(llm_attributes(customer="kept")) for _ in range(5)])
    assert post_traces(workers.http, request).status == 200
    for pid in pids(workers):  # before any scrape: the metrics die with the workers ...
        os.kill(pid, signal.SIGKILL)
    assert ledger_calls("kept") == 5  # ... the answered calls do not
    assert wait_for(lambda: workers.log().count("restarting it") >= 2, 15)
    # the client retries the same request (it timed out on its side): stored and counted once, and
    # not refused as a duplicate of claims the dead workers held
    assert wait_for(lambda: post_traces(workers.http, request).status == 200, 20)
    assert ledger_calls("kept") == 5
    assert total(scrape(workers.metrics), "genai_meter_spans_duplicate_total") == 5
    fresh = make_request([make_span(llm_attributes(customer="after")) for _ in range(3)])
    assert post_traces(workers.http, fresh).status == 200
    assert total(scrape(workers.metrics), "llm_requests_total", customer="after") == 3
    assert ledger_calls("after") == 3
