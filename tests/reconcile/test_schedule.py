"""The report service pulls a provider's reports on a schedule (`report: reconcile_pull`): the slot is claimed
once, the days before it are fetched from the loopback stand-in of the admin API the pull tests use
(admin_server.py, serving the documented pages: see test_pull.py) and stored in the ledger, replacing those
days; a refused pull is recorded and retried like any scheduled delivery. Then the reconciliation's gauges
over those days, as Prometheus reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from genai_meter.config import Config, load_config
from genai_meter.ledger import open_reader
from genai_meter.reconcile import ENDPOINTS
from genai_meter.reconcile.store import load
from genai_meter.reports.schedules.produce import produce
from genai_meter.reports.schedules.scheduler import Scheduler, ScheduleState
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from tests.reconcile.admin_server import AdminServer
from tests.reconcile.scenario import (
    AFTER,
    EXACT_DAY,
    MISSING_DAY,
    TIER_DAY,
    costs_page,
    midnight,
    scenario_page,
    scenario_spans,
    store_spans,
)

SLOT = midnight(AFTER) + timedelta(hours=3, minutes=15)  # cron "15 3 * * *": pulls the scenario's three days
NS = 10**9
EMPTY = {"object": "page", "data": [], "has_more": False, "next_page": None}
KEY = "sk-admin-schedule-0123456789"


@pytest.fixture()
def server() -> Iterator[AdminServer]:
    admin = AdminServer()
    admin.start()
    for endpoint in ENDPOINTS["openai"]:
        admin.route(endpoint.path, [EMPTY])
    admin.route("/v1/organization/usage/completions", [scenario_page()])
    admin.route("/v1/organization/costs", [costs_page()])
    yield admin
    admin.stop()


def config_for(tmp: Path, base_url: str) -> Config:
    path = tmp / "genai-meter.yaml"
    path.write_text(yaml.safe_dump({
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "reconcile": {"providers": {"openai": {"base_url": base_url}}, "max_retries": 0},
        "reports": {"schedules": [{"name": "openai-daily", "cron": "15 3 * * *", "report": "reconcile_pull",
                                   "pull": {"provider": "openai", "days": 3}, "max_attempts": 2}]},
    }), encoding="utf-8")
    return load_config(path)


def service_of(config: Config, now_ns: int) -> tuple[Service, object]:
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    app = create_app(config, reader, ledger_url=config.ledger.url, clock=lambda: now_ns)
    svc = app.extensions[EXTENSION]
    assert isinstance(svc, Service)
    return svc, app


def run_slot(config: Config, svc: Service, tmp: Path, now_ns: int) -> ScheduleState:
    state = ScheduleState(tmp / "state.db", int(midnight(SLOT.date()).timestamp()) * NS)
    scheduler = Scheduler(config, state, lambda s, slot: produce(svc, s, slot), svc.offset, lambda: now_ns)
    scheduler.tick()
    return state


def test_a_scheduled_pull_stores_the_days_before_its_slot(tmp_path: Path, server: AdminServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", KEY)
    config = config_for(tmp_path, f"http://127.0.0.1:{server._server.server_address[1]}")  # type: ignore[union-attr]
    store_spans(config, scenario_spans())  # the ledger exists (serve made it)
    now = int(SLOT.timestamp()) * NS + 30 * NS
    svc, _ = service_of(config, now)
    state = run_slot(config, svc, tmp_path, now)
    (status,) = state.status()
    assert (status["delivered"], status["failed"], status["pending"]) == (1, 0, 0), status
    asked = [q for path, q, _ in server.requests if path == "/v1/organization/usage/completions"]
    start = int(midnight(EXACT_DAY).timestamp())
    assert asked[0]["start_time"] == [str(start)] and asked[0]["end_time"] == [str(start + 3 * 86400)]
    assert ("authorization", f"Bearer {KEY}") in server.requests[0][2].items()
    assert config.ledger.url is not None
    loaded = load(config.ledger.url, config, EXACT_DAY, TIER_DAY)
    usage = [line for line in loaded.lines if line.source.kind == "openai.usage.completions"]
    assert [(line.day, line.requests) for line in usage] == [(EXACT_DAY, 4), (MISSING_DAY, 6),
                                                             (TIER_DAY, 5)]
    assert sum(line.cost_pico or 0 for line in loaded.lines) == 1_757_500_000_000  # the costs page
    assert len(loaded.reports) == 3 * len(ENDPOINTS["openai"])  # every endpoint covers every day, lines or not
    again = run_slot(config, svc, tmp_path, now)  # the same slot is never run twice
    assert again.status()[0]["delivered"] == 1
    svc.reader.close()


def test_a_refused_pull_is_recorded_and_retried(tmp_path: Path, server: AdminServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", KEY)
    config = config_for(tmp_path, f"http://127.0.0.1:{server._server.server_address[1]}")  # type: ignore[union-attr]
    store_spans(config, scenario_spans())
    server.script("/v1/organization/usage/completions",
                  [(401, {}, json.dumps({"error": {"message": "Incorrect API key provided"}}).encode())])
    now = int(SLOT.timestamp()) * NS + 30 * NS
    svc, _ = service_of(config, now)
    state = run_slot(config, svc, tmp_path, now)
    (status,) = state.status()
    assert (status["delivered"], status["pending"]) == (0, 1)
    assert "HTTP 401: Incorrect API key provided" in str(status["last_error"]) and KEY not in str(status["last_error"])
    assert config.ledger.url is not None
    assert load(config.ledger.url, config, EXACT_DAY, TIER_DAY).reports == ()  # nothing of the failed pull
    later = Scheduler(config, state, lambda s, slot: produce(svc, s, slot), svc.offset, lambda: now + 10 * NS)
    later.tick()  # the retry is due after its backoff: the pull now succeeds
    assert state.status()[0]["delivered"] == 1
    svc.reader.close()


def test_the_gauges_over_the_last_days(tmp_path: Path, server: AdminServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", KEY)
    config = config_for(tmp_path, f"http://127.0.0.1:{server._server.server_address[1]}")  # type: ignore[union-attr]
    store_spans(config, scenario_spans())
    now = int(SLOT.timestamp()) * NS + 30 * NS
    svc, app = service_of(config, now)
    run_slot(config, svc, tmp_path, now)
    answer = app.test_client().get("/api/v1/reconciliation/metrics")  # type: ignore[attr-defined]
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(answer.get_data(as_text=True)) for s in family.samples}
    openai = (("provider", "openai"),)
    assert samples[("genai_meter_reconciliation_difference_usd", openai)] == pytest.approx(0.5225, abs=1e-12)
    assert samples[("genai_meter_reconciliation_provider_cost_usd", openai)] == pytest.approx(1.7575, abs=1e-12)
    assert samples[("genai_meter_reconciliation_ledger_cost_usd", openai)] == pytest.approx(1.235, abs=1e-12)
    assert samples[("genai_meter_reconciliation_days", openai)] == 3
    assert {labels: value for (name, labels), value in samples.items() if name == "genai_meter_reconciliation_rows"} \
        == {(("cause", "exact"), ("provider", "openai")): 1, (("cause", "price"), ("provider", "openai")): 1,
            (("cause", "unmetered_calls"), ("provider", "openai")): 1}
    svc.reader.close()
