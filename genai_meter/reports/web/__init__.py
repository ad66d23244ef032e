"""The web page of the report service: server-rendered HTML shells at `/`, static files at `/static/`.

Every figure the page shows comes from the report service's API (`/api/v1/...`), fetched by the page's
own scripts with the bearer token the user typed (kept in sessionStorage, never a cookie). The HTML
carries no data, only the field names and whether a token is required. Everything is served from the
package: no CDN, works offline.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, render_template

from genai_meter.reports.service.api import service

bp = Blueprint("web", __name__, static_folder="static", static_url_path="/static", template_folder="templates")
# Fields offered as filters first, in this order (the rest of the ledger's fields follow).
PREFERRED = ("organization", "service", "model", "provider", "project", "customer", "feature", "user")
PAGES = {"overview": "Overview", "activity": "Activity", "conversations": "Conversations", "budgets": "Budgets",
         "reports": "Reports", "reconciliation": "Reconciliation"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def filter_fields(fields: tuple[str, ...]) -> list[str]:
    """The ledger's fields in the order the filter bar shows them (preferred first, ids last)."""
    rest = [f for f in fields if f not in PREFERRED and f not in ("conversation", "request_model", "error_type")]
    return [f for f in PREFERRED if f in fields] + rest


def _script_json(value: object) -> str:
    """JSON safe to place inside a <script> element (no '<', '>' or '&' left as such)."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(page: str, **extra: str) -> Response:
    svc = service()
    config = {"page": page, "fields": filter_fields(svc.reader.fields()), "tokens_required": svc.tokens.enabled,
              **extra}
    html = render_template(f"{page}.html", page=page, pages=PAGES, config_json=_script_json(config),
                           title=PAGES.get(page, "Conversation"))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/")
def overview() -> Response:
    return _render("overview")


@bp.get("/activity")
def activity() -> Response:
    return _render("activity")


@bp.get("/conversations")
def conversations() -> Response:
    return _render("conversations")


@bp.get("/conversations/<path:conversation_id>")
def conversation(conversation_id: str) -> Response:
    return _render("conversation", conversation=conversation_id[:256])


@bp.get("/budgets")
def budgets() -> Response:
    return _render("budgets")


@bp.get("/reports")
def reports() -> Response:
    return _render("reports")


@bp.get("/reconciliation")
def reconciliation() -> Response:
    return _render("reconciliation")
