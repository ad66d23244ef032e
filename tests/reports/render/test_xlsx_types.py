"""The XLSX export types every figure: numbers as numbers (Report sheet included), money in a currency
format with a fixed number of decimals per column, shares and percentages in a % format, blanks where
a cost is unknown (every call unpriced), never 0."""

from __future__ import annotations

import io

import openpyxl
import pytest
from flask.testing import FlaskClient

from tests.reports.conftest import auth

WINDOW = "from=2026-10-01T00:00:00Z&to=2026-11-21T00:00:00Z"
NUMERIC_TITLES = ("Requests", "Failures", "Total tokens", "Cost (USD)", "Share of cost", "Change", "Unpriced requests",
                  "Upper-bound requests", "Previous requests", "Previous cost (USD)", "Previous period (USD)",
                  "Error rate", "Hour")


def _book(client: FlaskClient, url: str) -> openpyxl.Workbook:
    response = client.get(url, headers=auth())
    assert response.status_code == 200
    return openpyxl.load_workbook(io.BytesIO(response.get_data()))


def test_report_sheet_numbers_are_numbers(client: FlaskClient, ledger: tuple) -> None:
    _, known, _ = ledger
    book = _book(client, f"/api/v1/reports/cost?{WINDOW}&format=xlsx&compare=previous_period")
    cells = {r[0].value: r[1] for r in book["Report"].iter_rows(min_row=3) if r[0].value}
    assert cells["Requests"].data_type == "n" and cells["Requests"].value == known.calls
    assert cells["Requests"].number_format == "#,##0"
    assert cells["Cost (USD)"].data_type == "n" and "$" in cells["Cost (USD)"].number_format
    assert cells["Unpriced requests"].value == known.unpriced and cells["Unpriced requests"].data_type == "n"
    assert cells["Exactness"].value == "incomplete"
    assert cells["Note: unpriced"].value.startswith(f"{known.unpriced} requests")


@pytest.mark.parametrize("kind", ["summary", "detailed", "cost", "trend"])
def test_every_table_cell_is_typed(client: FlaskClient, kind: str) -> None:
    book = _book(client, f"/api/v1/reports/{kind}?{WINDOW}&format=xlsx&group_by=customer&compare=previous_period")
    checked = 0
    for ws in book.worksheets[1:]:
        head = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2, max_row=ws.max_row):
            for title, cell in zip(head, row):
                if cell.value is None or title is None:
                    continue
                if title in NUMERIC_TITLES or title.startswith(("Cost", "Tokens", "Previous: Unpriced")):
                    assert cell.data_type == "n", (ws.title, title, cell.value)
                    checked += 1
                if title.startswith("Cost") or title.endswith("(USD)"):
                    assert cell.number_format.startswith("[$$-409]#,##0.0"), (ws.title, title)
                    decimals = cell.number_format.split(".")[1]
                    assert 2 <= len(decimals) <= 6 and set(decimals) == {"0"}
                if title in ("Share of cost", "Change", "Error rate"):
                    assert cell.number_format == "0.00%", (ws.title, title, cell.number_format)
    assert checked > 20


def test_change_is_a_fraction_with_a_percent_format(client: FlaskClient) -> None:
    book = _book(client, f"/api/v1/reports/trend?{WINDOW}&format=xlsx")
    ws = book["comparisons"]
    head = [c.value for c in ws[1]]
    col = head.index("Change")
    assert ws.cell(row=2, column=1).value == "week_over_week"
    change = ws.cell(row=2, column=col + 1)
    cost, prev = (ws.cell(row=2, column=head.index(t) + 1).value for t in ("Cost (USD)", "Previous cost (USD)"))
    assert change.number_format == "0.00%" and change.data_type == "n"
    assert abs(change.value - (cost - prev) / prev) < 1e-6


def test_unknown_cost_is_blank_not_zero(client: FlaskClient) -> None:
    book = _book(client, f"/api/v1/reports/cost?{WINDOW}&format=xlsx")
    ws = book["by_model"]
    head = [c.value for c in ws[1]]
    rows = {r[head.index("Model")].value: r for r in ws.iter_rows(min_row=2) if r[head.index("Model")].value}
    mystery = rows["mystery-model-x"]
    assert mystery[head.index("Cost (USD)")].value is None
    assert mystery[head.index("Exactness")].value == "incomplete"
    assert mystery[head.index("Unpriced requests")].value > 0
