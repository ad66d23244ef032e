"""Rendering a scheduled report: the same builders and renderers as the API, under the schedule's scope."""

from __future__ import annotations

import json

from genai_meter.config import ScheduleConfig
from genai_meter.money import usd_text
from genai_meter.reports.render.exactness import WORDS
from genai_meter.reports.render.focus import focus_export, focus_lines
from genai_meter.reports.render.pdf import report_pdf
from genai_meter.reports.render.tables import Report
from genai_meter.reports.render.text import BOM, csv_line, report_json, table_csv
from genai_meter.reports.render.xlsx import report_xlsx
from genai_meter.reports.schedules.reconcile_pull import KIND as RECONCILE_PULL
from genai_meter.reports.schedules.reconcile_pull import pull_and_store
from genai_meter.reports.schedules.scheduler import EXTENSIONS, Output
from genai_meter.reports.service.api import CSV, JSON, PDF, XLSX, Ctx, Service
from genai_meter.reports.service.params import Parsed
from genai_meter.reports.service.ranges import iso
from genai_meter.reports.service.scopes import Principal, apply_scope
from genai_meter.reports.views.reports import build_report


def slack_text(report: Report, name: str) -> str:
    """A short Slack message: the window, requests, failures, cost and the top groups."""
    s = report.summary
    cost = f"${s['cost_usd']}" if s.get("cost_usd") is not None else "unpriced"
    if s.get("exactness", "exact") != "exact":
        cost += f" ({WORDS[str(s['exactness'])]}: {s['calls_unpriced']} unpriced, {s['calls_upper_bound']} upper bound)"
    lines = [f"*genai-meter {name}*: {report.title}, {_day(report.start_ns)} to {_day(report.end_ns)}",
             f"Requests: {s['calls']} ({s['failures']} failed), tokens: {s['tokens_total']}, cost: {cost}"]
    groups = report.table("groups")
    if groups is not None and groups.rows:
        cost_i = groups.column_index("cost_usd")
        for row in groups.rows[:5]:
            label = " / ".join(str(v) for v in row[:len(report.group_by)])
            lines.append(f"- {label}: " + (f"${usd_text(int(str(row[cost_i])), 2)}" if row[cost_i] is not None
                                           else "unpriced"))
    return "\n".join(lines)


def _day(ns: int) -> str:
    return iso(ns)[:16].replace("T", " ") + " UTC"


def produce(svc: Service, schedule: ScheduleConfig, slot_ns: int) -> Output:
    """The schedule's report for the window ending at its slot, rendered in its format (a `reconcile_pull`
    schedule: the provider's reports pulled into the ledger, and a summary)."""
    if schedule.report == RECONCILE_PULL:
        return pull_and_store(svc, schedule, slot_ns)
    scope = {k: list(v) for k, v in schedule.scope.items()} or None
    filters = apply_scope(schedule.filters, scope)
    parsed = Parsed({"range": schedule.range, "format": schedule.format, "top": 10}, {"group_by": schedule.group_by},
                    filters)
    ctx = Ctx(svc, parsed, filters, Principal(f"schedule:{schedule.name}", scope), slot_ns)
    ext = EXTENSIONS[schedule.format]
    bom = BOM if schedule.bom else ""
    if schedule.format == "focus":
        window = ctx.window()
        export = focus_export(svc.reader, window.start_ns, window.end_ns, filters, svc.offset)
        return Output((bom + "".join(csv_line(c) for c in focus_lines(export))).encode(), CSV, ext)
    report = build_report(ctx, schedule.report)
    if schedule.format == "slack":
        return Output(json.dumps({"text": slack_text(report, schedule.name)}).encode(), JSON, ext)
    if schedule.format == "json":
        return Output(json.dumps(report_json(report)).encode(), JSON, ext)
    if schedule.format == "csv":
        table = report.table(report.primary)
        assert table is not None
        return Output((bom + "".join(table_csv(table))).encode(), CSV, ext)
    if schedule.format == "xlsx":
        return Output(report_xlsx(report), XLSX, ext)
    return Output(report_pdf(report), PDF, ext)
