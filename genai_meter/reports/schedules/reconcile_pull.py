"""The `reconcile_pull` schedule kind: a provider's usage and cost reports pulled into the ledger.

A slot pulls the `pull.days` whole UTC days before the slot's UTC day (`reconcile.pull`, the admin key
from the environment) and stores them, replacing those days' reports. The service opens the ledger for
this write only, without migrating it (a ledger of another schema version fails the slot: run
`genai-meter ledger migrate`). A failure is retried like any scheduled delivery; the run's summary is
delivered as JSON when the schedule names a directory or webhook.
"""

from __future__ import annotations

import json

from genai_meter.config import ScheduleConfig
from genai_meter.reconcile.pull import pull
from genai_meter.reconcile.store import store
from genai_meter.reconcile.window import day_of, days_before, each_day
from genai_meter.reports.schedules.scheduler import Output
from genai_meter.reports.service.api import JSON, Service

KIND = "reconcile_pull"


def pull_and_store(svc: Service, schedule: ScheduleConfig, slot_ns: int) -> Output:
    """Run one slot; raises (PullError, ReconcileError, LedgerOpenError, LedgerUnavailable) to be retried."""
    assert schedule.pull is not None  # the config requires it for this kind
    if svc.ledger_url is None:
        raise RuntimeError("reconcile_pull: the service was started without its ledger's URL")
    first, last = days_before(day_of(slot_ns), schedule.pull.days)
    export = pull(schedule.pull.provider, each_day(first, last), config=svc.config.reconcile)
    stored = store(svc.ledger_url, svc.config, [export], migrate=False)
    body = {"schedule": schedule.name, "provider": schedule.pull.provider, "from": first.isoformat(),
            "to": last.isoformat(), "reports": stored.reports, "lines": stored.lines}
    return Output(json.dumps(body).encode(), JSON, "json")
