"""A ledger that cannot take calls (locked here; a full disk or a ClickHouse outage alike) makes the
receiver answer 503 + Retry-After and count nothing, so the ledger and the metrics never disagree;
the client's retry then counts once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from tests.support.otlp import (
    llm_attributes,
    make_request,
    make_span,
    post_traces,
    scrape,
    start_serve,
    total,
    write_config,
)


@pytest.mark.slow
def test_a_locked_ledger_gives_503_and_counts_nothing_then_the_retry_counts_once(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0},
                                                "ledger": {"busy_timeout_seconds": 0.5}})
    serve = start_serve(config, "--ledger", f"sqlite:///{db}")
    try:
        request = make_request([make_span(llm_attributes(customer="locked")) for _ in range(4)])
        holder = sqlite3.connect(db, isolation_level=None, timeout=5)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            reply = post_traces(serve.http, request)
            assert reply.status == 503
            assert reply.headers.get("retry-after") == "1"
            samples = scrape(serve.metrics)
            assert total(samples, "llm_requests_total") == 0
            assert total(samples, "llm_cost_usd_total") == 0
            assert total(samples, "genai_meter_ledger_write_failures_total") == 1
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert post_traces(serve.http, request).status == 200  # the client's retry
        samples = scrape(serve.metrics)
        assert total(samples, "llm_requests_total", customer="locked") == 4
        assert total(samples, "genai_meter_spans_duplicate_total") == 0
        assert total(samples, "genai_meter_ledger_difference_usd") == 0
        reader = open_reader(f"sqlite:///{db}", Config())
        try:
            assert reader.totals(0, 2**62, {"customer": ["locked"]})[0].calls == 4
        finally:
            reader.close()
    finally:
        assert serve.stop() == 0, serve.log()
