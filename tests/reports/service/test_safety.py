"""Bad input gets a 400 naming the parameter; injection finds nothing; ledger faults give 503; no traces leak."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from genai_meter.ledger import open_reader
from genai_meter.reports.command import run
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import NOW_NS, auth, build_calls, make_config, write_ledger

INJECTIONS = ["x' OR '1'='1", "acme'; DROP TABLE calls; --", "%", "_", "*", "acme%", "\\", "' UNION SELECT 1 --",
              "1) OR (1=1", "acme\" OR \"\"=\"", "${jndi:ldap://x}", "<script>alert(1)</script>", "é中文", " acme"]
FIELDS = ["service", "environment", "provider", "model", "request_model", "operation", "status", "error_type",
          "conversation", "user", "customer", "feature", "organization"]


@pytest.mark.parametrize("field", FIELDS)
def test_injection_in_every_filter_matches_nothing(client: FlaskClient, ledger: tuple, field: str) -> None:
    for value in INJECTIONS:
        response = client.get("/api/v1/reports/summary", query_string={"range": "90d", field: value},
                              headers=auth())
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["summary"]["calls"] == 0
        events = client.get("/api/v1/events", query_string={field: value}, headers=auth())
        assert events.status_code == 200 and events.get_json()["calls"] == []
    after = client.get("/api/v1/reports/summary?range=90d", headers=auth()).get_json()
    assert after["summary"]["calls"] == ledger[1].calls


def test_injection_in_group_by_and_path(client: FlaskClient) -> None:
    bad = client.get("/api/v1/reports/summary?group_by=model;DROP TABLE calls", headers=auth())
    assert bad.status_code == 400 and bad.get_json()["error"]["parameter"] == "group_by"
    assert client.get("/api/v1/dimensions/model%27--/values", headers=auth()).status_code == 404
    assert client.get("/api/v1/reports/summary%27", headers=auth()).status_code == 404
    conv = client.get("/api/v1/conversations/x'%20OR%20'1'='1", headers=auth())
    assert conv.status_code == 404


@pytest.mark.parametrize(("query", "parameter"), [
    ("range=2y", "range"), ("from=yesterday", "from"), ("from=2026-01-01T00:00:00", "from"),
    ("to=2026-01-01T00:00:00Z", "from"), ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ("from=1970-01-01T00:00:00Z&to=2200-01-01T00:00:00Z", "to"), ("range=24h&from=2026-01-01T00:00:00Z", "range"),
    ("step=5m", "step"), ("format=docx", "format"), ("compare=last_year", "compare"), ("top=0", "top"),
    ("top=1000000", "top"), ("top=abc", "top"), ("bogus=1", "bogus"), ("range=24h&range=7d", "range"),
    ("group_by=nonsense", "group_by"), ("group_by=model&group_by=model", "group_by"),
    ("group_by=a&group_by=b&group_by=c&group_by=d", "group_by"), ("section=nope&format=csv", "section"),
    ("rows=calls", "rows"), ("model=" + "x" * 300, "model"),
])
def test_bad_parameters_are_400_naming_them(client: FlaskClient, query: str, parameter: str) -> None:
    response = client.get(f"/api/v1/reports/summary?{query}", headers=auth())
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["parameter"] == parameter and parameter in error["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_allowed_values_are_named(client: FlaskClient) -> None:
    message = client.get("/api/v1/reports/summary?format=docx", headers=auth()).get_json()["error"]["message"]
    assert "json, csv, xlsx, pdf, focus" in message
    message = client.get("/api/v1/reports/trend?range=90d&step=1m", headers=auth()).get_json()["error"]["message"]
    assert "at most 5000" in message


def test_huge_ranges_are_bounded(client: FlaskClient) -> None:
    ok = client.get("/api/v1/reports/summary?from=2024-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", headers=auth())
    assert ok.status_code == 200
    too_long = client.get("/api/v1/reports/summary?from=1970-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
                          headers=auth())
    assert too_long.status_code == 400 and "1100 days" in too_long.get_json()["error"]["message"]
    trend = client.get("/api/v1/reports/trend?from=2024-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&step=1h",
                       headers=auth())
    assert trend.status_code == 400 and trend.get_json()["error"]["parameter"] == "step"
    focus = client.get("/api/v1/reports/summary?from=2025-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&format=focus",
                       headers=auth())
    assert focus.status_code == 400 and focus.get_json()["error"]["parameter"] == "range"
    limit = client.get("/api/v1/events?limit=100000", headers=auth())
    assert limit.status_code == 400 and limit.get_json()["error"]["parameter"] == "limit"


def test_unknown_routes_and_methods_are_json(client: FlaskClient) -> None:
    assert client.get("/api/v1/nothing", headers=auth()).get_json()["error"]["status"] == 404
    assert client.post("/api/v1/reports/summary", headers=auth()).status_code == 405
    assert client.get("/api/v1/reports/invoice", headers=auth()).status_code == 404


def test_locked_ledger_refuses_to_start_with_a_clear_error(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    write_ledger(config, build_calls(n_days=2, per_day=5))
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
        blocker.execute("BEGIN EXCLUSIVE")
        args = argparse.Namespace(ledger=None, listen="127.0.0.1:0")
        assert run(args, config) == 2
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    err = capsys.readouterr().err
    assert "locked" in err and str(tmp_path / "ledger.db") in err


def test_missing_or_corrupt_ledger_is_503_without_a_trace(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    write_ledger(config, build_calls(n_days=2, per_day=5))
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    client = create_app(config, reader, clock=lambda: NOW_NS).test_client()
    assert client.get("/api/v1/events", headers=auth()).status_code == 200
    reader.close()  # the connection is gone: as if the ledger vanished under the service
    for url in ("/api/v1/reports/summary", "/api/v1/events", "/api/v1/forecast", "/api/v1/health"):
        response = client.get(url, headers=auth())
        assert response.status_code == 503, (url, response.get_data(as_text=True))
        body = response.get_data(as_text=True)
        assert "Traceback" not in body and "sqlite" not in body.lower()
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)
