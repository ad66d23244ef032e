"""The CostSpanProcessor inside a real instrumented app: /metrics equals hand-computed costs.

Each app runs in its own process (the instrumentations patch the same openai methods) against a
FakeOpenAI server that reports 10000 prompt tokens (4000 cached) and 2000 completion tokens (500
reasoning) per call. Prices are the published gpt-4o prices, written here by hand:
$2.50 per million input tokens, $1.25 per million cached input tokens, $10.00 per million output
tokens (reasoning tokens are output tokens).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
M = Decimal(1_000_000)
INPUT, CACHED, OUTPUT = Decimal("2.50"), Decimal("1.25"), Decimal("10.00")

# One successful call, split into the five disjoint classes, as each instrumentation reports it.
CACHE_AWARE = {"input": 6000, "cache_read": 4000, "output": 1500, "reasoning": 500}
CALL_COST_CACHE_AWARE = (6000 * INPUT + 4000 * CACHED + 2000 * OUTPUT) / M  # $0.04
CALL_COST_CACHE_BLIND = (10000 * INPUT + 2000 * OUTPUT) / M  # $0.045: cached tokens unseen, an upper bound


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict, name: str, **match: str) -> float:
    return sum(value for (sample, labels), value in samples.items()
               if sample == name and all((k, v) in labels for k, v in match.items()))


def run_app(instrumentation: str, *extra: str, env: dict[str, str] | None = None) -> dict:
    """Run the app against a fresh FakeOpenAI, scrape its /metrics once, stop it."""
    port = free_port()
    with FakeOpenAI(failing_models={"gpt-4o-mini": 500}) as server:
        app = subprocess.Popen(
            [sys.executable, "-m", "tests.apps.instrumented_app", instrumentation, server.base_url,
             f"127.0.0.1:{port}", *extra],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {}), "GENAI_METER_METRICS_LISTEN": f"127.0.0.1:{port}"})
        try:
            deadline = time.monotonic() + 60
            line = ""
            while time.monotonic() < deadline and "READY" not in line:
                line = app.stdout.readline()
                if not line and app.poll() is not None:
                    break
            assert "READY" in line, app.stderr.read() if app.poll() is not None else "app not ready"
            return scrape(port)
        finally:
            app.stdin.close()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


@pytest.mark.slow
@pytest.mark.parametrize("instrumentation", ["openllmetry", "openinference"])
def test_cache_aware_instrumentation_costs_exactly(instrumentation: str) -> None:
    samples = run_app(instrumentation)
    base = {"service_name": "chatbot", "environment": "test", "provider": "openai", "model": "gpt-4o",
            "operation": "chat", "project": "atlas"}
    assert total(samples, "llm_requests_total", status="ok", **base) == 3
    assert total(samples, "llm_requests_total", status="error", provider="openai") == 1
    cost = Decimal(repr(total(samples, "llm_cost_usd_total", **base)))
    assert cost == 3 * CALL_COST_CACHE_AWARE == Decimal("0.12")
    assert total(samples, "llm_cost_usd_total", cost_type="cache_read", **base) == pytest.approx(
        float(3 * 4000 * CACHED / M))
    assert total(samples, "llm_tokens_total", token_type="input", **base) == 3 * CACHE_AWARE["input"]
    assert total(samples, "llm_tokens_total", token_type="cache_read", **base) == 3 * CACHE_AWARE["cache_read"]
    # output + reasoning = completion tokens, whether or not the streamed span reports reasoning
    assert (total(samples, "llm_tokens_total", token_type="output", **base)
            + total(samples, "llm_tokens_total", token_type="reasoning", **base)) == 3 * 2000
    assert total(samples, "llm_unpriced_requests_total") == 0
    assert total(samples, "llm_unmetered_requests_total") == 0


@pytest.mark.slow
def test_cache_blind_instrumentation_is_an_upper_bound_and_flagged() -> None:
    samples = run_app("openai_v2")
    cost = Decimal(repr(total(samples, "llm_cost_usd_total", provider="openai", model="gpt-4o")))
    assert cost == 3 * CALL_COST_CACHE_BLIND == Decimal("0.135")
    assert total(samples, "llm_unmetered_requests_total", reason="cache_unknown", model="gpt-4o") == 3
    assert total(samples, "llm_requests_total", status="error") == 1


@pytest.mark.slow
def test_configurator_adds_the_processor_with_no_code_change() -> None:
    samples = run_app("openllmetry", "--auto", env={
        "OTEL_TRACES_EXPORTER": "none", "OTEL_SERVICE_NAME": "chatbot", "OTEL_TRACES_SAMPLER": "always_off",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,project.id=atlas"})
    # sampled out by always_off, still metered: MeteringSampler records GenAI spans it would drop
    # (OpenLLMetry sets its request attributes at span start)
    cost = Decimal(repr(total(samples, "llm_cost_usd_total", service_name="chatbot", model="gpt-4o")))
    assert cost == 3 * CALL_COST_CACHE_AWARE
