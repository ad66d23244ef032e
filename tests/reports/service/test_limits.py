"""Bounds on one request's work: the time limit interrupts SQLite, admission refuses with 503 + Retry-After,
exports are spooled within their byte budget, and light requests never queue behind heavy ones."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import pytest
from flask import Flask

from genai_meter.config import ConfigError
from genai_meter.ledger import deadline, open_reader
from genai_meter.ledger.model import Filters, LedgerReader, Metric, Point, Ranked, Totals
from genai_meter.reports.insights.buckets import fill
from genai_meter.reports.render.tables import Column, Report, Table, zero_totals
from genai_meter.reports.render.text import table_csv, table_json
from genai_meter.reports.render.xlsx import report_xlsx
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.limits import Admission, Busy
from tests.reports.conftest import NOW_NS, auth, make_config
from tests.reports.service.seeded import seed_ledger

TREND = "/api/v1/reports/trend?range=90d&step=1d&group_by=customer"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LedgerReader]]:
    """40,000 raw calls of 2,000 customers over 90 days: the daily trend by customer takes seconds."""
    tmp = tmp_path_factory.mktemp("big")
    config = make_config(tmp)
    seed_ledger(tmp / "ledger.db", calls=40_000, customers=2000, end_ns=NOW_NS)
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config, interruptible=True)  # used by this test's thread only
    yield tmp, reader
    reader.close()


def app_with(tmp: Path, reader: LedgerReader, **limits: object) -> Flask:
    config = make_config(tmp, {"reports": {"limits": limits}})
    return create_app(config, reader, clock=lambda: NOW_NS)


def svc_of(app: Flask) -> Service:
    svc = app.extensions[EXTENSION]
    assert isinstance(svc, Service)
    return svc


def test_a_passed_deadline_interrupts_a_sqlite_statement(big: tuple[Path, LedgerReader]) -> None:
    _, reader = big
    deadline.set_deadline(time.monotonic() - 1)
    try:
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            reader.totals(NOW_NS - 90 * 86400 * 10**9, NOW_NS, {}, ("customer",))
        assert deadline.passed()
    finally:
        deadline.set_deadline(None)
    assert len(reader.totals(NOW_NS - 90 * 86400 * 10**9, NOW_NS, {}, ("organization",))) == 4  # usable again


def test_time_limit_answers_504_naming_the_setting(big: tuple[Path, LedgerReader], tmp_path: Path) -> None:
    app = app_with(tmp_path, big[1], request_seconds=0.001)
    client = app.test_client()
    response = client.get(TREND, headers=auth())
    assert response.status_code == 504, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["status"] == 504 and "reports.limits.request_seconds" in error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert svc_of(app).limits.timeouts == 1 and svc_of(app).limits.admission.running == 0
    metrics = client.get("/api/v1/metrics").get_data(as_text=True)
    assert "genai_meter_report_requests_timed_out_total 1" in metrics
    assert deadline.deadline() is None  # lifted after the request
    export = client.get("/api/v1/events?format=csv&range=90d", headers=auth())
    assert export.status_code == 200  # exports have their own, longer limit (export_seconds)


def test_export_time_limit(big: tuple[Path, LedgerReader], tmp_path: Path) -> None:
    client = app_with(tmp_path, big[1], export_seconds=0.001).test_client()
    response = client.get("/api/v1/reports/detailed?range=90d&format=csv&rows=calls", headers=auth())
    assert response.status_code == 504
    assert "reports.limits.export_seconds" in response.get_json()["error"]["message"]


def test_busy_is_503_with_retry_after_and_light_requests_still_answer(big: tuple[Path, LedgerReader],
                                                                      tmp_path: Path) -> None:
    app = app_with(tmp_path, big[1], heavy_concurrent=1, heavy_queue=0)
    client = app.test_client()
    admission = svc_of(app).limits.admission
    admission.acquire()  # a heavy request is running
    try:
        for path in ("/api/v1/reports/summary?range=24h", "/api/v1/events?format=csv&range=24h",
                     "/api/v1/latency?range=24h", "/api/v1/conversations?range=24h"):
            busy = client.get(path, headers=auth())
            assert busy.status_code == 503, path
            assert busy.headers["Retry-After"] == "5" and "heavy_concurrent" in busy.get_json()["error"]["message"]
        for path in ("/api/v1/health", "/api/v1/events?limit=5", "/api/v1/openapi.json", "/"):
            assert client.get(path, headers=auth()).status_code == 200, path
        assert admission.refused == 4
        assert "genai_meter_report_requests_refused_total 4" in client.get("/api/v1/metrics").get_data(as_text=True)
        assert 'genai_meter_report_heavy_requests{state="running"} 1' in \
            client.get("/api/v1/metrics").get_data(as_text=True)
    finally:
        admission.release()
    assert client.get("/api/v1/reports/summary?range=24h", headers=auth()).status_code == 200
    assert admission.running == 0


def test_a_queued_request_runs_when_a_slot_frees_and_gives_up_after_queue_seconds() -> None:
    admission = Admission(concurrent=1, queue=1, wait_s=30)
    admission.acquire()
    admitted = threading.Event()

    def waiter() -> None:
        admission.acquire()
        admitted.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    until = time.monotonic() + 10
    while admission.waiting == 0 and time.monotonic() < until:
        time.sleep(0.01)
    assert admission.waiting == 1
    with pytest.raises(Busy, match="heavy_queue"):
        admission.acquire()  # the queue (of one) is full
    admission.release()
    thread.join(timeout=10)
    assert admitted.is_set() and admission.running == 1 and admission.waiting == 0
    impatient = Admission(concurrent=1, queue=1, wait_s=0.05)
    impatient.acquire()
    with pytest.raises(Busy, match="queue_seconds"):
        impatient.acquire()
    assert impatient.waiting == 0 and impatient.refused == 1


def test_exports_are_spooled_within_their_budget(big: tuple[Path, LedgerReader], tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    app = app_with(tmp_path, big[1], spool_mb=1, spool_dir="spool")
    client = app.test_client()
    svc = svc_of(app)
    small = client.get("/api/v1/events?format=csv&range=24h", headers=auth())
    assert small.status_code == 200 and int(small.headers["Content-Length"]) == len(small.data)
    assert small.data.count(b"\r\n") > 100
    small.close()
    assert svc.limits.spool.held == 0 and list(spool_dir.iterdir()) == []  # unnamed files, given back
    large = client.get("/api/v1/events?format=csv&range=90d", headers=auth())
    assert large.status_code == 503 and "spool_mb" in large.get_json()["error"]["message"]
    assert svc.limits.spool.held == 0 and svc.limits.admission.running == 0


def test_threads_must_leave_room_for_light_requests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="threads"):
        make_config(tmp_path, {"reports": {"threads": 10, "limits": {"heavy_concurrent": 2, "heavy_queue": 8}}})
    config = make_config(tmp_path, {"reports": {"limits": {"heavy_concurrent": 3, "heavy_queue": 5}}})
    assert config.reports.worker_threads == 12


def test_checked_loops_stop_past_the_deadline() -> None:
    assert sum(deadline.checked(range(10_000))) == sum(range(10_000))  # no deadline: untouched
    deadline.set_deadline(time.monotonic() + 3600)
    try:
        assert sum(deadline.checked(range(10_000))) == sum(range(10_000))
        deadline.set_deadline(time.monotonic() - 1)
        seen = []
        with pytest.raises(deadline.QueryTimeout):
            for item in deadline.checked(range(10_000)):
                seen.append(item)
        assert seen == []
    finally:
        deadline.set_deadline(None)


def test_an_export_the_spool_cannot_hold_is_503(big: tuple[Path, LedgerReader], tmp_path: Path) -> None:
    client = app_with(tmp_path, big[1], spool_dir="missing/dir").test_client()
    response = client.get("/api/v1/events?format=csv&range=24h", headers=auth())
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "reports.limits.spool_dir" in response.get_json()["error"]["message"]


class LastQueryUsesTheTime:
    """The real reader, except that the time limit is over once a query grouped by `field` returned: the
    report's own row loops (tables, rendering) come after the ledger's last statement."""

    def __init__(self, reader: LedgerReader, field: str) -> None:
        self._reader = reader
        self._field = field

    def __getattr__(self, name: str) -> object:
        return getattr(self._reader, name)

    def totals(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Totals]:
        rows = self._reader.totals(start_ns, end_ns, filters, group_by)
        self._grouped(group_by)
        return rows

    def ranked(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: Metric = "cost") -> Ranked:
        answer = self._reader.ranked(start_ns, end_ns, filters, group_by, limit, metric)
        self._grouped(group_by)
        return answer

    def each_group(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   metric: Metric = "cost") -> Iterator[Totals]:
        groups = self._reader.each_group(start_ns, end_ns, filters, group_by, metric)
        self._grouped(group_by)
        return groups

    def _grouped(self, group_by: Sequence[str]) -> None:
        if self._field in group_by:
            deadline.set_deadline(time.monotonic() - 1)


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "pdf"])
def test_a_report_past_its_limit_after_the_ledger_answered_is_504(big: tuple[Path, LedgerReader], tmp_path: Path,
                                                                 fmt: str) -> None:
    app = app_with(tmp_path, cast(LedgerReader, LastQueryUsesTheTime(big[1], "customer")))
    response = app.test_client().get(f"/api/v1/reports/cost?range=90d&group_by=customer&limit=5000&format={fmt}",
                                     headers=auth())
    assert response.status_code == 504, response.get_data()[:200]
    assert "reports.limits.request_seconds" in response.get_json()["error"]["message"]
    assert svc_of(app).limits.admission.running == 0 and deadline.deadline() is None


def test_report_row_loops_stop_past_the_deadline() -> None:
    columns = [Column("customer", "Customer", "text"), Column("calls", "Requests", "int"),
               Column("cost_usd", "Cost (USD)", "usd")]
    table = Table("groups", "By customer", columns, [[f"c-{i}", i, i * 10**9] for i in range(20_000)])
    report = Report("summary", "Usage summary", 0, NOW_NS, {}, ["customer"], {}, {}, [table], "groups")
    starts = [NOW_NS - i * 86400 * 10**9 for i in range(90, 0, -1)]
    series = {(f"c-{i}",): [Point(starts[0], zero_totals((f"c-{i}",)))] for i in range(2000)}
    assert len(table_json(table)["rows"]) == 20_000  # type: ignore[arg-type]
    assert "".join(table_csv(table)).count("\r\n") == 20_001
    deadline.set_deadline(time.monotonic() - 1)
    try:
        for work in (lambda: table_json(table), lambda: list(table_csv(table)), lambda: report_xlsx(report),
                     lambda: fill(series, starts, True)):
            with pytest.raises(deadline.QueryTimeout):
                work()
    finally:
        deadline.set_deadline(None)
