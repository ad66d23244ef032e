"""Calls billed beyond the standard price, end to end: the real openai SDK with each real instrumentation
(tests/apps/pricing_app.py) makes flex, priority, batch and audio calls and generates images against a
FakeOpenAI server that answers as OpenAI does (the service tier served, audio token details), and writes
spans with units of its own. Both the in-process processor's /metrics and a real `genai-meter serve`'s
(the app sends it every span over OTLP/HTTP) must show what genai-prices bills for each call, with the
matching price context, to the last digit, and so must serve's ledger: `ledger stats`, the report
service's cost report by model in JSON and CSV, its FOCUS export and its per-call feed (tier, batch, units); `genai-meter price` gives the same figures. What a span
cannot carry is flagged, never silently priced: audio through an instrumentation that reports totals only
is an estimate; a unit without a price makes the call partly priced.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from genai_meter.config import load_config
from genai_meter.ledger import open_reader
from genai_meter.reports.service.app import create_app
from tests.inprocess.test_inprocess import ROOT, free_port, scrape, total
from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp import start_serve

IMAGE_PRICE = Decimal("0.08")  # the override file's price of one 1024x1024 HD image
CONFIG = """pricing:
  overrides: prices.yaml
  batch_rules:
    - match: {service: "nightly-*"}
"""
PRICES = f"""- provider: openai
  model: dall-e-3
  prices: {{input_mtok: "0", output_mtok: "0"}}
  units: {{custom.image_1024x1024_hd: "{IMAGE_PRICE}"}}
"""
# (model, price context) of each model call the app makes through the instrumentation
CALLS = (("gpt-5-mini", {"service_tier": "flex"}), ("gpt-4o", {"service_tier": "priority"}), ("gpt-audio", None),
         ("gpt-4o-mini", {"processing": "batch"}))
SEES_AUDIO = {"openinference"}  # reports OpenAI's audio token details; the others report totals only
SEES_CACHE = {"openllmetry", "openinference"}  # openai-v2 reports no cached tokens: FakeOpenAI reports none


def billed(fake: FakeOpenAI, model: str, context: dict[str, str] | None, *, audio: bool = True) -> Decimal:
    """What genai-prices bills for FakeOpenAI's answer to `model` (its usage read by genai-prices' own
    OpenAI extractor), in `context`; `audio` False: as if the audio tokens were text."""
    usage = genai_prices.extract_usage({"model": model, "usage": fake.usage(model)}, provider_id="openai",
                                       api_flavor="chat").usage
    if not audio:
        usage.input_audio_tokens = usage.output_audio_tokens = None
    return genai_prices.calc_price(usage, model, provider_id="openai", price_context=context).total_price


def expected_costs(instrumentation: str, fake: FakeOpenAI) -> dict[str, Decimal]:
    """Cost by model as genai-prices (and the override file, for images) bills the app's calls."""
    out = {model: billed(fake, model, context, audio=instrumentation in SEES_AUDIO) for model, context in CALLS}
    own_chat = genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=100, web_searches=2),
                                       "gpt-4o", provider_id="openai").total_price
    out["gpt-4o"] += own_chat  # the app's own span, its web searches included (voice minutes: no price)
    images = 1 + (2 if instrumentation == "openinference" else 0)  # the app's own span + OpenInference's
    out["dall-e-3"] = images * IMAGE_PRICE
    return out


def cost_by_model(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, Decimal]:
    """llm_cost_usd_total summed by model, each sample as its exact decimal (short decimals survive repr)."""
    out: dict[str, Decimal] = {}
    for (name, labels), value in samples.items():
        if name == "llm_cost_usd_total":
            model = dict(labels)["model"]
            out[model] = out.get(model, Decimal(0)) + Decimal(repr(value))
    return out


def run(instrumentation: str, tmp: Path) -> tuple[dict, dict, FakeOpenAI]:
    """Run the app against FakeOpenAI and a real serve writing the ledger tmp/ledger.db; (the app's /metrics,
    serve's /metrics, the server)."""
    (tmp / "genai-meter.yaml").write_text(CONFIG)
    (tmp / "prices.yaml").write_text(PRICES)
    env = {"GENAI_METER_CONFIG": str(tmp / "genai-meter.yaml"), "GENAI_METER_DATA_DIR": str(tmp / "data")}
    serve = start_serve(tmp / "genai-meter.yaml", "--ledger", f"sqlite:///{tmp / 'ledger.db'}", env=env)
    fake = FakeOpenAI(cached_tokens=4000 if instrumentation in SEES_CACHE else 0)
    port = free_port()
    try:
        with fake:
            app = subprocess.Popen(
                [sys.executable, "-m", "tests.apps.pricing_app", instrumentation, fake.base_url, f"127.0.0.1:{port}",
                 f"http://{serve.http}/v1/traces"],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, **env})
            try:
                assert app.stdout is not None and app.stdin is not None
                line = ""
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and "READY" not in line:
                    line = app.stdout.readline()
                    if not line and app.poll() is not None:
                        break
                assert "READY" in line, app.stderr.read() if app.poll() is not None else "app not ready"
                in_process = scrape(port)
                served = scrape(int(serve.metrics.rsplit(":", 1)[1]))
            finally:
                app.stdin.close()  # type: ignore[union-attr]
                try:
                    app.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    app.kill()
                    app.wait()
    finally:
        serve.stop()
    return in_process, served, fake


@pytest.mark.slow
@pytest.mark.parametrize("instrumentation", ["openai_v2", "openllmetry", "openinference"])
def test_tiers_batch_audio_images_and_units_cost_what_the_provider_bills(instrumentation: str,
                                                                         tmp_path: Path) -> None:
    in_process, served, fake = run(instrumentation, tmp_path)
    expected = expected_costs(instrumentation, fake)
    if instrumentation == "openai_v2":  # no cached tokens: the invoice's figure for the flex call
        assert expected["gpt-5-mini"] == Decimal("0.00325")
    for samples in (in_process, served):
        assert cost_by_model(samples) == expected
        assert sum(cost_by_model(samples).values()) == sum(expected.values())
        tiers = {tier: total(samples, "llm_requests_total", service_tier=tier) for tier in ("flex", "priority", "batch")}
        assert tiers == {"flex": 1, "priority": 1, "batch": 1}
        assert total(samples, "llm_requests_total", service_tier="batch", service_name="nightly-batch",
                     model="gpt-4o-mini") == 1
        # the app's own span: its web searches priced, its voice minutes (no price) flag it as partly priced
        assert total(samples, "llm_units_total", unit="web_searches") == 2
        assert total(samples, "llm_partially_priced_requests_total", reason="unit", model="gpt-4o") == 1
        assert total(samples, "llm_partially_priced_requests_total") == 1
        assert total(samples, "llm_units_total", unit="custom.image_1024x1024_hd") == expected["dall-e-3"] / IMAGE_PRICE
        assert total(samples, "llm_unpriced_requests_total") == 0
        if instrumentation in SEES_AUDIO:
            assert total(samples, "llm_tokens_total", token_type="input_audio_tokens") == fake.audio_prompt_tokens
            assert total(samples, "llm_tokens_total", token_type="output_audio_tokens") == fake.audio_completion_tokens
            assert total(samples, "llm_estimated_requests_total") == 0
        else:  # totals only: priced as text and said so
            assert total(samples, "llm_estimated_requests_total", reason="modality_unknown", model="gpt-audio") == 1
            assert total(samples, "llm_tokens_total", token_type="input_audio_tokens") == 0
    ledger_shows(tmp_path, expected, fake if instrumentation in SEES_AUDIO else None)


def ledger_shows(tmp: Path, expected: dict[str, Decimal], audio: FakeOpenAI | None) -> None:
    """serve's ledger holds every call at the billed cost: `ledger stats`, the cost report by model (JSON, CSV),
    FOCUS and the feed's tiers, batch flag and units; `audio`: the server whose audio tokens were reported."""
    url = f"sqlite:///{tmp / 'ledger.db'}"
    stats = subprocess.run([sys.executable, "-m", "genai_meter", "ledger", "stats", "--ledger", url, "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert Decimal(json.loads(stats.stdout)["cost_usd"]) == sum(expected.values())
    config = load_config(tmp / "genai-meter.yaml")
    reader = open_reader(url, config)
    try:
        client = create_app(config, reader).test_client()
        window = "range=24h"
        answer = client.get(f"/api/v1/reports/cost?{window}")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        rows = body["tables"]["by_model"]["rows"]
        assert {r["model"]: Decimal(r["cost_usd"]) for r in rows} == expected
        table = client.get(f"/api/v1/reports/cost?{window}&format=csv").get_data(as_text=True)
        assert {r["model"]: Decimal(r["cost_usd"]) for r in csv.DictReader(io.StringIO(table))} == expected
        focus = client.get(f"/api/v1/reports/cost?{window}&format=focus").get_data(as_text=True)
        assert sum(Decimal(r["BilledCost"]) for r in csv.DictReader(io.StringIO(focus))) == sum(expected.values())
        calls = client.get("/api/v1/events?limit=100").get_json()["calls"]
        tiers = {(c["model"], c["service_tier"], c["batch"]) for c in calls}
        assert {("gpt-5-mini", "flex", False), ("gpt-4o", "priority", False)} <= tiers
        assert [c["batch"] for c in calls if c["model"] == "gpt-4o-mini"] == [True]
        [own] = [c for c in calls if "web_searches" in c["units"]]
        assert own["units"]["web_searches"]["quantity"] == 2 and own["exactness"] == "partial"
        if audio is not None:
            [voice] = [c for c in calls if c["model"] == "gpt-audio"]
            assert voice["units"]["input_audio_tokens"]["quantity"] == audio.audio_prompt_tokens
    finally:
        reader.close()


def price_command(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "genai_meter", "price", "openai", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if k != "GENAI_METER_CONFIG"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_the_price_command_gives_the_same_figures() -> None:
    fake = FakeOpenAI()  # 10000 prompt tokens (4000 cached), 2000 completion (500 reasoning)
    classes = ["--input", "6000", "--cache-read", "4000", "--output", "1500", "--reasoning", "500"]
    for model, context in CALLS:
        extra = (["--service-tier", context["service_tier"]] if context and "service_tier" in context
                 else ["--batch"] if context else [])
        if model == "gpt-audio":  # text input 10000 - 4000 cached - 3000 audio; output 2000 - 500 - 1000 audio
            extra = ["--unit", "input_audio_tokens=3000", "--unit", "output_audio_tokens=1000"]
            args = ["--input", "3000", "--cache-read", "4000", "--output", "500", "--reasoning", "500"]
        else:
            args = classes
        out = price_command(model, *args, *extra)
        assert Decimal(out["total_usd"]) == billed(fake, model, context), (model, out)
        assert out["partly_priced"] is False


@pytest.mark.slow
def test_the_invoice_figures() -> None:
    """10,000 prompt and 2,000 completion tokens, none cached: genai-prices bills $0.00325 for gpt-5-mini at
    the flex tier, $0.0765 for gpt-4o at the priority tier and $0.1875 for gpt-audio with 3,000 audio tokens in
    and 1,000 out; `genai-meter price` gives each figure to the last digit."""
    fake = FakeOpenAI(cached_tokens=0)
    text = ["--input", "10000", "--output", "1500", "--reasoning", "500"]
    cases = (("gpt-5-mini", {"service_tier": "flex"}, [*text, "--service-tier", "flex"], "0.00325"),
             ("gpt-4o", {"service_tier": "priority"}, [*text, "--service-tier", "priority"], "0.0765"),
             ("gpt-audio", None, ["--input", "7000", "--output", "500", "--reasoning", "500", "--unit",
                                  "input_audio_tokens=3000", "--unit", "output_audio_tokens=1000"], "0.1875"))
    for model, context, args, invoice in cases:
        assert billed(fake, model, context) == Decimal(invoice), model
        out = price_command(model, *args)
        assert Decimal(out["total_usd"]) == Decimal(invoice) and out["partly_priced"] is False, (model, out)
