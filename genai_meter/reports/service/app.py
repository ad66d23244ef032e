"""The Flask app factory of the report service: API blueprints under /api/v1, auth, limits, errors.

`/` and `/static/` are left to the web page (`create_app(..., page=blueprint)`). Every error is
answered as JSON `{"error": {"message", "parameter", "status"}}`; no stack trace reaches a client.
Each request runs under a time limit (`limits`); a ledger that cannot answer is a 503 with
Retry-After whose message says why in a short phrase (never a path or an engine message). With no
token configured only requests whose Host is localhost, a loopback address or the listen address are
served: a page of another site whose name rebinds to 127.0.0.1 gets a 403.
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from genai_meter.config import Config
from genai_meter.ledger.deadline import QueryTimeout, passed
from genai_meter.ledger.model import FILE_GONE, LedgerReader, LedgerUnavailable
from genai_meter.pricing import PriceBook
from genai_meter.reports.service.api import EXTENSION, REGISTRY, Service, finish_request, service, start_time_limit
from genai_meter.reports.service.limits import Limits, time_limit_error
from genai_meter.reports.service.params import ApiError, Forbidden, Unauthorized
from genai_meter.reports.service.ranges import report_offset
from genai_meter.reports.service.readers import LedgerNotOpen
from genai_meter.reports.service.scopes import ADMIN, TokenTable, load_tokens
from genai_meter.reports.views import activity as activity_views
from genai_meter.reports.views import insights as insights_views
from genai_meter.reports.views import meta as meta_views
from genai_meter.reports.views import reconciliation as reconciliation_views
from genai_meter.reports.views import reports as report_views
from genai_meter.reports.web import bp as web_page

log = logging.getLogger("genai_meter.reports")
RETRY_AFTER_S = 5


def _error(status: int, message: str, parameter: str = "") -> Response:
    response = jsonify({"error": {"message": message, "parameter": parameter, "status": status}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="genai-meter"'
    return response


def ledger_reason(exc: BaseException) -> str:
    """A short public phrase saying why the ledger cannot answer ("" when there is nothing to add)."""
    if isinstance(exc, LedgerUnavailable) and exc.kind == FILE_GONE:  # moved away, deleted or replaced
        return "the ledger file is gone (moved away, deleted or replaced)"
    if isinstance(exc, LedgerNotOpen):
        return exc.why
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "the ledger is locked by another process"
    if isinstance(exc, sqlite3.DatabaseError):
        return "the ledger file cannot be read"
    return ""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(listen_host: str | None) -> None:
    """With no tokens: refuse a Host header that is not localhost, a loopback address or `listen_host`."""
    header = request.headers.get("Host")
    if header is None:  # HTTP/1.0 without Host: no browser sends that
        return
    try:
        name = (urlsplit(f"//{header}").hostname or "").rstrip(".")
    except ValueError:
        name = ""
    if name and (name == "localhost" or _loopback(name) or name == (listen_host or "").lower()):
        return
    raise Forbidden(f"Host: {header[:100]!r} is not this service's address; with no tokens configured only "
                    "localhost, loopback addresses and the listen address are served (DNS rebinding protection)",
                    "Host")


def _before(listen_host: str | None) -> None:
    svc = service()
    start_time_limit(svc.limits.config.request_seconds, "request_seconds")
    g.principal = ADMIN
    if not svc.tokens.enabled:
        _check_host(listen_host)
        return
    public = {e.name for e in REGISTRY if e.public}
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    if endpoint in public or not request.path.startswith("/api/"):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    principal = svc.tokens.principal(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if principal is None:
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer TOKEN)", "Authorization")
    g.principal = principal


def _timed_out() -> Response:
    svc = service()
    svc.limits.timeouts += 1
    seconds, key = g.get("time_limit", (svc.limits.config.request_seconds, "request_seconds"))
    log.warning("%s ran past its time limit of %g s", request.path, seconds)
    error = time_limit_error(seconds, key)
    return _error(error.status, error.message)


def _unavailable(exc: BaseException) -> Response:
    if passed():  # an interrupted statement (SQLite) or max_execution_time (ClickHouse)
        return _timed_out()
    log.warning("ledger unavailable: %s", exc)
    reason = ledger_reason(exc)
    return _error(503, f"the ledger is unavailable{': ' + reason if reason else ''}; retry later")


def create_app(config: Config, reader: LedgerReader, *, book: PriceBook | None = None,
               clock: Callable[[], int] = time.time_ns, page: Blueprint | None = None,
               schedule_status: Callable[[], list[dict[str, object]]] = list,
               listen_host: str | None = None, ledger_url: str | None = None) -> Flask:
    """The report service's WSGI app over `reader` (opened read-only by the caller, which closes it).

    `listen_host` is the address served on (accepted as a Host header when no token is configured);
    `ledger_url` is where the reader reads (the reconciliation reads the providers' reports there)."""
    app = Flask("genai_meter.reports", static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    svc = Service(config, reader, book or PriceBook.from_config(config), TokenTable(load_tokens(config)),
                  report_offset(config), clock, schedule_status, Limits(config.reports.limits), ledger_url)
    app.extensions[EXTENSION] = svc
    app.before_request(lambda: _before(listen_host))
    app.teardown_request(lambda exc: finish_request())
    for bp in (report_views.bp, activity_views.bp, insights_views.bp, reconciliation_views.bp, meta_views.bp):
        app.register_blueprint(bp)
    app.register_blueprint(page if page is not None else web_page)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return _error(exc.status, exc.message, exc.parameter)

    @app.errorhandler(QueryTimeout)
    def timed_out(exc: QueryTimeout) -> Response:
        return _timed_out()

    @app.errorhandler(LedgerUnavailable)
    def unavailable(exc: LedgerUnavailable) -> Response:
        return _unavailable(exc)

    @app.errorhandler(sqlite3.Error)
    def ledger_error(exc: sqlite3.Error) -> Response:
        return _unavailable(exc)

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
