"""`serve`'s /readyz follows the ledger's ability to write: 503 while its commits fail (the file locked by
another process) or its file is gone (moved away), 200 again once it recovers, with no traffic needed;
a request holding a call the ledger can never store is answered 200 with partial success and leaves
readiness alone. Single process and `--workers 2` (the parent asks each worker)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.support.ledger_faults import REFUSED_INPUT_TOKENS, refuse_marked_calls
from tests.support.otlp import (
    Serve,
    http_request,
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


def _ready(serve: Serve) -> int:
    return http_request(serve.metrics, "GET", "/readyz").status


def _serve(tmp_path: Path, *extra: str) -> tuple[Serve, Path]:
    db = tmp_path / "ledger.db"
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0},
                                                "ledger": {"busy_timeout_seconds": 0.3}})
    return start_serve(config, "--ledger", f"sqlite:///{db}", *extra), db


def _request(customer: str, n: int = 3) -> object:
    return make_request([make_span(llm_attributes(customer=customer)) for _ in range(n)])


@pytest.mark.slow
def test_readyz_follows_the_ledger(tmp_path: Path) -> None:
    serve, db = _serve(tmp_path)
    try:
        assert _ready(serve) == 200
        assert post_traces(serve.http, _request("before")).status == 200

        db.rename(tmp_path / "moved.db")  # moved away while serve runs
        assert wait_for(lambda: _ready(serve) == 503, 5)
        assert post_traces(serve.http, _request("while-gone")).status == 503
        (tmp_path / "moved.db").rename(db)
        assert wait_for(lambda: _ready(serve) == 200, 10)
        assert post_traces(serve.http, _request("back")).status == 200

        holder = sqlite3.connect(db, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # commits fail (busy)
            assert post_traces(serve.http, _request("locked")).status == 503
            assert _ready(serve) == 503
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert wait_for(lambda: _ready(serve) == 200, 10)

        refuse_marked_calls(db)
        poison = make_span(llm_attributes(customer="poison", input_tokens=REFUSED_INPUT_TOKENS))
        reply = post_traces(serve.http, make_request([poison]))
        assert reply.status == 200
        response = ExportTraceServiceResponse.FromString(reply.body)
        assert response.partial_success.rejected_spans == 1
        assert "ledger_row_rejected" in response.partial_success.error_message
        assert _ready(serve) == 200
        samples = scrape(serve.metrics)
        assert total(samples, "genai_meter_spans_rejected_total", reason="ledger_row_rejected") == 1
        assert total(samples, "llm_requests_total") == 6  # before, back; nothing of the others
    finally:
        assert serve.stop() == 0, serve.log()


@pytest.mark.slow
def test_readyz_of_workers_follows_their_ledgers(tmp_path: Path) -> None:
    serve, db = _serve(tmp_path, "--workers", "2")
    try:
        assert wait_for(lambda: _ready(serve) == 200, 10)
        db.rename(tmp_path / "moved.db")
        assert wait_for(lambda: _ready(serve) == 503, 10)  # as of the workers' next ping
        (tmp_path / "moved.db").rename(db)
        assert wait_for(lambda: _ready(serve) == 200, 15)
        assert post_traces(serve.http, _request("back")).status == 200
    finally:
        assert serve.stop() == 0, serve.log()
