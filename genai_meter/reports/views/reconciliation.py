"""`GET /api/v1/reconciliation` (JSON, CSV, XLSX, PDF) and `GET /api/v1/reconciliation/metrics` (Prometheus).

Who may see it: a row is one UTC day x provider x model of the provider's own report, which no
organization, customer or feature scope can split. Admin tokens see every row. A scoped token sees
rows only when its scope names `provider` and the ledger dimensions of `reconcile.match_dimensions`
(the provider's projects or API keys) and nothing else: it then sees the rows of those providers
(and projects, API keys) only, both sides filtered alike. Any other scope is answered 403, so a
tenant's token never sees a total that includes another tenant's calls. The metrics total every
provider: admin only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, jsonify

from genai_meter import contract as c
from genai_meter.config_reconcile import MatchedGroup
from genai_meter.ledger.model import Coverage
from genai_meter.money import usd_text
from genai_meter.reconcile.compare import Reconciliation, reconcile
from genai_meter.reconcile.sides import MATCHED
from genai_meter.reconcile.store import Loaded, load
from genai_meter.reconcile.window import DAY_OR_TIME, day_of, days_before, days_between, resolve_days
from genai_meter.reports.insights.reconciliation import reconciliation_report
from genai_meter.reports.render.pdf import report_pdf
from genai_meter.reports.render.text import table_csv
from genai_meter.reports.render.xlsx import report_xlsx
from genai_meter.reports.service.api import (
    CSV,
    INT,
    JSON,
    NSTR,
    PDF,
    STR,
    XLSX,
    Ctx,
    Endpoint,
    Service,
    arr,
    context,
    obj,
    route,
)
from genai_meter.reports.service.params import ApiError, Forbidden, Param, ParamError
from genai_meter.reports.service.ranges import RANGES, iso, resolve_window
from genai_meter.reports.service.scopes import Principal

bp = Blueprint("reconciliation_api", __name__, url_prefix="/api/v1")
FORMATS = ("json", "csv", "xlsx", "pdf")
PROVIDER = r"[A-Za-z0-9_.:-]{1,64}"
ROW = obj({"day": STR, "provider": STR, "model": STR, "requests_provider": {"type": ["integer", "null"]},
           "requests_ledger": INT, "cost_provider_usd": NSTR, "cost_ledger_usd": NSTR, "difference_usd": NSTR,
           "difference_pct": NSTR, "cause": {"enum": ["exact", "unmetered_calls", "price", "token_accounting",
                                                      "unmetered_service", "ledger_only"]}, "explanation": STR})
TOTALS = obj({"rows": INT, "requests_provider": INT, "requests_ledger": INT, "cost_provider_usd": STR,
              "cost_ledger_usd": STR, "difference_usd": STR, "difference_pct": NSTR, "causes": {"type": "object"}})
RECONCILIATION = Endpoint(
    "/reconciliation", "/api/v1/reconciliation", "reconciliation",
    "The providers' own usage and cost reports against the ledger, per UTC day, provider and model, with the "
    "cause of each difference (admin, or a scope of providers and matched projects or keys only)",
    (Param("range", "a range preset (alternative to from/to); the UTC days it touches", enum=RANGES),
     Param("from", "first day: a date (its midnight UTC) or an RFC 3339 time; default: the 30 days before today",
           pattern=DAY_OR_TIME, max_length=40),
     Param("to", "end (exclusive): a date or an RFC 3339 time; default now", pattern=DAY_OR_TIME, max_length=40),
     Param("provider", "only these providers (repeatable)", kind="array", pattern=PROVIDER, max_length=64),
     Param("format", "answer format", enum=FORMATS, default="json")),
    filters=False, media=(JSON, CSV, XLSX, PDF),
    schema=obj({"from": STR, "to": STR, "rows": arr(ROW), "totals": TOTALS, "drift": arr({"type": "object"}),
                "causes": arr(obj({"cause": STR, "title": STR, "meaning": STR, "action": STR}))}))
METRICS = Endpoint("/reconciliation/metrics", "/api/v1/reconciliation/metrics", "reconciliation_metrics",
                   "The reconciliation's gauges by provider over the last reconcile.alert_days days (Prometheus "
                   "text; admin)", (), filters=False, media=("text/plain",), schema={"type": "string"})


class Unavailable(ApiError):
    status = 503


@dataclass(frozen=True, slots=True)
class Visible:
    """What a caller may see: providers (None: all) and matched-dimension values (group -> values)."""

    providers: list[str] | None
    groups: dict[MatchedGroup, list[str]]
    filters: dict[str, list[str]]  # the ledger filters of the same scope


def visible(principal: Principal, matched: Mapping[MatchedGroup, str], asked: Sequence[str]) -> Visible:
    """The scope of the caller as reconciliation rows; Forbidden naming a field a row cannot be split by,
    or an asked provider outside the scope."""
    scope = principal.scope
    if scope is None:
        return Visible(list(asked) or None, {}, {"provider": list(asked)} if asked else {})
    by_dimension = {dim: group for group, dim in matched.items()}
    for name in scope:
        if name != "provider" and name not in by_dimension:
            allowed = ", ".join(["provider", *sorted(by_dimension)])
            raise Forbidden(f"reconciliation: the providers' reports are not split by {name}; this token's scope "
                            f"cannot see them (admin tokens, or scopes of {allowed} only)", name)
    providers = list(asked) or None
    if "provider" in scope:
        outside = [p for p in asked if p not in scope["provider"]]
        if outside:
            raise Forbidden(f"provider: {outside[0][:64]!r} is outside this token's scope", "provider")
        providers = providers or list(scope["provider"])
    groups = {by_dimension[name]: list(values) for name, values in scope.items() if name in by_dimension}
    filters = {name: list(values) for name, values in scope.items() if name in by_dimension}
    if providers is not None:
        filters["provider"] = providers
    return Visible(providers, groups, filters)


def _scoped(loaded: Loaded, groups: Mapping[MatchedGroup, Sequence[str]]) -> Loaded:
    """The lines whose project / API key lies in the scope (a line not split by it is outside)."""
    if not groups:
        return loaded
    lines = tuple(line for line in loaded.lines if all(getattr(line, g) in groups[g] for g in MATCHED if g in groups))
    return Loaded(loaded.reports, lines)


def build(svc: Service, principal: Principal, asked: Sequence[str], days: tuple[date, date]) -> Reconciliation:
    """The reconciliation of `days` (first, last) that `principal` may see."""
    if svc.ledger_url is None:
        raise Unavailable("reconciliation: the service was started without its ledger's URL")
    first, last = days
    matched = svc.config.reconcile.match_dimensions
    scope = visible(principal, matched, asked)
    loaded = _scoped(load(svc.ledger_url, svc.config, first, last, scope.providers or ()), scope.groups)
    return reconcile(loaded, svc.reader, svc.book, svc.config.reconcile, first, last, scope.providers or (),
                     scope.filters)


def _days(ctx: Ctx) -> tuple[date, date]:
    preset, from_, to = ctx.args.text("range"), ctx.args.text("from"), ctx.args.text("to")
    try:
        if preset:
            if from_ or to:
                raise ParamError("range: give either range or from/to, not both", "range")
            window = resolve_window(preset, "", "", ctx.now_ns, timedelta(0), ctx.svc.config.reports.max_range_days)
            return days_between(window.start_ns, window.end_ns)
        return resolve_days(from_, to, ctx.now_ns)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise ParamError(str(exc), name if name in ("from", "to") else "from") from None


def _coverage(cov: Coverage) -> dict[str, str | None]:
    def at(ns: int | None) -> str | None:
        return iso(ns) if ns is not None else None

    return {"first_call": at(cov.first_ns), "last_call": at(cov.last_ns), "raw_since": at(cov.raw_since_ns)}


@route(bp, RECONCILIATION)
def reconciliation_view() -> Response:
    ctx = context(RECONCILIATION)
    rec = build(ctx.svc, ctx.principal, ctx.args.lists.get("provider", []), _days(ctx))
    fmt = ctx.args.text("format", "json")
    if fmt == "json":
        return jsonify(rec.as_json())
    report = reconciliation_report(rec, _coverage(ctx.svc.reader.coverage()))
    if fmt == "csv":
        table = report.table(report.primary)
        assert table is not None
        response = Response("".join(table_csv(table)), mimetype=CSV)
    elif fmt == "xlsx":
        response = Response(report_xlsx(report), mimetype=XLSX)
    else:
        response = Response(report_pdf(report), mimetype=PDF)
    name = f"genai-meter-reconciliation-{rec.first.isoformat()}-{rec.last.isoformat()}.{fmt}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _family(name: str, help_text: str, samples: list[tuple[str, object]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *(f"{name}{{{labels}}} {value}"
                                                                     for labels, value in samples)]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(rec: Reconciliation, days: int) -> str:
    """The gauges of `rec` by provider, in the Prometheus text format (money as exact decimals)."""
    sums = rec.by_provider()
    label = {p: f'provider="{_label(p)}"' for p in sums}
    window = f"the last {days} whole UTC days a provider report covers"
    lines = [
        *_family(c.SELF_RECONCILIATION_DIFFERENCE, f"The provider's cost minus the ledger's, USD, over {window}.",
                 [(label[p], usd_text(s.difference_pico)) for p, s in sums.items()]),
        *_family(c.SELF_RECONCILIATION_PROVIDER_COST, f"The provider's cost, USD, over {window}.",
                 [(label[p], usd_text(s.cost_provider_pico)) for p, s in sums.items()]),
        *_family(c.SELF_RECONCILIATION_LEDGER_COST, f"The ledger's cost of the same rows, USD, over {window}.",
                 [(label[p], usd_text(s.cost_ledger_pico)) for p, s in sums.items()]),
        *_family(c.SELF_RECONCILIATION_ROWS, f"Reconciliation rows by cause, over {window}.",
                 [(f'{label[p]},cause="{cause}"', n) for p, s in sums.items()
                  for cause, n in sorted(s.causes.items())]),
        *_family(c.SELF_RECONCILIATION_DAYS, f"Days of {window}.",
                 [(label[p], sum(1 for q, _ in rec.covered if q == p)) for p in sums]),
    ]
    return "\n".join(lines) + "\n"


@route(bp, METRICS)
def metrics_view() -> Response:
    ctx = context(METRICS)
    if not ctx.principal.admin:
        raise Forbidden("reconciliation metrics: admin tokens only (they total every project)")
    days = ctx.svc.config.reconcile.alert_days
    rec = build(ctx.svc, ctx.principal, [], days_before(day_of(ctx.now_ns), days))
    return Response(metrics_text(rec, days), mimetype="text/plain")
