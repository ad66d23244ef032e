"""`genai-meter reports`: start-up refusals and a real waitress server answering on loopback."""

from __future__ import annotations

import argparse
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from genai_meter.config import load_config
from genai_meter.money import usd_text
from genai_meter.reports.command import add_arguments, is_loopback, parse_listen, run
from tests.reports.conftest import ADMIN_TOKEN, build_calls, make_config, start_service, stop_service, write_ledger


def args(listen: str = "127.0.0.1:0", ledger: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(listen=listen, ledger=ledger)


def test_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(["--ledger", "sqlite:///x.db", "--listen", "0.0.0.0:9000"])
    assert ns.ledger == "sqlite:///x.db" and ns.listen == "0.0.0.0:9000"
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    with pytest.raises(ValueError, match="--listen"):
        parse_listen("8080")


def test_refuses_beyond_loopback_without_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"ledger": {"url": f"sqlite:///{tmp_path / 'l.db'}"}}))
    config = load_config(tmp_path / "c.yaml")
    assert run(args("0.0.0.0:8080"), config) == 2
    assert "refusing to serve beyond loopback with no tokens" in capsys.readouterr().err


def test_refuses_without_a_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    assert run(args(), config) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(tmp_path / "ledger.db") in err
    assert run(args(ledger="none"), config) == 2
    assert "needs a ledger" in capsys.readouterr().err


def test_bad_cron_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, {"reports": {"schedules": [{"name": "x", "cron": "every day",
                                                               "directory": "out"}]}})
    write_ledger(config, build_calls(n_days=1, per_day=2))
    assert run(args(), config) == 2
    assert "reports.schedules[x].cron" in capsys.readouterr().err


def test_serves_over_http_with_waitress(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    known = write_ledger(config, build_calls(n_days=2, per_day=10))
    assert config.source_path is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = start_service(config.source_path, port)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/reports/summary?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z"
        deadline = time.monotonic() + 90  # importing statsmodels takes seconds on a busy machine
        response = None
        while time.monotonic() < deadline and response is None:
            try:
                response = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5)
            except httpx.ConnectError:
                assert proc.poll() is None
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert response.headers["Server"] == "genai-meter"
        assert response.json()["summary"]["cost_usd"] == usd_text(known.cost_total)
        assert httpx.get(url).status_code == 401
        # concurrent requests on waitress's threads, each thread with its own ledger reader
        urls = [url, url.replace("summary", "detailed") + "&group_by=customer", url.replace("summary", "trend"),
                f"http://127.0.0.1:{port}/api/v1/events?limit=20"] * 6
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda u: httpx.get(u, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                                         timeout=60), urls))
        assert [a.status_code for a in answers] == [200] * len(urls)
        assert {a.json()["summary"]["cost_usd"] for a in answers if "/reports/" in str(a.url)} == \
            {usd_text(known.cost_total)}
    finally:
        out = stop_service(proc)
    assert proc.returncode == 0 and f"serving http://127.0.0.1:{port}/ " in out


def test_unknown_scope_field_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, {"reports": {"tokens": [{"sha256": "0" * 64, "scope": {"org": ["acme"]},
                                                            "name": "typo"}]}})
    write_ledger(config, build_calls(n_days=1, per_day=2))
    assert run(args(), config) == 2
    assert "reports.tokens[typo].scope: unknown field 'org'" in capsys.readouterr().err


def test_port_in_use_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path)
    write_ledger(config, build_calls(n_days=1, per_day=2))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run(args(f"127.0.0.1:{port}"), config) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_an_unwritable_spool_dir_is_a_startup_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    config = make_config(tmp_path, {"reports": {"limits": {"spool_dir": "not-a-dir/spool"}}})
    write_ledger(config, build_calls(n_days=1, per_day=2))
    assert run(args(), config) == 2
    assert "reports.limits.spool_dir: cannot write in" in capsys.readouterr().err
