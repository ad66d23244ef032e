"""A scoped token sees only its organization's rows on every endpoint and format, whatever it asks."""

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
from tests.reports.conftest import ACME_TOKEN, auth

ACME = auth(ACME_TOKEN)
W = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"
ESCAPES = ["", "&organization=globex", "&organization=acme&organization=globex", "&group_by=organization",
           "&group_by=customer&group_by=organization", "&customer=c-1&organization=acme"]


def acme(ledger: tuple, field: str = "cost") -> int:
    return ledger[1].by[("organization", "acme")][field]


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("kind", ["summary", "detailed", "cost", "trend"])
def test_reports_json(client: FlaskClient, ledger: tuple, kind: str, escape: str) -> None:
    response = client.get(f"/api/v1/reports/{kind}?{W}{escape}", headers=ACME)
    if "globex" in escape:
        assert response.status_code == 403
        assert response.get_json()["error"]["parameter"] == "organization"
        return
    assert response.status_code == 200
    body = response.get_json()
    assert body["filters"]["organization"] == ["acme"]
    totals = body["tables"]["totals"]["rows"][0]
    if "customer=c-1" in escape:
        assert Decimal(totals["cost_usd"]) < Decimal(acme(ledger)).scaleb(-12)
    else:
        assert totals["cost_usd"] == usd_text(acme(ledger))
        assert totals["calls"] == acme(ledger, "calls")
    groups = body["tables"].get("groups")
    if groups and "organization" in body["group_by"]:
        assert {r["organization"] for r in groups["rows"]} == {"acme"}
    assert "globex" not in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf", "focus"])
def test_every_format(client: FlaskClient, ledger: tuple, fmt: str) -> None:
    response = client.get(f"/api/v1/reports/detailed?{W}&format={fmt}&group_by=organization", headers=ACME)
    assert response.status_code == 200
    data = response.get_data()
    want = Decimal(acme(ledger)).scaleb(-12)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert [r["organization"] for r in rows] == ["acme"] and Decimal(rows[0]["cost_usd"]) == want
    elif fmt == "focus":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert {r["SubAccountId"] for r in rows} == {"acme"}
        assert sum(Decimal(r["BilledCost"]) for r in rows) == want
    elif fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data))
        values = {str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row}
        assert "globex" not in values and "acme" in values
    else:
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
        assert "globex" not in text and exact_money(acme(ledger)) in text
    assert b"globex" not in data


def test_calls_csv_events_conversations_values(client: FlaskClient, ledger: tuple) -> None:
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/reports/detailed?{W}&format=csv&rows=calls",
                                                      headers=ACME).get_data(as_text=True))))
    assert len(rows) == acme(ledger, "calls") and {r["organization"] for r in rows} == {"acme"}
    events = client.get("/api/v1/events?limit=500", headers=ACME).get_json()["calls"]
    assert events and {e["dimensions"]["organization"] for e in events} == {"acme"}
    assert client.get("/api/v1/events?organization=globex", headers=ACME).status_code == 403
    csv_events = client.get("/api/v1/events?format=csv", headers=ACME).get_data(as_text=True)
    assert "globex" not in csv_events
    convs = client.get(f"/api/v1/conversations?{W}&limit=500", headers=ACME).get_json()["conversations"]
    for conv in convs:
        detail = client.get(f"/api/v1/conversations/{conv['conversation']}", headers=ACME).get_json()
        assert {c["dimensions"]["organization"] for c in detail["calls"]} == {"acme"}
        assert detail["cost_usd"] == conv["cost_usd"]
    values = client.get(f"/api/v1/dimensions/organization/values?{W}", headers=ACME).get_json()["values"]
    assert values == ["acme"]
    customers = client.get(f"/api/v1/dimensions/customer/values?{W}&organization=globex", headers=ACME)
    assert customers.status_code == 403


def test_a_conversation_of_another_org_is_not_found(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    globex_only = {call.conversation_id for call, _ in known.calls_list if call.conversation_id} - {
        call.conversation_id for call, _ in known.calls_list if call.dimensions["organization"] == "acme"}
    mixed = {call.conversation_id for call, _ in known.calls_list if call.conversation_id}
    for conv in mixed:
        response = client.get(f"/api/v1/conversations/{conv}", headers=ACME)
        if conv in globex_only:
            assert response.status_code == 404
        else:
            assert all(c["dimensions"]["organization"] == "acme" for c in response.get_json()["calls"])


def test_forecast_budgets_recommendations(client: FlaskClient, ledger: tuple) -> None:
    admin = client.get("/api/v1/forecast?horizon=7d", headers=auth()).get_json()
    scoped = client.get("/api/v1/forecast?horizon=7d", headers=ACME).get_json()
    assert Decimal(scoped["month"]["spent_usd"]) < Decimal(admin["month"]["spent_usd"])
    total_hist = sum(Decimal(d["cost_usd"]) for d in scoped["history"])
    assert total_hist <= Decimal(acme(ledger)).scaleb(-12)
    budgets = client.get("/api/v1/budgets", headers=ACME).get_json()["budgets"]
    assert [b["name"] for b in budgets] == ["acme-monthly"]
    assert client.get("/api/v1/budgets/all-monthly", headers=ACME).status_code == 404
    assert client.get("/api/v1/budgets/globex-daily-tokens", headers=ACME).status_code == 404
    assert client.get("/api/v1/budgets/acme-monthly", headers=ACME).status_code == 200
    recs = client.get("/api/v1/recommendations", headers=ACME).get_data(as_text=True)
    assert "globex" not in recs
    assert client.get("/api/v1/schedules", headers=ACME).status_code == 403


def test_no_or_bad_token_is_401(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = client.get("/api/v1/reports/summary", headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/openapi.json").status_code == 200
