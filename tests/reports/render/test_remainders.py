"""Grouped reports add up to the ungrouped total to the last digit, in every format and at every size:
every group, or the top `limit` groups and one `(other)` row with the exact sums of the rest (JSON marks
it `remainder`; CSV streams every group unless a limit is asked; XLSX, PDF and the page say so)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from genai_meter.reports.insights.grouped import OTHER
from genai_meter.reports.render.numbers import exact_money
from tests.reports.conftest import auth

WINDOW = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"
GROUPED = [("summary", "groups"), ("detailed", "groups"), ("cost", "groups"), ("cost", "by_model"),
           ("detailed", "requests_by_model")]


def get(client: FlaskClient, url: str) -> bytes:
    response = client.get(url, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def usd(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def totals(client: FlaskClient) -> tuple[int, Decimal, int]:
    s = client.get(f"/api/v1/reports/summary?{WINDOW}", headers=auth()).get_json()["summary"]
    return s["calls"], Decimal(s["cost_usd"]), s["tokens_total"]


def _url(kind: str, group: str, fmt: str, limit: int | None, section: str = "") -> str:
    tail = f"&limit={limit}" if limit else ""
    return f"/api/v1/reports/{kind}?{WINDOW}&group_by={group}&format={fmt}{tail}" + (
        f"&section={section}" if section else "")


@pytest.mark.parametrize("kind,table", GROUPED)
@pytest.mark.parametrize("group", ["customer", "model", "feature", "organization"])
@pytest.mark.parametrize("limit", [None, 1, 2, 3, 50])
def test_json_and_csv_groups_add_up(client: FlaskClient, kind: str, table: str, group: str,
                                    limit: int | None) -> None:
    calls, cost, tokens = totals(client)
    body = client.get(_url(kind, group, "json", limit), headers=auth()).get_json()
    t = body["tables"][table]
    rows = t["rows"]
    assert sum(r["calls"] for r in rows) == calls
    assert sum(usd(r["cost_usd"]) for r in rows) == cost
    assert sum(r["tokens_total"] for r in rows) == tokens
    key = "model" if table in ("by_model", "requests_by_model") else group
    others = [r for r in rows if r[key] == OTHER]
    if t["remainder"] is None:
        assert not others
    else:
        assert limit is not None and len(rows) == limit + 1 and rows[-1] is others[0]
        assert t["remainder"]["limit"] == limit and t["remainder"]["groups"] >= 1 and OTHER in t["note"]
    lines = list(csv.DictReader(io.StringIO(get(client, _url(kind, group, "csv", limit, table)).decode())))
    assert sum(int(r["calls"]) for r in lines) == calls
    assert sum(usd(r["cost_usd"]) for r in lines) == cost
    assert [r[key] for r in lines] == [r[key] for r in rows]  # limit or not: the same rows as the JSON
    if limit is None:
        assert OTHER not in {r[key] for r in lines}


@pytest.mark.parametrize("group", ["customer", "model"])
@pytest.mark.parametrize("limit", [1, 2, None])
def test_xlsx_groups_add_up(client: FlaskClient, group: str, limit: int | None) -> None:
    calls, cost, _ = totals(client)
    book = openpyxl.load_workbook(io.BytesIO(get(client, _url("summary", group, "xlsx", limit))))
    sheet = book["groups"]
    head = [c.value for c in sheet[1]]
    at_calls, at_cost, at_key = head.index("Requests"), head.index("Cost (USD)"), head.index(group.capitalize())
    rows = [r for r in sheet.iter_rows(min_row=2) if r[at_key].value is not None and r[at_calls].value is not None]
    assert sum(r[at_calls].value for r in rows) == calls
    assert sum(Decimal(repr(r[at_cost].value)) for r in rows if r[at_cost].value is not None) == cost
    others = [r for r in rows if r[at_key].value == OTHER]
    assert len(others) == (limit is not None and len(rows) == limit + 1 and rows[-1][at_key].value == OTHER)


@pytest.mark.parametrize("group", ["customer", "model"])
@pytest.mark.parametrize("limit", [1, 2, None])
def test_pdf_groups_add_up_in_its_exact_figures(client: FlaskClient, group: str, limit: int | None) -> None:
    calls, cost, _ = totals(client)
    rows = client.get(_url("summary", group, "json", limit), headers=auth()).get_json()["tables"]["groups"]
    pdf = PdfReader(io.BytesIO(get(client, _url("summary", group, "pdf", limit))))
    text = "\n".join(page.extract_text().replace("\x00", "") for page in pdf.pages)
    appendix = text.split("Exact figures (USD)", 1)[1]
    total = Decimal(0)
    for r in rows["rows"]:
        assert r[group] in text
        if r["cost_usd"] is not None:
            pico = int(Decimal(r["cost_usd"]).scaleb(12))
            assert exact_money(pico) in appendix, r[group]
            total += Decimal(r["cost_usd"])
    assert total == cost and sum(r["calls"] for r in rows["rows"]) == calls
    assert (OTHER in text) == (rows["remainder"] is not None)
    if rows["remainder"] is not None:
        assert "summed in the last" in text


@pytest.mark.parametrize("limit", [1, 2, None])
@pytest.mark.parametrize("step", ["1d", "1w"])
def test_trend_by_group_adds_up_per_step(client: FlaskClient, limit: int | None, step: str) -> None:
    calls, cost, _ = totals(client)
    body = client.get(_url("trend", "customer", "json", limit) + f"&step={step}", headers=auth()).get_json()
    series = body["tables"]["series"]
    ungrouped = client.get(f"/api/v1/reports/trend?{WINDOW}&step={step}", headers=auth()).get_json()
    per_step = {r["start"]: (r["calls"], usd(r["cost_usd"])) for r in ungrouped["tables"]["series"]["rows"]}
    got: dict[str, tuple[int, Decimal]] = {}
    for r in series["rows"]:
        n, c = got.get(r["start"], (0, Decimal(0)))
        got[r["start"]] = (n + r["calls"], c + usd(r["cost_usd"]))
    assert {k: v for k, v in got.items() if v[0]} == {k: v for k, v in per_step.items() if v[0]}
    assert sum(v[0] for v in got.values()) == calls and sum(v[1] for v in got.values()) == cost
    lines = list(csv.DictReader(io.StringIO(get(client, _url("trend", "customer", "csv", None) + f"&step={step}")
                                            .decode())))
    assert sum(int(r["calls"]) for r in lines) == calls and sum(usd(r["cost_usd"]) for r in lines) == cost
    assert OTHER not in {r["customer"] for r in lines}
