"""The reconciliation end to end (scenario.py): an export with one exact day, one day with calls the meter
never saw and one day billed at another tier reconciles to 0.000000, $0.19 and $0.3325 with the right
causes, through `genai-meter reconcile import` and `report` (table, JSON, CSV) and through
`GET /api/v1/reconciliation` in every format (XLSX read back with openpyxl, PDF with pypdf); the same
rows on the ClickHouse backend (chdb); a bad file stores nothing of its command.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import yaml
from flask.testing import FlaskClient
from pypdf import PdfReader

from genai_meter.cli import main
from genai_meter.config import Config, load_config
from genai_meter.ledger import open_reader
from genai_meter.ledger.clickhouse_provider_lines import ClickHouseProviderLines, migrated_clickhouse
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter
from genai_meter.ledger.query import Reader
from genai_meter.pricing import PriceBook
from genai_meter.reconcile import read_export
from genai_meter.reconcile.compare import reconcile
from genai_meter.reconcile.store import Loaded, line_of, to_batch
from genai_meter.reports.service.app import create_app
from tests.reconcile.scenario import (
    AFTER,
    BEFORE,
    EXACT_DAY,
    MISSING_DAY,
    MISSING_USD,
    TIER_DAY,
    TIER_USD,
    WINDOW_TO,
    metered,
    scenario_page,
    scenario_spans,
    store_spans,
    write_page,
)
from tests.reconcile.support import load, write_json

WINDOW = ["--from", BEFORE.isoformat(), "--to", WINDOW_TO.isoformat()]
QUERY = f"from={BEFORE}&to={WINDOW_TO}"
EXPECTED = [(EXACT_DAY.isoformat(), "exact", "0.000000000000", 4, 4),
            (MISSING_DAY.isoformat(), "unmetered_calls", "0.190000000000", 6, 4),
            (TIER_DAY.isoformat(), "price", "0.332500000000", 5, 5)]


@dataclass
class Setup:
    config_path: Path
    config: Config
    page: Path
    ledger_cost: Decimal

    def cli(self, *args: str) -> int:
        return main(["reconcile", *args, "--config", str(self.config_path)])


@pytest.fixture()
def setup(tmp_path: Path) -> Setup:
    path = tmp_path / "genai-meter.yaml"
    path.write_text(yaml.safe_dump({"ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}}), encoding="utf-8")
    config = load_config(path)
    cost = store_spans(config, scenario_spans())
    return Setup(path, config, write_page(tmp_path / "usage.json", scenario_page()), cost)


def rows_of(body: dict) -> list[tuple[object, ...]]:
    return [(r["day"], r["cause"], r["difference_usd"], r["requests_provider"], r["requests_ledger"])
            for r in body["rows"]]


def test_expected_figures_are_the_published_rates() -> None:
    assert (Decimal("0.19"), Decimal("0.3325")) == (MISSING_USD, TIER_USD)


def test_cli_import_and_report(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup.ledger_cost == Decimal("1.235")  # 13 calls at $0.095, as the real PriceBook priced the spans
    assert setup.cli("import", str(setup.page)) == 0
    assert f"stored 3 lines of 3 provider-day reports (openai, {EXACT_DAY}..{TIER_DAY})" in capsys.readouterr().out
    assert setup.cli("import", str(setup.page)) == 0  # again: replaced, never added twice
    capsys.readouterr()
    assert setup.cli("report", *WINDOW, "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert rows_of(body) == EXPECTED
    exact, missing, tier = body["rows"]
    assert (exact["model"], exact["provider_models"], exact["ledger_models"]) == ("gpt-4o", ["gpt-4o-2024-08-06"],
                                                                                ["gpt-4o"])
    assert (exact["cost_provider_usd"], exact["cost_ledger_usd"], exact["difference_pct"]) == (
        "0.380000000000", "0.380000000000", "0.000000")
    assert missing["explanation"] == "the provider counts 6 requests, the ledger 4: 2 calls the meter never saw ($0.19)"
    assert tier["explanation"] == ("same usage, the provider's cost is $0.3325 higher: it billed 5 requests at the "
                                   "priority tier")
    assert (tier["cost_provider_usd"], tier["cost_ledger_usd"]) == ("0.807500000000", "0.475000000000")
    assert body["totals"]["difference_usd"] == "0.522500000000"
    assert body["totals"]["causes"] == {"exact": 1, "unmetered_calls": 1, "price": 1}
    assert [d["difference_usd"] for d in body["drift"]] == ["0.000000000000", "0.190000000000", "0.332500000000"]
    assert setup.cli("report", *WINDOW) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == [EXACT_DAY.isoformat(), "openai", "gpt-4o", "4", "4", "0.380000", "0.380000", "0.000000",
                                "0.000000", "exact"]
    assert table[2].split()[-3:] == ["0.190000", "33.333333", "unmetered_calls"]
    assert table[3].split()[-3:] == ["0.332500", "41.176471", "price"]


def test_a_bad_file_stores_nothing_of_its_command(setup: Setup, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    page = load("openai_completions.json")
    del page["data"][0]["results"][0]["num_model_requests"]  # type: ignore[index]
    bad = write_json(tmp_path, "bad.json", page)
    assert setup.cli("import", str(setup.page), str(bad)) == 2
    captured = capsys.readouterr()
    assert captured.err == f"genai-meter: {bad}: data[0].results[0].num_model_requests: missing\n"
    assert setup.cli("report", *WINDOW, "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["rows"] == [] and body["days_covered"] == []


@pytest.fixture()
def client(setup: Setup) -> Iterator[FlaskClient]:
    assert setup.cli("import", str(setup.page)) == 0
    url = setup.config.ledger.url
    assert url is not None
    reader = open_reader(url, setup.config)
    yield create_app(setup.config, reader, ledger_url=url).test_client()
    reader.close()


def test_api_json_equals_the_cli(setup: Setup, client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    answer = client.get(f"/api/v1/reconciliation?{QUERY}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert rows_of(body) == EXPECTED
    capsys.readouterr()
    assert setup.cli("report", *WINDOW, "--json") == 0
    assert json.loads(capsys.readouterr().out) == body
    assert client.get(f"/api/v1/reconciliation?{QUERY}&provider=anthropic").get_json()["rows"] == []


def test_api_csv_equals_the_cli(setup: Setup, client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    answer = client.get(f"/api/v1/reconciliation?{QUERY}&format=csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    text = answer.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["day"], r["cause"], r["difference_usd"], r["requests_provider"], r["requests_ledger"])
            for r in rows] == [(d, c, u, str(p), str(led)) for d, c, u, p, led in EXPECTED]
    assert rows[0]["tokens_reasoning_provider"] == ""  # folded into output by OpenAI's usage report
    capsys.readouterr()
    assert setup.cli("report", *WINDOW, "--csv") == 0
    assert capsys.readouterr().out == text


def test_api_xlsx(client: FlaskClient) -> None:
    answer = client.get(f"/api/v1/reconciliation?{QUERY}&format=xlsx")
    assert answer.status_code == 200
    assert f"genai-meter-reconciliation-{BEFORE}-{AFTER}.xlsx" in answer.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(answer.get_data()))
    sheet = book["reconciliation"]
    head = [cell.value for cell in sheet[1]]
    values = [dict(zip(head, (cell.value for cell in row), strict=True)) for row in sheet.iter_rows(min_row=2, max_row=4)]
    assert sheet.cell(6, 1).value.startswith("Difference: the provider's cost minus the ledger's")  # the table's note
    assert [(v["Day (UTC)"], v["Cause"], v["Difference (USD)"]) for v in values] == [
        (EXACT_DAY.isoformat(), "exact", 0), (MISSING_DAY.isoformat(), "unmetered_calls", 0.19),
        (TIER_DAY.isoformat(), "price", 0.3325)]
    by_cause = [row[:3] + row[5:6] for row in book["by_cause"].iter_rows(min_row=2, values_only=True)]
    assert by_cause == [("exact", "Exact", 1, 0), ("unmetered_calls", "Calls the meter never saw", 1, 0.19),
                        ("price", "Different price", 1, 0.3325)]
    exact = {r[0].value: [c.value for c in r] for r in book["exact_figures"].iter_rows(min_row=2)}
    assert exact[EXACT_DAY.isoformat()][5] == "0.000000000000" and exact[TIER_DAY.isoformat()][5] == "0.332500000000"


def test_api_pdf(client: FlaskClient) -> None:
    answer = client.get(f"/api/v1/reconciliation?{QUERY}&format=pdf")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    text = "\n".join(page.extract_text().replace("\x00", "") for page in PdfReader(io.BytesIO(answer.get_data())).pages)
    assert "Reconciliation" in text
    for figure in ("0.000000000000", "0.190000000000", "0.332500000000", "$0.19", "$0.33", "unmetered_calls",
                   "price", "exact"):
        assert figure in text, figure
    assert "What to do" in text and "By cause" in text and "Different price" in text


def test_api_errors_name_the_parameter(client: FlaskClient) -> None:
    for query, parameter in ((f"from={AFTER}&to={BEFORE}", "to"), ("from=yesterday", "from"),
                             (f"range=7d&from={BEFORE}", "range"), ("format=docx", "format")):
        answer = client.get(f"/api/v1/reconciliation?{query}")
        assert answer.status_code == 400, query
        assert answer.get_json()["error"]["parameter"] == parameter, (query, answer.get_json())


def test_the_same_rows_on_clickhouse(tmp_path: Path) -> None:
    from tests.ledger.chdb_harness import ChdbExecutor, new_database  # chdb loads only where it is used

    config = Config()
    executor, db = new_database(config)
    writer = ClickHouseWriter(lambda: executor, db, config, tmp_path / "spool", seal_grace_s=10 * 365 * 86400)
    assert all(writer.submit(metered(config, scenario_spans())).result(30))
    writer.close()
    lines = ClickHouseProviderLines(ChdbExecutor(), db)
    migrated_clickhouse(lines.executor, db, config, migrate=False)
    export = read_export(write_page(tmp_path / "usage.json", scenario_page()))
    lines.replace([to_batch(export, {})], 1)
    reports, rows = lines.read(EXACT_DAY, TIER_DAY)
    rec = reconcile(Loaded(tuple(reports), tuple(line_of(r) for r in rows)), Reader(ClickHouseSource(executor, db, config)),
                    PriceBook(), config.reconcile, EXACT_DAY, TIER_DAY)
    assert rows_of(rec.as_json()) == EXPECTED
