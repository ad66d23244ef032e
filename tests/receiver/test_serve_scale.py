"""Scaling out: `serve --workers 2` (one /metrics, totals exact, dedup across workers, a crashed
worker's figures kept) and two replicas whose /metrics sum to the exact totals."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.exporters.merge import merge_families, render_families
from genai_meter.records import Cost, LLMCall, TokenCounts
from tests.support.otlp import (
    Serve,
    gpt4o_cost,
    llm_attributes,
    make_request,
    make_span,
    parse_exposition,
    plain_span,
    post_traces,
    scrape,
    start_serve,
    total,
    wait_for,
    write_config,
)


def call(customer: str, tokens: int) -> LLMCall:
    return LLMCall(service="s", environment="e", provider="openai", model="gpt-4o", operation="chat", status="ok",
                   error_type="", duration_s=1.0, ttft_s=0.1, tokens=TokenCounts(input=tokens, output=1),
                   end_ns=1, dimensions={"customer": customer})


def test_merging_snapshots_equals_one_store() -> None:
    config = Config()
    one, a, b = UsageMetrics(config), UsageMetrics(config), UsageMetrics(config)
    for i in range(10):
        cost = Cost(by_type={"input": Decimal(i) / 7, "output": Decimal("0.01")}, price_source="t",
                    price_version="1", price_entry="x", unit_prices={"input": Decimal("2.5")})
        for store in (one, a if i % 3 else b):
            store.record_call(call(f"c{i % 4}", i), cost)
    merged = merge_families([a.families(), b.families()])
    for openmetrics in (False, True):
        # equal, up to float rounding of histogram sums (counters and Decimal costs add exactly)
        assert parse_exposition(render_families(merged, openmetrics).decode()) == \
            pytest.approx(parse_exposition(one.render(openmetrics).decode()), rel=1e-12)


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Serve]:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 10}})
    service = start_serve(config, "--workers", "2")
    yield service
    assert service.stop() == 0, service.log()


def worker_pids(serve: Serve) -> list[int]:
    match = re.search(r"2 workers \(pids (\d+), (\d+)\)", serve.log())
    assert match, serve.log()
    return [int(match.group(1)), int(match.group(2))]


def send_from_many_connections(address: str, prefix: str, clients: int, requests: int, spans: int) -> list:
    sent: list = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for r in range(requests):
            request = make_request([make_span(llm_attributes(customer=f"{prefix}{n % 3}", input_tokens=100 + r,
                                                             output_tokens=10)) for _ in range(spans)]
                                   + [plain_span()])
            assert post_traces(address, request).status == 200
            with lock:
                sent.append(request)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return sent


@pytest.mark.slow
def test_two_workers_count_exactly_once(workers: Serve) -> None:
    sent = send_from_many_connections(workers.http, "w", clients=6, requests=10, spans=50)
    expected_calls = 6 * 10 * 50
    expected_cost = 6 * 50 * sum(gpt4o_cost(100 + r, 10) for r in range(10))
    samples = scrape(workers.metrics)
    assert total(samples, "llm_requests_total") == expected_calls
    assert total(samples, "llm_cost_usd_total") == pytest.approx(float(expected_cost), rel=1e-12)
    assert total(samples, "genai_meter_spans_received_total") == expected_calls + 60
    # the same requests again, from fresh connections (landing on either worker): all duplicates
    for request in sent[:20]:
        assert post_traces(workers.http, request).status == 200
    samples = scrape(workers.metrics, openmetrics=True)
    assert total(samples, "llm_requests_total") == expected_calls
    assert total(samples, "genai_meter_spans_duplicate_total") == 20 * 50
    # one series per label set, as a single process would export
    keys = [k for k in samples if k[0] == "llm_requests_total"]
    assert len(keys) == len(set(keys)) == 3


@pytest.mark.slow
def test_a_crashed_worker_is_replaced_and_its_figures_kept(workers: Serve) -> None:
    send_from_many_connections(workers.http, "crash", clients=4, requests=3, spans=20)
    before = scrape(workers.metrics)  # the figures a crash may no longer lose
    assert total(before, "llm_requests_total") == 240
    victim = worker_pids(workers)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: "restarting it" in workers.log(), 10)
    assert wait_for(lambda: total(scrape(workers.metrics), "llm_requests_total") >= 240, 20)
    send_from_many_connections(workers.http, "after", clients=2, requests=2, spans=10)
    after = scrape(workers.metrics)
    assert total(after, "llm_requests_total") == 240 + 40
    for key, value in before.items():
        if key[0].endswith("_total") and not key[0].startswith("genai_meter_spans_duplicate"):
            assert after.get(key, 0) >= value, key  # counters never go backwards


@pytest.mark.slow
def test_two_replicas_sum_to_the_exact_totals(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 10}})
    replicas = [start_serve(config), start_serve(config)]
    try:
        expected = Decimal(0)
        for i in range(40):
            spans = [make_span(llm_attributes(customer=f"r{i % 5}", input_tokens=1000 + i, output_tokens=i, cached=i))
                     for _ in range(25)]
            # a load balancer routing by trace id: each request goes to one replica
            assert post_traces(replicas[i % 2].http, make_request(spans)).status == 200
            expected += 25 * gpt4o_cost(1000 + i, i, i)
        scraped = [scrape(r.metrics) for r in replicas]
        assert all(total(s, "llm_requests_total") == 500 for s in scraped)
        # what Prometheus computes with sum(...) over both instances
        assert sum(total(s, "llm_requests_total") for s in scraped) == 1000
        assert sum(total(s, "llm_cost_usd_total") for s in scraped) == pytest.approx(float(expected), rel=1e-12)
        for customer in (f"r{k}" for k in range(5)):
            assert sum(total(s, "llm_requests_total", customer=customer) for s in scraped) == 200
    finally:
        codes = [r.stop() for r in replicas]
    assert codes == [0, 0]
