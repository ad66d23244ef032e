"""Edges of a request: hostile cursors, foreign Host headers without tokens, a ledger that vanished."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from genai_meter.ledger import open_reader
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.readers import PerThreadReader
from tests.reports.conftest import NOW_NS, auth, build_calls, make_config, write_ledger

BIG = str(2**63)


@pytest.mark.parametrize("cursor", [
    f"{BIG}:{'00' * 16}:{'00' * 8}", f"{2**64 + 5}:{'ab' * 16}:{'cd' * 8}", "99999999999999999999999:00:00",
    "abc", "1:zz:00", "1:2", "-1:00:00", f"{BIG}:00",
])
def test_bad_event_cursors_are_400_naming_cursor(client: FlaskClient, cursor: str) -> None:
    for fmt in ("json", "csv"):
        response = client.get("/api/v1/events", query_string={"cursor": cursor, "format": fmt}, headers=auth())
        assert response.status_code == 400, (fmt, cursor, response.get_data(as_text=True))
        assert response.get_json()["error"]["parameter"] == "cursor"


@pytest.mark.parametrize("cursor", [f"{BIG}:6162", f"{2**70}:00", "x:00", "1:zz", "-5:00"])
def test_bad_conversation_cursors_are_400_naming_cursor(client: FlaskClient, cursor: str) -> None:
    response = client.get("/api/v1/conversations", query_string={"range": "30d", "cursor": cursor}, headers=auth())
    assert response.status_code == 400, (cursor, response.get_data(as_text=True))
    assert response.get_json()["error"]["parameter"] == "cursor"


def test_a_good_cursor_still_pages(client: FlaskClient) -> None:
    first = client.get("/api/v1/events?limit=5", headers=auth()).get_json()
    second = client.get("/api/v1/events", query_string={"limit": 5, "cursor": first["next_cursor"]},
                        headers=auth()).get_json()
    assert len(second["calls"]) == 5 and second["calls"][0]["time"] <= first["calls"][-1]["time"]


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """An app with no tokens configured (the open, loopback-only mode), listening on 127.0.0.1:8080."""
    tmp = tmp_path_factory.mktemp("open")
    config = make_config(tmp, {"reports": {"listen": "127.0.0.1:8080"}})
    write_ledger(config, build_calls(n_days=2, per_day=5))
    assert config.ledger.url is not None
    return create_app(config, open_reader(config.ledger.url, config), clock=lambda: NOW_NS,
                      listen_host="127.0.0.1")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io:8080", "10.0.0.7:8080",
                                  "localhost.evil.example", "[2001:db8::1]:8080"])
def test_no_token_mode_refuses_foreign_hosts(open_app: Flask, host: str) -> None:
    client = open_app.test_client()
    for path in ("/api/v1/events", "/api/v1/reports/summary", "/", "/api/v1/openapi.json"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 403, (host, path, response.status_code)
        error = response.get_json()["error"]
        assert error["parameter"] == "Host" and "DNS rebinding" in error["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:8080", "localhost", "[::1]:8080", "127.0.0.2",
                                  "LOCALHOST:8080"])
def test_no_token_mode_serves_loopback_hosts(open_app: Flask, host: str) -> None:
    response = open_app.test_client().get("/api/v1/events", headers={"Host": host})
    assert response.status_code == 200, (host, response.get_data(as_text=True))


def test_token_mode_serves_any_host(client: FlaskClient) -> None:
    response = client.get("/api/v1/events", headers={**auth(), "Host": "reports.example.com"})
    assert response.status_code == 200


def in_new_thread(call: Callable[[], TestResponse]) -> TestResponse:
    """Run `call` in a thread of its own (a waitress worker the service has not seen yet)."""
    out: list[TestResponse] = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    thread.join(timeout=60)
    return out[0]


def test_vanished_ledger_is_503_with_retry_after_and_health_says_why(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    write_ledger(config, build_calls(n_days=2, per_day=5))
    url = config.ledger.url
    assert url is not None
    reader = PerThreadReader(lambda: open_reader(url, config), keep=0)  # every request opens the ledger anew
    client = create_app(config, reader, clock=lambda: NOW_NS).test_client()
    assert in_new_thread(lambda: client.get("/api/v1/events", headers=auth())).status_code == 200
    (tmp_path / "ledger.db").rename(tmp_path / "moved-away.db")
    try:
        for path in ("/api/v1/events", "/api/v1/reports/summary", "/api/v1/budgets", "/api/v1/health"):
            response = in_new_thread(lambda path=path: client.get(path, headers=auth()))  # type: ignore[misc]
            assert response.status_code == 503, (path, response.get_data(as_text=True))
            assert int(response.headers["Retry-After"]) >= 1
            body = response.get_data(as_text=True)
            assert "Traceback" not in body and "sqlite" not in body.lower()
        health = in_new_thread(lambda: client.get("/api/v1/health")).get_json()
        assert "the ledger file is gone" in health["error"]["message"]
    finally:
        (tmp_path / "moved-away.db").rename(tmp_path / "ledger.db")
    assert in_new_thread(lambda: client.get("/api/v1/health")).status_code == 200  # back once it is back
    reader.close()


def test_readers_are_kept_for_running_requests_not_for_every_thread(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    write_ledger(config, build_calls(n_days=2, per_day=5))
    url = config.ledger.url
    assert url is not None
    reader = PerThreadReader(lambda: open_reader(url, config), keep=2)
    client = create_app(config, reader, clock=lambda: NOW_NS).test_client()
    for _ in range(20):  # twenty threads, one after another: one reader serves them all
        assert in_new_thread(lambda: client.get("/api/v1/events?limit=3", headers=auth())).status_code == 200
    assert reader.open_readers() == 1
    started, go = threading.Barrier(6), threading.Event()

    def hold() -> None:  # five threads using a reader at once
        reader.coverage()
        started.wait(timeout=30)
        go.wait(timeout=30)
        reader.release()

    threads = [threading.Thread(target=hold) for _ in range(5)]
    for thread in threads:
        thread.start()
    started.wait(timeout=30)
    assert reader.open_readers() == 5
    go.set()
    for thread in threads:
        thread.join(timeout=30)
    assert reader.open_readers() == 2  # two kept idle, the others closed
    reader.close()
