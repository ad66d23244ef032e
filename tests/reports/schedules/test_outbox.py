"""The durable outbox: a failed delivery is retried for hours, survives a restart, shows in the status,
is counted for the alert when it finally fails, and a redirect is neither followed nor a success.

The scheduler runs on a test clock (a tick per simulated second) against a real loopback webhook."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from genai_meter.config import Config
from genai_meter.ledger import open_reader
from genai_meter.ledger.model import LedgerReader
from genai_meter.reports.schedules.produce import produce
from genai_meter.reports.schedules.scheduler import Scheduler, ScheduleState
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import NOW_NS, auth, build_calls, make_config, write_ledger
from tests.reports.schedules.webhook import Hook

S = 10**9


class Setup:
    """A config with one daily schedule due at NOW (12:00 UTC), its ledger, app and state file."""

    def __init__(self, tmp: Path, url: str, **extra: object) -> None:
        entry = {"name": "noon", "cron": "0 12 * * *", "report": "summary", "range": "24h", "format": "json",
                 "webhook_url": url, **extra}
        self.tmp = tmp
        self.config: Config = make_config(tmp, {"reports": {"schedules": [entry]}})
        write_ledger(self.config, build_calls(n_days=1, per_day=5))
        assert self.config.ledger.url is not None
        self.reader: LedgerReader = open_reader(self.config.ledger.url, self.config)
        self.now = [NOW_NS]
        self.state = self.open_state()
        self.app: Flask = create_app(self.config, self.reader, clock=lambda: NOW_NS, schedule_status=self.state.status)
        self.scheduler = self.make_scheduler()

    def open_state(self) -> ScheduleState:
        return ScheduleState(self.tmp / "state.db", NOW_NS - 3600 * S, self.config.reports.schedules)

    def make_scheduler(self) -> Scheduler:
        svc = self.app.extensions[EXTENSION]
        assert isinstance(svc, Service)
        return Scheduler(self.config, self.state, lambda sch, slot: produce(svc, sch, slot), svc.offset,
                         lambda: self.now[0])

    def run_for(self, seconds: int) -> None:
        """Tick once per simulated second."""
        for _ in range(seconds):
            self.scheduler.tick()
            self.now[0] += S

    def status(self) -> dict[str, object]:
        answer = self.app.test_client().get("/api/v1/schedules", headers=auth())
        return dict(answer.get_json()["schedules"][0])

    def close(self) -> None:
        self.state.close()
        self.reader.close()


@pytest.fixture()
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def test_a_webhook_down_for_75_seconds_still_gets_the_slot(tmp_path: Path, hook: Hook) -> None:
    setup = Setup(tmp_path, hook.url)
    up_at = NOW_NS + 75 * S
    hook.answer = lambda: 200 if setup.now[0] >= up_at else 503
    try:
        setup.run_for(400)
        assert [key for key, _ in hook.received] == [f"noon-{NOW_NS}"]
        status = setup.status()
        assert status["delivered"] == 1 and status["failed"] == 0 and status["pending"] == 0
        assert status["failed_attempts"] == hook.posts - 1 >= 6  # 0, 2, 6, 14, 30, 62 s failed; 126 s delivered
    finally:
        setup.close()


def test_the_outbox_survives_a_restart_and_shows_in_the_status(tmp_path: Path, hook: Hook) -> None:
    hook.answer = lambda: 500
    setup = Setup(tmp_path, hook.url)
    try:
        setup.run_for(1)
        status = setup.status()
        assert status["pending"] == 1 and status["delivered"] == 0
        [entry] = status["outbox"]  # type: ignore[misc]
        assert entry["slot"] == "2026-11-20T12:00:00Z" and entry["attempts"] == 1
        assert entry["next_attempt"] == "2026-11-20T12:00:02Z" == status["next_attempt"]
        assert entry["retry_until"] == "2026-11-21T12:00:00Z" and "500" in entry["last_error"]
        metrics = setup.app.test_client().get("/api/v1/metrics").get_data(as_text=True)
        assert 'genai_meter_report_schedule_pending{schedule="noon"} 1' in metrics
        setup.state.close()  # the process stops with the slot in the outbox
        hook.answer = lambda: 200
        setup.now[0] += 3 * 3600 * S  # and comes back three hours later
        setup.state = setup.open_state()
        setup.app = create_app(setup.config, setup.reader, clock=lambda: NOW_NS, schedule_status=setup.state.status)
        setup.scheduler = setup.make_scheduler()
        setup.run_for(2)
        assert [key for key, _ in hook.received] == [f"noon-{NOW_NS}"]
        status = setup.status()
        assert status["delivered"] == 1 and status["pending"] == 0 and status["outbox"] == []
    finally:
        setup.close()


def test_a_slot_given_up_after_retry_for_hours_is_counted_for_the_alert(tmp_path: Path, hook: Hook,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    hook.answer = lambda: 502
    setup = Setup(tmp_path, hook.url, retry_for_hours=0.01)  # 36 s
    try:
        setup.run_for(30)
        assert setup.status()["pending"] == 1
        setup.run_for(30)
        status = setup.status()
        assert status["failed"] == 1 and status["pending"] == 0 and status["delivered"] == 0
        assert hook.posts >= 6  # the last attempt at the end of the 36 s, not before
        metrics = setup.app.test_client().get("/api/v1/metrics").get_data(as_text=True)
        assert 'genai_meter_report_schedule_runs_total{schedule="noon",result="failed"} 1' in metrics
        assert 'genai_meter_report_schedule_pending{schedule="noon"} 0' in metrics
        assert any("failed after" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    finally:
        setup.close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_not_a_delivery(tmp_path: Path, hook: Hook, code: int) -> None:
    hook.answer = lambda: code
    setup = Setup(tmp_path, hook.url)
    try:
        setup.run_for(1)
        assert hook.gets == [] and hook.posts == 1  # nothing went to the Location
        status = setup.status()
        assert status["delivered"] == 0 and status["pending"] == 1
        assert f"webhook answered {code}" in str(status["last_error"]) and "not followed" in str(status["last_error"])
    finally:
        setup.close()


def test_a_state_file_of_an_earlier_version_keeps_its_outbox(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (schedule TEXT NOT NULL, slot_ns INTEGER NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
            attempts INTEGER NOT NULL, next_at_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
            last_error TEXT NOT NULL, PRIMARY KEY (schedule, slot_ns));""")
    db.execute("INSERT INTO meta VALUES ('created_ns', ?)", (str(NOW_NS - 86400 * S),))
    db.execute("INSERT INTO runs VALUES ('noon', ?, 'gone', 'retry', 2, ?, ?, 'OSError: webhook answered 500')",
               (NOW_NS, NOW_NS + 4 * S, NOW_NS + 2 * S))
    db.commit()
    db.close()
    hook = Hook()
    try:
        setup = Setup(tmp_path, hook.url)
        try:
            [entry] = setup.status()["outbox"]  # type: ignore[misc]
            assert entry["attempts"] == 2 and entry["first_attempt"] == "2026-11-20T12:00:02Z"
            setup.now[0] = NOW_NS + 5 * S
            setup.run_for(1)
            assert [key for key, _ in hook.received] == [f"noon-{NOW_NS}"] and setup.status()["delivered"] == 1
        finally:
            setup.close()
    finally:
        hook.close()
