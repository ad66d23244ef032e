"""The endpoint registry and the per-request context every handler starts from.

`route(bp, endpoint)` registers a Flask view and records its `Endpoint` (parameters, response
schema, content types) for the generated OpenAPI description. `context(endpoint)` validates the
query against the same declarations, applies the caller's scope, admits a heavy endpoint's request
(`limits.Admission`, which restarts its time limit) and resolves the time window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from flask import Blueprint, Response, current_app, g, request

from genai_meter.config import Config, ReportLimitsConfig
from genai_meter.ledger import deadline
from genai_meter.ledger.model import LedgerReader
from genai_meter.periods import NS
from genai_meter.pricing import PriceBook
from genai_meter.reports.service.limits import Limits
from genai_meter.reports.service.params import Param, ParamError, Parsed, parse_query
from genai_meter.reports.service.ranges import RANGES, RFC3339, Window, iso, resolve_window
from genai_meter.reports.service.readers import PerThreadReader
from genai_meter.reports.service.scopes import ADMIN, Principal, TokenTable, apply_scope

EXTENSION = "genai_meter_reports"
JSON = "application/json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
F = TypeVar("F", bound=Callable[..., Response])

RANGE_PARAMS: tuple[Param, ...] = (
    Param("range", "a range preset (alternative to from/to)", enum=RANGES),
    Param("from", "start, RFC 3339 (inclusive)", pattern=RFC3339, max_length=40),
    Param("to", "end, RFC 3339 (exclusive; default now)", pattern=RFC3339, max_length=40),
)
BOM_PARAM = Param("bom", "CSV answers: 1 starts the file with a UTF-8 byte order mark (for Excel on Windows)",
                  enum=("0", "1"), default="0")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API operation, as the OpenAPI description shows it."""

    rule: str  # Flask rule
    path: str  # OpenAPI path
    name: str
    summary: str
    params: tuple[Param, ...] = ()
    filters: bool = True
    media: tuple[str, ...] = (JSON,)
    schema: dict[str, object] = field(default_factory=dict)  # 200 JSON body schema
    public: bool = False
    statuses: tuple[int, ...] = (400, 401, 403, 503, 504)
    heavy: bool = True  # admitted through `limits.Admission` (a report, an export, a scan of a window)


REGISTRY: list[Endpoint] = []


@dataclass(slots=True)
class Service:
    """What the handlers share: config, ledger reader, price book, tokens, clock, offset."""

    config: Config
    reader: LedgerReader
    book: PriceBook
    tokens: TokenTable
    offset: timedelta
    clock: Callable[[], int] = time.time_ns
    schedule_status: Callable[[], list[dict[str, object]]] = list
    limits: Limits = field(default_factory=lambda: Limits(ReportLimitsConfig()))
    ledger_url: str | None = None  # where `reader` reads: the reconciliation opens the providers' reports there


def service() -> Service:
    svc = current_app.extensions[EXTENSION]
    assert isinstance(svc, Service)
    return svc


def route(bp: Blueprint, endpoint: Endpoint) -> Callable[[F], F]:
    """Register `endpoint` on `bp` (GET) and in the registry."""
    def wrap(view: F) -> F:
        REGISTRY.append(endpoint)
        bp.add_url_rule(endpoint.rule, endpoint.name, view, methods=["GET"])
        return view
    return wrap


@dataclass(slots=True)
class Ctx:
    """A validated request: parameters, scoped filters, the caller, and (when asked for) a window."""

    svc: Service
    args: Parsed
    filters: dict[str, list[str]]
    principal: Principal
    now_ns: int

    def window(self) -> Window:
        return resolve_window(self.args.text("range"), self.args.text("from"), self.args.text("to"), self.now_ns,
                              self.svc.offset, self.svc.config.reports.max_range_days)

    def group_by(self, limit: int = 3) -> list[str]:
        fields = self.svc.reader.fields()
        chosen = self.args.lists.get("group_by", [])
        for name in chosen:
            if name not in fields:
                raise ParamError(f"group_by: {name!r} is not a field; allowed: {', '.join(fields)}", "group_by")
        if len(set(chosen)) != len(chosen) or len(chosen) > limit:
            raise ParamError(f"group_by: at most {limit} distinct fields", "group_by")
        return chosen

    def require_raw(self, start_ns: int | None) -> None:
        """400 naming the retained start when raw calls before `start_ns` are no longer kept."""
        cov = self.svc.reader.coverage()
        raw_since = cov.raw_since_ns  # None until a prune removed raw calls
        if start_ns is not None and raw_since is not None and start_ns < raw_since:
            raise ParamError(f"from: raw calls are kept from {iso(raw_since)} on; this answer needs raw calls "
                             "(summary, cost and trend reports answer older ranges from rollups)", "from")


def start_time_limit(seconds: float, key: str) -> None:
    """This request's ledger queries stop `seconds` from now (`key` names the setting in the 504)."""
    g.time_limit = (seconds, key)
    deadline.set_deadline(time.monotonic() + seconds)


def admit(export: bool = False) -> None:
    """Count this request as heavy (once: a slot of `limits.Admission`, or `Busy`) and start its time
    limit from now: `request_seconds`, or `export_seconds` for an export written in full."""
    svc = service()
    if not g.get("admitted"):
        svc.limits.admission.acquire()
        g.admitted = True
    limits = svc.limits.config
    if export:
        start_time_limit(limits.export_seconds, "export_seconds")
    else:
        start_time_limit(limits.request_seconds, "request_seconds")


def finish_request() -> None:
    """Give back this request's heavy slot and ledger reader and lift its time limit (the app's teardown)."""
    deadline.set_deadline(None)
    svc = service()
    if isinstance(svc.reader, PerThreadReader):
        svc.reader.release()
    if g.pop("admitted", False):
        svc.limits.admission.release()


def context(endpoint: Endpoint) -> Ctx:
    """Validate the request against `endpoint`, scope it to the caller and admit it when heavy."""
    svc = service()
    args = parse_query(request.args.to_dict(flat=False), endpoint.params, svc.reader.fields(), endpoint.filters)
    principal = g.get("principal", ADMIN)
    filters = apply_scope(args.filters, principal.scope)
    if endpoint.heavy:
        admit()
    return Ctx(svc, args, filters, principal, svc.clock())


def days_ns(days: int) -> int:
    return days * 86400 * NS


# JSON schemas shared by endpoint declarations -------------------------------------------------------

STR: dict[str, object] = {"type": "string"}
INT: dict[str, object] = {"type": "integer"}
NSTR: dict[str, object] = {"type": ["string", "null"]}


def obj(required: dict[str, object], **optional: object) -> dict[str, object]:
    """An object schema with these required properties (others allowed)."""
    return {"type": "object", "required": sorted(required), "properties": {**required, **optional}}


def arr(items: dict[str, object]) -> dict[str, object]:
    return {"type": "array", "items": items}


COVERAGE = obj({"first_call": NSTR, "last_call": NSTR, "raw_since": NSTR})
ERROR = obj({"error": obj({"message": STR, "parameter": STR, "status": INT})})
