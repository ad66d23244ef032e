"""`serve --forward-endpoint`: counted spans go on, with cost attributes, to another OTLP/HTTP
receiver (here a second genai-meter, which counts them again as a trace store would store them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.otlp import (
    llm_attributes,
    make_request,
    make_span,
    plain_span,
    post_traces,
    scrape,
    start_serve,
    total,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow


def test_forwarding_to_another_receiver(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 5}})
    downstream = start_serve(config, "--data-dir", str(tmp_path / "downstream"))  # a receiver elsewhere: its own ledger
    upstream = start_serve(config, "--forward-endpoint", f"http://{downstream.http}/v1/traces")
    try:
        request = make_request([make_span(llm_attributes(customer="fwd")) for _ in range(6)] + [plain_span()])
        assert post_traces(upstream.http, request).status == 200
        assert post_traces(upstream.http, request).status == 200  # a retry: forwarded again, counted once
        assert wait_for(lambda: total(scrape(upstream.metrics), "genai_meter_spans_forwarded_total") == 14, 15)
        up, down = scrape(upstream.metrics), scrape(downstream.metrics)
        assert total(up, "llm_requests_total", customer="fwd") == 6
        assert total(down, "llm_requests_total", customer="fwd") == 6  # the downstream dedups the retry too
        assert total(down, "genai_meter_spans_received_total") == 14
        assert total(up, "llm_cost_usd_total", customer="fwd") == pytest.approx(
            total(down, "llm_cost_usd_total", customer="fwd"))
    finally:
        codes = [upstream.stop(), downstream.stop()]
    assert codes == [0, 0]
