"""End to end: real apps (openai SDK + real instrumentations + the real OTLP exporter) -> `serve` ->
the ledger and /metrics agree to the last digit; a kill -9 right after a 200/OK and the client's
retry leave every call stored once; `genai-meter ledger stats` equals the span sums."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from genai_meter.cli import main as cli_main
from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp import (
    gpt4o_cost,
    llm_attributes,
    make_request,
    make_span,
    post_traces,
    scrape,
    start_serve,
    total,
    write_config,
)

REPO = Path(__file__).resolve().parents[2]
INSTRUMENTATIONS = ("openai_v2", "openllmetry", "openinference")


def ledger_stats(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert cli_main(["ledger", "stats", "--ledger", url, "--json"]) == 0
    stats: dict[str, object] = json.loads(capsys.readouterr().out)
    return stats


@pytest.mark.slow
def test_real_apps_land_in_the_ledger_exactly_as_metrics_count(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    serve = start_serve(write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0}}),
                        "--ledger", url)
    try:
        with FakeOpenAI(prompt_tokens=1200, cached_tokens=400, completion_tokens=300, reasoning_tokens=0) as fake:
            for name in INSTRUMENTATIONS:
                app = subprocess.run([sys.executable, "-m", "tests.apps.exporting_app", name, fake.base_url,
                                      f"http://{serve.http}/v1/traces"], cwd=REPO, capture_output=True, text=True,
                                     timeout=120)
                assert app.returncode == 0, app.stderr
        samples = scrape(serve.metrics)
    finally:
        assert serve.stop() == 0, serve.log()
    calls = 3 * len(INSTRUMENTATIONS)
    assert total(samples, "llm_requests_total") == calls
    stats = ledger_stats(url, capsys)
    assert stats["calls"] == calls
    # openai-v2 reports no cached tokens (its cost is an upper bound); the other two do
    per_call = {"openai_v2": gpt4o_cost(1200, 300, 0), "openllmetry": gpt4o_cost(1200, 300, 400),
                "openinference": gpt4o_cost(1200, 300, 400)}
    expected = sum((3 * cost for cost in per_call.values()), Decimal(0))
    assert Decimal(str(stats["cost_usd"])) == expected
    assert float(expected) == pytest.approx(total(samples, "llm_cost_usd_total"), rel=1e-12)
    tokens = stats["tokens"]
    assert isinstance(tokens, dict)
    assert tokens["input"] + tokens["cache_read"] == 1200 * calls
    assert tokens["output"] + tokens["reasoning"] == 300 * calls
    assert set(stats) == {"calls", "cost_usd", "tokens", "from", "to"}


@pytest.mark.slow
def test_kill_9_after_the_answer_and_a_retry_store_each_call_once(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = write_config(tmp_path / "c.yaml", {"server": {"shutdown_scrape_wait_seconds": 0}})
    request = make_request([make_span(llm_attributes(customer="k9", input_tokens=1000 + i, output_tokens=10))
                            for i in range(20)])
    expected = sum((gpt4o_cost(1000 + i, 10) for i in range(20)), Decimal(0))
    serve = start_serve(config, "--ledger", url)
    assert post_traces(serve.http, request).status == 200
    os.kill(serve.process.pid, signal.SIGKILL)  # right after the answer: no shutdown at all
    serve.process.wait(10)
    stats = ledger_stats(url, capsys)
    assert (stats["calls"], Decimal(str(stats["cost_usd"]))) == (20, expected)
    again = start_serve(config, "--ledger", url)
    try:
        assert post_traces(again.http, request).status == 200  # the client's retry
        samples = scrape(again.metrics)
        assert total(samples, "llm_requests_total") == 0  # stored before the crash: not counted again
        assert total(samples, "genai_meter_spans_duplicate_total") == 20
    finally:
        assert again.stop() == 0
    stats = ledger_stats(url, capsys)
    assert (stats["calls"], Decimal(str(stats["cost_usd"]))) == (20, expected)
