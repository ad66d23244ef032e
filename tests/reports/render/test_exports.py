"""Every report total, in every format, equals the known sums of the stored calls exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from genai_meter.money import usd_text
from genai_meter.reports.render.numbers import exact_money
from tests.reports.conftest import CLASSES, auth

WINDOW = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"
KINDS = ("summary", "detailed", "cost", "trend")


def usd(pico: int) -> Decimal:
    return Decimal(pico).scaleb(-12)


def money(text: str | None) -> Decimal:
    """A money cell; blank or null (every call behind it unpriced) adds nothing."""
    return Decimal(text) if text else Decimal(0)


def get(client: FlaskClient, url: str) -> bytes:
    response = client.get(url, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def test_summary_json_uses_ledger_keys_and_exact_strings(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    body = client.get(f"/api/v1/reports/summary?{WINDOW}", headers=auth()).get_json()
    s = body["summary"]
    assert s["calls"] == known.calls == 600
    assert s["cost_usd"] == usd_text(known.cost_total)
    assert s["tokens"] == {c: known.tokens[c] for c in CLASSES[:5]}
    assert s["failures"] == known.errors and s["successes"] == known.calls - known.errors
    assert s["unpriced_calls"] == known.unpriced == 100
    assert s["cost_by_class_usd"] == {c: usd_text(known.cost[c]) for c in CLASSES}
    assert body["from"] == "2026-10-01T00:00:00Z" and body["to"] == "2026-11-21T00:00:00Z"
    assert set(body["coverage"]) == {"first_call", "last_call", "raw_since"}
    assert body["coverage"]["first_call"] is not None


@pytest.mark.parametrize("kind", KINDS)
def test_json_totals_table_of_every_report(client: FlaskClient, ledger: tuple, kind: str) -> None:
    _, known, _ = ledger
    body = client.get(f"/api/v1/reports/{kind}?{WINDOW}&group_by=customer", headers=auth()).get_json()
    row = body["tables"]["totals"]["rows"][0]
    assert row["calls"] == known.calls
    assert row["cost_usd"] == usd_text(known.cost_total)
    assert row["tokens_total"] == sum(known.tokens.values())


def test_group_rows_sum_to_the_total_and_match_each_customer(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    body = client.get(f"/api/v1/reports/detailed?{WINDOW}&group_by=customer", headers=auth()).get_json()
    rows = body["tables"]["groups"]["rows"]
    assert sum(Decimal(r["cost_usd"]) for r in rows) == usd(known.cost_total)
    for r in rows:
        assert Decimal(r["cost_usd"]) == usd(known.by[("customer", r["customer"])]["cost"])
        assert r["calls"] == known.by[("customer", r["customer"])]["calls"]
    by_model = body["tables"]["requests_by_model"]["rows"]
    assert sum(r["calls"] for r in by_model) == known.calls
    top = body["tables"]["top_cost_customer"]["rows"]
    assert [Decimal(r["cost_usd"]) for r in top] == sorted((Decimal(r["cost_usd"]) for r in top), reverse=True)


@pytest.mark.parametrize("kind", KINDS)
def test_csv_totals(client: FlaskClient, ledger: tuple, kind: str) -> None:
    _, known, _ = ledger
    text = get(client, f"/api/v1/reports/{kind}?{WINDOW}&format=csv&section=totals").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert Decimal(rows[0]["cost_usd"]) == usd(known.cost_total)
    assert int(rows[0]["calls"]) == known.calls
    for c in CLASSES[:5]:
        assert int(rows[0][f"tokens_{c}"]) == known.tokens[c]


def test_csv_main_tables_sum_exactly(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    groups = list(csv.DictReader(io.StringIO(get(client, f"/api/v1/reports/detailed?{WINDOW}&format=csv"
                                                         "&group_by=feature").decode())))
    assert sum(Decimal(r["cost_usd"]) for r in groups) == usd(known.cost_total)
    by_model = list(csv.DictReader(io.StringIO(get(client, f"/api/v1/reports/cost?{WINDOW}&format=csv").decode())))
    assert sum(money(r["cost_usd"]) for r in by_model) == usd(known.cost_total)
    assert [r["cost_usd"] for r in by_model if r["model"] == "mystery-model-x"] == [""], "unpriced: blank, never 0"
    series = list(csv.DictReader(io.StringIO(get(client, f"/api/v1/reports/trend?{WINDOW}&format=csv&step=1d")
                                             .decode())))
    assert sum(Decimal(r["cost_usd"]) for r in series) == usd(known.cost_total)
    assert sum(int(r["calls"]) for r in series) == known.calls
    header = get(client, f"/api/v1/reports/detailed?{WINDOW}&format=csv&group_by=feature").decode().splitlines()[0]
    assert header.startswith("feature,calls,successes,failures,error_rate,tokens_input,")


def test_streamed_call_csv_sums_exactly(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    rows = list(csv.DictReader(io.StringIO(get(client, f"/api/v1/reports/detailed?{WINDOW}&format=csv&rows=calls")
                                           .decode())))
    assert len(rows) == known.calls
    assert sum(money(r["cost_usd"]) for r in rows) == usd(known.cost_total)
    for c in CLASSES:
        assert sum(money(r[f"cost_{c}_usd"]) for r in rows) == usd(known.cost[c])
    unpriced = [r for r in rows if r["priced"] == "0"]
    assert len(unpriced) == known.unpriced and all(r["cost_usd"] == "" and r["exactness"] == "incomplete"
                                                   for r in unpriced)
    events = list(csv.DictReader(io.StringIO(get(client, "/api/v1/events?format=csv").decode())))
    assert len(events) == known.calls


@pytest.mark.parametrize("kind", KINDS)
def test_xlsx_cell_by_cell(client: FlaskClient, ledger: tuple, kind: str) -> None:
    _, known, _ = ledger
    book = openpyxl.load_workbook(io.BytesIO(get(client, f"/api/v1/reports/{kind}?{WINDOW}&format=xlsx"
                                                         "&group_by=customer")))
    assert book.sheetnames[0] == "Report"
    info = {r[0].value: r[1].value for r in book["Report"].iter_rows(min_row=3) if r[0].value}
    assert info["Cost (USD, exact)"] == usd_text(known.cost_total)
    assert Decimal(repr(info["Cost (USD)"])) == usd(known.cost_total) and info["Requests"] == known.calls
    assert info["Period from"] == "2026-10-01T00:00:00Z"
    totals = book["totals"]
    head = [c.value for c in totals[1]]
    values = list(totals[2])
    cell = dict(zip(head, values))
    assert isinstance(cell["Requests"].value, int) and cell["Requests"].value == known.calls
    assert isinstance(cell["Cost (USD)"].value, float)
    assert Decimal(repr(cell["Cost (USD)"].value)) == usd(known.cost_total)
    assert "$" in cell["Cost (USD)"].number_format
    for c in CLASSES[:5]:
        assert cell[f"Tokens {c.replace('_', ' ')}"].value == known.tokens[c]
    if kind in ("summary", "detailed", "cost"):
        groups = book["groups"]
        head = [c.value for c in groups[1]]
        cost_col = head.index("Cost (USD)")
        customer_col = head.index("Customer")
        for row in groups.iter_rows(min_row=2):
            if row[customer_col].value is None:
                continue
            want = usd(known.by[("customer", row[customer_col].value)]["cost"])
            assert Decimal(repr(row[cost_col].value)) == want
        assert groups._charts, "the group sheet has a native chart"


@pytest.mark.parametrize("kind", KINDS)
def test_pdf_text_shows_exact_totals(client: FlaskClient, ledger: tuple, kind: str) -> None:
    _, known, _ = ledger
    pdf = PdfReader(io.BytesIO(get(client, f"/api/v1/reports/{kind}?{WINDOW}&format=pdf&group_by=customer")))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Period: 2026-10-01T00:00:00Z to 2026-11-21T00:00:00Z" in text
    assert exact_money(known.cost_total) in text.split("Totals", 1)[0]  # the key figures, exact
    appendix = text.split("Exact figures (USD)", 1)[1]
    assert exact_money(known.cost_total) in appendix
    if kind != "trend":
        for customer in ("c-1", "c-2", "c-3"):
            assert exact_money(known.by[("customer", customer)]["cost"]) in appendix
    images = sum(len(page.images) for page in pdf.pages)
    assert images >= 1, "charts are drawn"


def test_focus_csv_sums_to_billed_cost_and_excludes_unpriced(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    response = client.get(f"/api/v1/reports/summary?{WINDOW}&format=focus", headers=auth())
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sum(Decimal(r["BilledCost"]) for r in rows) == usd(known.cost_total)
    assert sum(Decimal(r["EffectiveCost"]) for r in rows) == usd(known.cost_total)
    assert int(response.headers["X-Unpriced-Calls-Excluded"]) == known.unpriced
    assert not any("mystery-model-x" in r["SkuId"] for r in rows)
    for c in CLASSES[:5]:
        priced_tokens = sum(call.tokens.as_dict()[c] for call, pico in known.calls_list if pico)
        assert sum(Decimal(r["ConsumedQuantity"]) for r in rows if r["SkuId"].endswith("/" + c)) == priced_tokens
    fees = [r for r in rows if r["SkuId"].endswith("/request")]
    assert fees and sum(Decimal(r["BilledCost"]) for r in fees) == usd(known.cost["request"])
    assert all(r["PricingUnit"] == "Requests" for r in fees)
    # the gpt-4o discount override: list cost is the catalog price, 25 % above the billed (20 % off)
    gpt4o = [r for r in rows if r["SkuId"].startswith("openai/gpt-4o/")]
    billed = sum(Decimal(r["BilledCost"]) for r in gpt4o)
    listed = sum(Decimal(r["ListCost"]) for r in gpt4o)
    assert billed > 0 and abs(listed * Decimal("0.8") - billed) < Decimal("0.000001")

