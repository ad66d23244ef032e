"""The Flask app factory of the report service: API blueprints under /api/v1, auth, errors.

`/` and `/static/` are left to the web page (`create_app(..., page=blueprint)`). Every error is
answered as JSON `{"error": {"message", "parameter", "status"}}`; no stack trace reaches a client.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from genai_meter.config import Config
from genai_meter.ledger.model import LedgerReader, LedgerUnavailable
from genai_meter.pricing import PriceBook
from genai_meter.reports.service.api import EXTENSION, REGISTRY, STR, Endpoint, Service, arr, obj, route, service
from genai_meter.reports.service.openapi import build_openapi
from genai_meter.reports.service.params import ApiError, Forbidden, Unauthorized
from genai_meter.reports.service.ranges import report_offset
from genai_meter.reports.service.scopes import ADMIN, TokenTable, load_tokens
from genai_meter.reports.views import activity as activity_views
from genai_meter.reports.views import insights as insights_views
from genai_meter.reports.views import reports as report_views
from genai_meter.reports.web import bp as web_page

log = logging.getLogger("genai_meter.reports")
meta = Blueprint("meta_api", __name__, url_prefix="/api/v1")
OPENAPI = Endpoint("/openapi.json", "/api/v1/openapi.json", "openapi", "This description", (), filters=False,
                   schema={"type": "object"}, public=True, statuses=())
HEALTH = Endpoint("/health", "/api/v1/health", "health", "Liveness and the ledger's coverage", (), filters=False,
                  schema=obj({"status": STR}), public=True, statuses=(503,))
SCHEDULES = Endpoint("/schedules", "/api/v1/schedules", "schedules", "Scheduled exports and their last runs (admin)",
                     (), filters=False, schema=obj({"schedules": arr({"type": "object"})}), statuses=(401, 403))


METRICS = Endpoint("/metrics", "/api/v1/metrics", "metrics", "Self-metrics of the schedules (Prometheus text)", (),
                   filters=False, media=("text/plain",), schema={"type": "string"}, public=True, statuses=())


@route(meta, METRICS)
def metrics_view() -> Response:
    lines = ["# HELP genai_meter_report_schedule_runs_total Scheduled report slots by outcome.",
             "# TYPE genai_meter_report_schedule_runs_total counter"]
    failures = ["# HELP genai_meter_report_schedule_failed_attempts_total Failed delivery attempts (retried or not).",
                "# TYPE genai_meter_report_schedule_failed_attempts_total counter"]
    for row in service().schedule_status():
        name = str(row["schedule"]).replace("\\", "").replace('"', "")
        for result in ("delivered", "failed", "pending"):
            lines.append(f'genai_meter_report_schedule_runs_total{{schedule="{name}",result="{result}"}} '
                         f"{row[result] or 0}")
        failures.append(f'genai_meter_report_schedule_failed_attempts_total{{schedule="{name}"}} '
                        f"{row['failed_attempts'] or 0}")
    return Response("\n".join(lines + failures) + "\n", mimetype="text/plain")


@route(meta, OPENAPI)
def openapi_view() -> Response:
    svc = service()
    return jsonify(build_openapi(REGISTRY, svc.reader.fields(), svc.tokens.enabled))


@route(meta, HEALTH)
def health_view() -> Response:
    cov = service().reader.coverage()
    return jsonify({"status": "ok", "calls_stored": cov.first_ns is not None})


@route(meta, SCHEDULES)
def schedules_view() -> Response:
    if not g.principal.admin:
        raise Forbidden("schedules: admin tokens only")
    return jsonify({"schedules": service().schedule_status()})


def _error(status: int, message: str, parameter: str = "") -> Response:
    response = jsonify({"error": {"message": message, "parameter": parameter, "status": status}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = "5"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="genai-meter"'
    return response


def _authenticate() -> Response | None:
    svc = service()
    public = {e.name for e in REGISTRY if e.public}
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    g.principal = ADMIN
    if not svc.tokens.enabled or endpoint in public or not request.path.startswith("/api/"):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    principal = svc.tokens.principal(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if principal is None:
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer TOKEN)", "Authorization")
    g.principal = principal
    return None


def create_app(config: Config, reader: LedgerReader, *, book: PriceBook | None = None,
               clock: Callable[[], int] = time.time_ns, page: Blueprint | None = None,
               schedule_status: Callable[[], list[dict[str, object]]] = list) -> Flask:
    """The report service's WSGI app over `reader` (opened read-only by the caller, which closes it)."""
    app = Flask("genai_meter.reports", static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    svc = Service(config, reader, book or PriceBook.from_config(config), TokenTable(load_tokens(config)),
                  report_offset(config), clock, schedule_status)
    app.extensions[EXTENSION] = svc
    app.before_request(_authenticate)
    for bp in (report_views.bp, activity_views.bp, insights_views.bp, meta):
        app.register_blueprint(bp)
    app.register_blueprint(page if page is not None else web_page)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return _error(exc.status, exc.message, exc.parameter)

    @app.errorhandler(LedgerUnavailable)
    def unavailable(exc: LedgerUnavailable) -> Response:
        log.warning("ledger unavailable: %s", exc)
        return _error(503, "the ledger is unavailable; retry later")

    @app.errorhandler(sqlite3.Error)
    def locked(exc: sqlite3.Error) -> Response:
        log.warning("ledger error: %s", exc)
        return _error(503, "the ledger is unavailable; retry later")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = _error(exc.code or 500, exc.description or exc.name)
        for name, value in exc.get_headers():  # e.g. Allow on a 405 (TRACE, POST to a GET endpoint)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(ValueError)
    def bad_value(exc: ValueError) -> Response:
        log.info("rejected query: %s", exc)
        return _error(400, f"invalid query: {str(exc)[:300]}")

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("internal error on %s", request.path)
        return _error(500, "internal error (logged by the service)")

    return app
