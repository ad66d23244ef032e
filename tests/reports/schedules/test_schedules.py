"""Scheduled exports: each slot claimed once, retried with backoff, delivered to a real loopback webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from genai_meter.reports.schedules.produce import produce
from genai_meter.reports.schedules.scheduler import Scheduler, ScheduleState, latest_slot
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import NOW_NS, build_calls, make_config, start_service, stop_service, write_ledger
from tests.reports.schedules.webhook import Hook

MINUTE = 60 * 10**9


@pytest.fixture()
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def schedule_config(tmp: Path, url: str, **extra: object) -> Config:
    entry = {"name": "daily-slack", "cron": "* * * * *", "report": "summary", "range": "24h",
             "group_by": ["organization"], "format": "slack", "webhook_url": url, "directory": "exports", **extra}
    return make_config(tmp, {"reports": {"schedules": [entry]}})


def test_latest_slot() -> None:
    assert latest_slot("0 8 * * *", NOW_NS, __import__("datetime").timedelta(0)) == NOW_NS - 4 * 3600 * 10**9
    assert latest_slot("* * * * *", NOW_NS + 5 * 10**9, __import__("datetime").timedelta(0)) == NOW_NS


def test_slot_claimed_once_retried_with_backoff_and_one_key(tmp_path: Path) -> None:
    hook = Hook(fail=2)
    try:
        config = schedule_config(tmp_path, hook.url)
        write_ledger(config, build_calls(n_days=3, per_day=10))
        assert config.ledger.url is not None
        reader = open_reader(config.ledger.url, config)
        app = create_app(config, reader, clock=lambda: NOW_NS)
        svc = app.extensions[EXTENSION]
        assert isinstance(svc, Service)
        now = [NOW_NS + 10**9]
        state_a = ScheduleState(tmp_path / "state.db", now[0])
        state_b = ScheduleState(tmp_path / "state.db", now[0])
        make = [Scheduler(config, s, lambda sch, slot: produce(svc, sch, slot), svc.offset, lambda: now[0])
                for s in (state_a, state_b)]
        for scheduler in make:
            scheduler.tick()  # both try the slot: one claims it, its delivery fails (500)
        assert hook.received == [] and state_a.status()[0]["pending"] == 1
        now[0] += 1 * 10**9  # backoff 2 s not over
        for scheduler in make:
            scheduler.tick()
        assert hook.received == []
        now[0] += 2 * 10**9
        for scheduler in make:
            scheduler.tick()  # second attempt fails too
        now[0] += 5 * 10**9
        for scheduler in make:
            scheduler.tick()  # third attempt delivers
        assert len(hook.received) == 1
        key, body = hook.received[0]
        assert key == f"daily-slack-{NOW_NS}"
        text = json.loads(body)["text"]
        assert text.startswith("*genai-meter daily-slack*: Usage summary") and "- acme: $" in text
        status = state_b.status()[0]
        assert status["delivered"] == 1 and status["failed_attempts"] == 2 and status["failed"] == 0
        files = list((tmp_path / "exports").iterdir())
        assert [f.name for f in files] == ["daily-slack-20261120T1200Z.json"]
        for scheduler in make:
            scheduler.tick()
        assert len(hook.received) == 1
        reader.close()
    finally:
        hook.close()


def test_failures_are_counted_and_never_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = schedule_config(tmp_path, "http://127.0.0.1:9/unreachable", max_attempts=2, directory=None)
    write_ledger(config, build_calls(n_days=1, per_day=5))
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    svc = create_app(config, reader, clock=lambda: NOW_NS).extensions[EXTENSION]
    now = [NOW_NS]
    state = ScheduleState(tmp_path / "state.db", now[0])
    scheduler = Scheduler(config, state, lambda sch, slot: produce(svc, sch, slot), svc.offset, lambda: now[0])
    scheduler.tick()
    now[0] += 3 * 10**9
    scheduler.tick()
    status = state.status()[0]
    assert status["failed"] == 1 and status["pending"] == 0 and "URLError" in status["last_error"]
    assert any("failed after 2 attempts" in r.getMessage() for r in caplog.records)
    reader.close()


@pytest.mark.slow
def test_minute_schedule_runs_once_per_slot_across_two_processes_and_a_restart(tmp_path: Path, hook: Hook) -> None:
    config = schedule_config(tmp_path, hook.url)
    calls = build_calls(n_days=1, per_day=20)
    shift = time.time_ns() - NOW_NS  # recent calls, so the 24h report has figures
    for call in calls:
        call.end_ns += shift
    write_ledger(config, calls)
    assert config.source_path is not None
    a, b = start_service(config.source_path, 0), start_service(config.source_path, 0)
    procs = [a, b]
    try:
        deadline = time.monotonic() + 85
        while time.monotonic() < deadline and len({k for k, _ in hook.received}) < 2:
            time.sleep(0.2)
            assert a.poll() is None and b.poll() is None
        keys = [k for k, _ in hook.received]
        assert len(set(keys)) >= 2, keys  # the slot at start and the next minute's slot
        assert len(keys) == len(set(keys)), keys  # each slot delivered once by the two processes
        out = stop_service(a)
        assert "serving http://127.0.0.1:" in out
        a = start_service(config.source_path, 0)  # a restart within the same minute claims nothing new
        procs = [a, b]
        time.sleep(4)
        keys = [k for k, _ in hook.received]
        assert len(keys) == len(set(keys)), keys
        assert json.loads(hook.received[0][1])["text"].count("Requests:") == 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop_service(proc)
    files = sorted(p.name for p in (tmp_path / "exports").iterdir())
    assert len(files) == len({k for k, _ in hook.received})


def test_schedule_self_metrics(tmp_path: Path) -> None:
    config = schedule_config(tmp_path, "http://127.0.0.1:9/unreachable", max_attempts=1, directory=None)
    write_ledger(config, build_calls(n_days=1, per_day=3))
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    state = ScheduleState(tmp_path / "state.db", NOW_NS)
    app = create_app(config, reader, clock=lambda: NOW_NS, schedule_status=state.status)
    svc = app.extensions[EXTENSION]
    Scheduler(config, state, lambda sch, slot: produce(svc, sch, slot), svc.offset, lambda: NOW_NS).tick()
    text = app.test_client().get("/api/v1/metrics").get_data(as_text=True)
    assert 'genai_meter_report_schedule_runs_total{schedule="daily-slack",result="failed"} 1' in text
    assert 'genai_meter_report_schedule_failed_attempts_total{schedule="daily-slack"} 1' in text
    listing = app.test_client().get("/api/v1/schedules", headers={"Authorization": "Bearer admin-secret-token"})
    assert listing.get_json()["schedules"][0]["failed"] == 1
    reader.close()
