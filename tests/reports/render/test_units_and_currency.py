"""Billed units, service tiers, batch and partly priced calls in every report format, and reports in
another currency: a real ledger of calls priced by the real book; every format's total to the last digit."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import openpyxl
import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from genai_meter.ledger import open_reader
from genai_meter.ledger.model import LedgerReader
from genai_meter.ledger.units import unit_class
from genai_meter.money import usd_text
from genai_meter.pricing import PriceBook
from genai_meter.records import Cost, LLMCall, TokenCounts
from genai_meter.reports.render.focus import APPLICABILITY_CRITERIA, SUB_ACCOUNT_CRITERION
from genai_meter.reports.render.numbers import exact_money
from tests.reports.conftest import NOW_NS, Known, auth, make_config, write_ledger
from tests.reports.render.test_focus_validator import ARTIFACTS, MODEL_VERSION, _results, _validator

WINDOW = "from=2026-11-01T00:00:00Z&to=2026-11-21T00:00:00Z"
DAY = 86400 * 10**9
START = datetime(2026, 11, 1, tzinfo=UTC)
# EUR per USD by day; the 8th and 9th have none (the 7th's rate applies), the 15th changes the rate
RATES = {"2026-11-01": "0.9187", "2026-11-07": "0.92305", "2026-11-15": "0.9301", "2026-11-18": "0.91"}


def _calls() -> list[LLMCall]:
    calls = []
    for i in range(60):
        units = {"input_audio_tokens": 1000 + 37 * i, "output_audio_tokens": 500 + 11 * i} if i % 3 else {}
        if i % 7 == 0:
            units["custom.pages"] = 3  # no price anywhere: the call is priced in part
        calls.append(LLMCall(
            service="voice", environment="prod", provider="openai", model="gpt-audio" if i % 3 else "gpt-4o-mini",
            operation="chat", status="ok", error_type="", duration_s=1.0, ttft_s=None,
            tokens=TokenCounts(input=200 + i, output=40 + i), end_ns=NOW_NS - (i * 7919 % 19) * DAY - i * 10**9,
            dimensions={"customer": ["c-1", "c-2"][i % 2], "organization": "acme"}, request_model="gpt-audio",
            trace_id=hashlib.md5(f"u{i}".encode()).digest(), span_id=hashlib.md5(f"u{i}".encode()).digest()[:8],
            service_tier=["", "default", "flex"][i % 3], batch=i % 5 == 0, units=units,
            estimate="audio split assumed" if i == 4 else ""))
    return calls


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Known, LedgerReader]]:
    tmp = tmp_path_factory.mktemp("units")
    config = make_config(tmp, {"pricing": {"overrides": "overrides.yaml", "fx": {"rates": {
        day: {"EUR": rate} for day, rate in RATES.items()}}}})
    known = write_ledger(config, _calls())
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    yield config, known, reader
    reader.close()


@pytest.fixture(scope="module")
def costs(ledger: tuple[object, Known, LedgerReader]) -> list[tuple[LLMCall, Cost]]:
    config = ledger[0]
    book = PriceBook.from_config(config)  # type: ignore[arg-type]
    out = []
    for call in _calls():
        cost = book.cost(call)
        assert cost is not None
        out.append((call, cost))
    return out


def _total(cost: Cost) -> int:
    return sum(cost.picos()) + sum(cost.unit_pico.values())


def _get(client: FlaskClient, url: str) -> bytes:
    response = client.get(url, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def test_every_format_carries_the_units_to_the_last_digit(client: FlaskClient,
                                                            costs: list[tuple[LLMCall, Cost]]) -> None:
    total = sum(_total(c) for _, c in costs)
    audio = sum(v for _, c in costs for k, v in c.unit_pico.items() if unit_class(k) == "audio")
    assert audio > 10**10 and total > audio
    body = _client_json(client, f"/api/v1/reports/cost?{WINDOW}")
    summary = body["summary"]
    assert summary["cost_usd"] == usd_text(total)
    assert summary["cost_by_class_usd"]["audio"] == usd_text(audio)
    assert sum(Decimal(v) for v in summary["cost_by_class_usd"].values()) == Decimal(usd_text(total))
    assert summary["units"]["custom.pages"] == {"quantity": 27, "class": "custom", "cost_usd": usd_text(0)}
    partial = sum(1 for _, c in costs if c.unpriced_units)
    assert (summary["exactness"], summary["calls_partial"]) == ("partial", partial)
    [caveat] = [c for c in summary["caveats"] if c["kind"] == "partial"]
    assert caveat["reasons"]["custom.pages"] == 9
    assert any(c["kind"] == "estimate" and c["calls"] == 1 for c in summary["caveats"])
    classes = {r["token_class"]: r for r in body["tables"]["by_token_class"]["rows"]}
    assert classes["audio"]["cost_usd"] == usd_text(audio)
    assert sum(Decimal(r["cost_usd"]) for r in classes.values()) == Decimal(usd_text(total))
    by_model = list(csv.DictReader(io.StringIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=csv").decode())))
    assert sum(Decimal(r["cost_usd"]) for r in by_model) == Decimal(usd_text(total))
    book = openpyxl.load_workbook(io.BytesIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=xlsx")))
    info = {r[0].value: r[1].value for r in book["Report"].iter_rows(min_row=3) if r[0].value}
    assert info["Cost (USD, exact)"] == usd_text(total)
    sheet = [[c.value for c in row] for row in book["by_token_class"].iter_rows()]
    assert any(row[0] == "audio" and Decimal(repr(row[2])) == Decimal(usd_text(audio)) for row in sheet)
    pdf = PdfReader(io.BytesIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=pdf")))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert exact_money(total) in text and exact_money(audio) in text
    focus = list(csv.DictReader(io.StringIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=focus").decode())))
    assert sum(Decimal(r["BilledCost"]) for r in focus) == Decimal(usd_text(total))
    audio_rows = [r for r in focus if r["SkuId"].endswith("/input_audio_tokens")]
    assert {(r["ConsumedUnit"], r["PricingUnit"]) for r in audio_rows} == {("Tokens", "1000000 Tokens")}
    assert sum(Decimal(r["ConsumedQuantity"]) for r in audio_rows) == sum(c.units.get("input_audio_tokens", 0)
                                                                           for c, _ in costs)
    pages = [r for r in focus if r["SkuId"].endswith("/custom.pages")]
    assert sum(Decimal(r["ConsumedQuantity"]) for r in pages) == 27 and {r["ConsumedUnit"] for r in pages} == {"Units"}


def _client_json(client: FlaskClient, url: str) -> dict:  # type: ignore[type-arg]
    response = client.get(url, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_service_tier_and_batch_filter_and_group(client: FlaskClient, costs: list[tuple[LLMCall, Cost]]) -> None:
    body = _client_json(client, f"/api/v1/reports/detailed?{WINDOW}&group_by=service_tier")
    groups = {r["service_tier"]: r for r in body["tables"]["groups"]["rows"]}
    for tier in ("", "default", "flex"):
        mine = [c for call, c in costs if call.service_tier == tier]
        assert groups[tier]["calls"] == len(mine) and groups[tier]["cost_usd"] == usd_text(sum(map(_total, mine)))
    batch = [c for call, c in costs if call.batch and call.service_tier == "flex"]
    s = _client_json(client, f"/api/v1/reports/summary?{WINDOW}&service_tier=flex&batch=true")["summary"]
    assert (s["calls"], s["cost_usd"]) == (len(batch), usd_text(sum(map(_total, batch))))
    events = _client_json(client, f"/api/v1/events?{WINDOW}&service_tier=flex&limit=100")
    [row] = [r for r in events["calls"] if r["units"].get("custom.pages")][:1] or [None]
    assert row is not None and row["service_tier"] == "flex" and row["exactness"] == "partial"
    assert "custom.pages" in row["unpriced_units"] and row["units"]["input_audio_tokens"]["class"] == "audio"
    text = _get(client, f"/api/v1/reports/detailed?{WINDOW}&format=csv&rows=calls").decode()
    calls = list(csv.DictReader(io.StringIO(text)))
    assert {"service_tier", "batch", "units", "cost_units_usd"} <= set(calls[0])
    assert sum(Decimal(r["cost_usd"]) for r in calls) == Decimal(usd_text(sum(_total(c) for _, c in costs)))


def _eur(costs: list[tuple[LLMCall, Cost]]) -> int:
    """The documented rule: per UTC day, each figure (class, unit, ...) in USD converted at the day's rate,
    rounded half-even to 10^-12 EUR, then added."""
    figures: dict[tuple[date, str], int] = {}
    for call, cost in costs:
        day = datetime.fromtimestamp(call.end_ns // 10**9, UTC).date()
        for name, pico in [*zip(("input", "cache_read", "cache_write", "output", "reasoning", "request"),
                                cost.picos()), *cost.unit_pico.items()]:
            figures[(day, name)] = figures.get((day, name), 0) + pico
    rates = sorted((date.fromisoformat(d), Decimal(r)) for d, r in RATES.items())
    out = 0
    for (day, _), pico in figures.items():
        rate = [r for d, r in rates if d <= day][-1]
        out += int((pico * rate).to_integral_value(rounding=ROUND_HALF_EVEN))
    return out


def test_reports_in_euro_follow_the_documented_rule_in_every_format(client: FlaskClient,
                                                                     costs: list[tuple[LLMCall, Cost]]) -> None:
    want = _eur(costs)
    body = _client_json(client, f"/api/v1/reports/cost?{WINDOW}&currency=EUR")
    s = body["summary"]
    assert (s["currency"], s["cost_usd"]) == ("EUR", usd_text(want))
    assert s["fx"]["rates"]["2026-11-08"] == "0.92305" and s["fx"]["base"] == "USD"
    assert "EUR" in body["tables"]["by_model"]["note"]
    assert any(c["title"] == "Cost (EUR)" for c in body["tables"]["by_model"]["columns"])
    response = client.get(f"/api/v1/reports/cost?{WINDOW}&currency=EUR&format=csv", headers=auth())
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal(usd_text(want))
    assert response.headers["X-Currency"] == "EUR" and "2026-11-15=0.9301" in response.headers["X-Exchange-Rates"]
    book = openpyxl.load_workbook(io.BytesIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&currency=EUR&format=xlsx")))
    sheet = book["by_model"]
    head = [c.value for c in sheet[1]]
    col = head.index("Cost (EUR)")
    assert sum(Decimal(repr(r[col].value)) for r in sheet.iter_rows(min_row=2) if r[col].value is not None) \
        == pytest.approx(Decimal(usd_text(want)))
    pdf = PdfReader(io.BytesIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&currency=EUR&format=pdf")))
    assert exact_money(want) in "\n".join(page.extract_text() for page in pdf.pages)
    focus = list(csv.DictReader(io.StringIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&currency=EUR"
                                                         "&format=focus").decode())))
    assert sum(Decimal(r["BilledCost"]) for r in focus) == Decimal(usd_text(want))
    assert {r["BillingCurrency"] for r in focus} == {"EUR"} and {r["PricingCurrency"] for r in focus} == {"USD"}
    usd_focus = list(csv.DictReader(io.StringIO(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=focus")
                                                .decode())))
    assert sum(Decimal(r["PricingCurrencyEffectiveCost"]) for r in focus) == \
        sum(Decimal(r["BilledCost"]) for r in usd_focus)
    assert {r["x_ExchangeRate"] for r in focus} <= set(RATES.values())


def test_a_bad_currency_is_a_400_naming_the_parameter(client: FlaskClient) -> None:
    for value, words in (("JPY", "no exchange rates for 'JPY'"), ("eur", "currency")):
        response = client.get(f"/api/v1/reports/summary?{WINDOW}&currency={value}", headers=auth())
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["parameter"] == "currency" and words in error["message"]
    early = client.get("/api/v1/reports/summary?from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z&currency=EUR",
                       headers=auth())
    assert early.status_code in (200, 400)
    if early.status_code == 400:
        assert early.get_json()["error"]["parameter"] == "currency"


@pytest.mark.slow
@pytest.mark.parametrize("currency", ["", "&currency=EUR"])
def test_focus_with_units_and_a_billing_currency_passes_the_validator(client: FlaskClient, tmp_path: Path,
                                                                      currency: str) -> None:
    exe, site = _validator()
    data = tmp_path / "focus.csv"
    data.write_bytes(_get(client, f"/api/v1/reports/cost?{WINDOW}&format=focus{currency}"))
    report = tmp_path / "focus-validator.xml"
    criteria = ",".join((*APPLICABILITY_CRITERIA, SUB_ACCOUNT_CRITERION))
    run = subprocess.run([str(exe), "--block-download", "--validate-version", MODEL_VERSION, "--data-file", str(data),
                          "--applicability-criteria", criteria, "--output-type", "unittest",
                          "--output-destination", str(report)], cwd=site, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and report.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    results = _results(report)
    failed = {rule for rule, state in results.items() if state == "failed"}
    assert failed <= set(ARTIFACTS), f"rules failed: {sorted(failed - set(ARTIFACTS))}"
    assert sum(state == "passed" for state in results.values()) >= 200
