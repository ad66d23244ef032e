"""`GET /api/v1/reports/<summary|detailed|cost|trend>` in JSON, CSV, XLSX, PDF and FOCUS."""

from __future__ import annotations

from itertools import chain
from typing import cast

from flask import Blueprint, Response, jsonify, stream_with_context

from genai_meter.ledger import deadline
from genai_meter.ledger.model import Step
from genai_meter.pricing.fx import FxError
from genai_meter.reports.insights.build import BUILDERS, KINDS, Query
from genai_meter.reports.render.focus import focus_export, focus_lines
from genai_meter.reports.render.pdf import MAX_PDF_ROWS, report_pdf
from genai_meter.reports.render.tables import Report
from genai_meter.reports.render.text import BOM, choose_table, csv_line, report_json, table_csv
from genai_meter.reports.render.xlsx import report_xlsx
from genai_meter.reports.service.api import (
    BOM_PARAM,
    COVERAGE,
    CSV,
    INT,
    JSON,
    PDF,
    RANGE_PARAMS,
    STR,
    XLSX,
    Ctx,
    Endpoint,
    arr,
    context,
    obj,
    route,
)
from genai_meter.reports.service.currency import currency_reader, relabel
from genai_meter.reports.service.params import NotFound, Param, ParamError
from genai_meter.reports.service.ranges import check_step, default_step, iso
from genai_meter.reports.service.spool import export_answer
from genai_meter.reports.views.activity import call_lines

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1")
FORMATS = ("json", "csv", "xlsx", "pdf", "focus")

REPORT_PARAMS: tuple[Param, ...] = RANGE_PARAMS + (
    Param("kind", "which report", enum=KINDS, location="path"),
    Param("step", "series step (trend)", enum=("1m", "1h", "1d", "1w", "1mo")),
    Param("group_by", "fields to group by (repeatable, at most 3)", kind="array"),
    Param("compare", "add the previous period of equal length", enum=("previous_period",)),
    Param("format", "answer format", enum=FORMATS, default="json"),
    Param("section", "the table a CSV answer holds (default: the report's main table)",
          pattern=r"[a-z0-9_]{1,64}", max_length=64),
    Param("top", "rows in the top-k tables (detailed)", kind="integer", minimum=1, maximum=100, default=10),
    Param("rows", "detailed CSV: one row per group (default) or per call (streamed)", enum=("groups", "calls"),
          default="groups"),
    Param("limit", "groups per table (per step in a trend): the top N by cost, the others summed in a last row "
          "(other) (default: every group in CSV, reports.max_rows in JSON and XLSX, 59 in PDF)", kind="integer",
          minimum=1, maximum=1_000_000),
    Param("currency", "ISO 4217 code of the currency to report in (default USD), from the dated rates of "
          "pricing.fx; the rates used are named in the answer", pattern=r"[A-Z]{3}", max_length=3),
    BOM_PARAM,
)
TABLE = obj({"title": STR, "columns": arr(obj({"key": STR, "title": STR, "type": STR})),
             "rows": arr({"type": "object"}),
             "note": STR,
             "remainder": {"type": ["object", "null"], "properties": {"groups": INT, "limit": INT}}})
REPORT_SCHEMA = obj({"report": STR, "from": STR, "to": STR, "filters": {"type": "object"}, "group_by": arr(STR),
                     "coverage": COVERAGE,
                     "summary": obj({"calls": INT, "cost_usd": STR, "tokens": {"type": "object"}}),
                     "tables": {"type": "object", "additionalProperties": TABLE}})
REPORTS = Endpoint("/reports/<kind>", "/api/v1/reports/{kind}", "report",
                   "A report (summary, detailed, cost, trend) of the window, filtered and grouped",
                   REPORT_PARAMS, media=(JSON, CSV, XLSX, PDF), schema=REPORT_SCHEMA,
                   statuses=(400, 401, 403, 404, 503, 504))


def _filename(report_kind: str, start: int, end: int, ext: str) -> str:
    return f"genai-meter-{report_kind}-{iso(start)[:10]}-{iso(end)[:10]}.{ext}"


def build_report(ctx: Ctx, kind: str) -> Report:
    """Validate the report parameters of `ctx` and build the report (shared with schedules)."""
    window = ctx.window()
    step = cast(Step, ctx.args.text("step") or default_step(window))
    if kind == "trend":
        check_step(step, window.start_ns, window.end_ns)
    if kind == "detailed":
        ctx.require_raw(window.start_ns)
    overrides = tuple(sorted({(e.provider, e.model) for e in ctx.svc.book.overrides if getattr(e, "model", "")}))
    fmt = ctx.args.text("format", "json")
    asked = ctx.args.number("limit", 0)
    rows = asked or ctx.svc.config.reports.max_rows
    if fmt == "pdf" and not asked:
        rows = min(rows, MAX_PDF_ROWS - 1)  # the PDF prints every row of its tables, the remainder last
    fx = currency_reader(ctx.svc.reader, ctx.svc.config, ctx.args.text("currency"))
    query = Query(fx or ctx.svc.reader, window, ctx.filters, ctx.group_by(), step, ctx.args.text("compare") ==
                  "previous_period", ctx.args.number("top", 10), ctx.svc.offset, rows,
                  overrides, every_group=fmt == "csv" and not asked,  # type: ignore[arg-type]
                  per_step=asked or None, section=ctx.args.text("section") if fmt == "csv" else None)
    if fx is None:
        return BUILDERS[kind](query)
    try:
        return relabel(BUILDERS[kind](query), fx)
    except FxError as exc:
        raise ParamError(f"currency: {exc}", "currency") from None


@route(bp, REPORTS)
def report_view(kind: str) -> Response:
    if kind not in KINDS:
        raise NotFound(f"kind: {kind[:40]!r} is not a report; allowed: {', '.join(KINDS)}", "kind")
    ctx = context(REPORTS)
    fmt = ctx.args.text("format", "json")
    bom = BOM if ctx.args.text("bom") == "1" else ""
    if fmt == "focus":
        window = ctx.window()
        ctx.require_raw(window.start_ns)
        if window.end_ns - window.start_ns > 5000 * 3600 * 10**9:
            raise ParamError("range: a FOCUS export covers at most 5000 hours (~208 days)", "range")
        fx = currency_reader(ctx.svc.reader, ctx.svc.config, ctx.args.text("currency"))
        try:
            export = focus_export(ctx.svc.reader, window.start_ns, window.end_ns, ctx.filters, ctx.svc.offset, fx)
        except FxError as exc:
            raise ParamError(f"currency: {exc}", "currency") from None
        body = bom + "".join(csv_line(cells) for cells in focus_lines(export))
        response = Response(body, mimetype=CSV)
        response.headers["X-Unpriced-Calls-Excluded"] = str(export.unpriced_calls)
        response.headers["Content-Disposition"] = \
            f'attachment; filename="{_filename("focus", window.start_ns, window.end_ns, "csv")}"'
        return response
    if ctx.args.text("rows") == "calls":
        if kind != "detailed" or fmt != "csv":
            raise ParamError("rows: calls is for format=csv of the detailed report", "rows")
        window = ctx.window()
        ctx.require_raw(window.start_ns)
        lines = call_lines(ctx.svc.reader, ctx.filters, window.start_ns, window.end_ns)
        return export_answer(lines, _filename("calls", window.start_ns, window.end_ns, "csv"), bool(bom))
    report = build_report(ctx, kind)
    currency = report.summary.get("currency")
    deadline.check()  # rendering is not begun past the time limit
    if fmt == "json":
        answer = report_json(report)
        deadline.check()  # encoding a large answer takes a while too: not begun past the time limit
        return jsonify(answer)
    if fmt == "csv":
        table = choose_table(report, ctx.args.text("section"))
        if bom:  # streamed: one page of rows in memory at a time
            response = Response(stream_with_context(chain((bom,), table_csv(table))), mimetype=CSV)
        else:
            response = Response(stream_with_context(table_csv(table)), mimetype=CSV)
        ext = "csv"
    elif fmt == "xlsx":
        response, ext = Response(report_xlsx(report), mimetype=XLSX), "xlsx"
    else:
        response, ext = Response(report_pdf(report), mimetype=PDF), "pdf"
    response.headers["Content-Disposition"] = \
        f'attachment; filename="{_filename(kind, report.start_ns, report.end_ns, ext)}"'
    if currency:  # CSV carries no note: the currency and its rates in headers
        rates = report.summary["fx"]["rates"]  # type: ignore[index]
        response.headers["X-Currency"] = str(currency)
        response.headers["X-Exchange-Rates"] = ", ".join(f"{d}={r}" for d, r in rates.items())
    return response
