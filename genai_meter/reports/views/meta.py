"""The service about itself: `/api/v1/health`, `/openapi.json`, `/schedules` and `/metrics`.

These are light requests: never queued behind reports (`Endpoint.heavy` False), so health answers
while heavy work runs.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from genai_meter.contract import SELF_REPORT_SCHEDULE_RUNS
from genai_meter.reports.service.api import REGISTRY, STR, Endpoint, arr, obj, route, service
from genai_meter.reports.service.openapi import build_openapi
from genai_meter.reports.service.params import Forbidden

bp = Blueprint("meta_api", __name__, url_prefix="/api/v1")
OPENAPI = Endpoint("/openapi.json", "/api/v1/openapi.json", "openapi", "This description", (), filters=False,
                   schema={"type": "object"}, public=True, statuses=(), heavy=False)
HEALTH = Endpoint("/health", "/api/v1/health", "health", "Liveness and the ledger's coverage (503 says why not)", (),
                  filters=False, schema=obj({"status": STR}), public=True, statuses=(503, 504),
                  heavy=False)
SCHEDULES = Endpoint("/schedules", "/api/v1/schedules", "schedules",
                     "Scheduled exports: delivered, failed and pending slots, the outbox (admin)", (), filters=False,
                     schema=obj({"schedules": arr({"type": "object"})}), statuses=(401, 403), heavy=False)
METRICS = Endpoint("/metrics", "/api/v1/metrics", "metrics", "Self-metrics: schedules and admission (Prometheus text)",
                   (), filters=False, media=("text/plain",), schema={"type": "string"}, public=True, statuses=(),
                   heavy=False)


def _family(name: str, kind: str, help_text: str, samples: list[tuple[str, object]]) -> list[str]:
    """One metric family in the Prometheus text format: HELP, TYPE and its samples (labels text, value)."""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}" for labels, value in samples)]


def metrics_text() -> str:
    """The service's self-metrics: scheduled deliveries by outcome and outbox, admission and spool state."""
    svc = service()
    rows = svc.schedule_status()
    names = [str(r["schedule"]).replace("\\", "").replace('"', "").replace("\n", "") for r in rows]
    runs = [(f'schedule="{n}",result="{result}"', r[result] or 0) for n, r in zip(names, rows)
            for result in ("delivered", "failed")]
    admission = svc.limits.admission
    lines = [
        *_family(SELF_REPORT_SCHEDULE_RUNS, "counter",
                 "Scheduled report slots delivered, or given up after retrying (failed).", runs),
        *_family("genai_meter_report_schedule_pending", "gauge",
                 "Scheduled report slots in the outbox: not delivered yet, being retried.",
                 [(f'schedule="{n}"', r["pending"] or 0) for n, r in zip(names, rows)]),
        *_family("genai_meter_report_schedule_failed_attempts_total", "counter",
                 "Failed delivery attempts (retried or not).",
                 [(f'schedule="{n}"', r["failed_attempts"] or 0) for n, r in zip(names, rows)]),
        *_family("genai_meter_report_heavy_requests", "gauge", "Heavy requests (reports, exports) by state.",
                 [('state="running"', admission.running), ('state="waiting"', admission.waiting)]),
        *_family("genai_meter_report_requests_refused_total", "counter",
                 "Heavy requests answered 503 because the service was busy.", [("", admission.refused)]),
        *_family("genai_meter_report_requests_timed_out_total", "counter",
                 "Requests answered 504: they ran past their time limit.", [("", svc.limits.timeouts)]),
        *_family("genai_meter_report_spool_bytes", "gauge", "Bytes of exports written and not yet sent.",
                 [("", svc.limits.spool.held)]),
    ]
    return "\n".join(lines) + "\n"


@route(bp, METRICS)
def metrics_view() -> Response:
    return Response(metrics_text(), mimetype="text/plain")


@route(bp, OPENAPI)
def openapi_view() -> Response:
    svc = service()
    return jsonify(build_openapi(REGISTRY, svc.reader.fields(), svc.tokens.enabled))


@route(bp, HEALTH)
def health_view() -> Response:
    cov = service().reader.coverage()
    return jsonify({"status": "ok", "calls_stored": cov.first_ns is not None})


@route(bp, SCHEDULES)
def schedules_view() -> Response:
    if not g.principal.admin:
        raise Forbidden("schedules: admin tokens only")
    return jsonify({"schedules": service().schedule_status()})
