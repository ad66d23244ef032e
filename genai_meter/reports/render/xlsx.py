"""XLSX rendering of a `Report` with XlsxWriter: a sheet per table, typed cells, native charts.

Every number is a number: counts as integers, money as USD with a currency format (the decimals of
each money column from `numbers.money_places`; spreadsheet numbers are IEEE doubles, exact to 15
significant digits), shares and percentages as fractions with a % format, times as dates. A money
cell is blank where every call behind it is unpriced. The first sheet says what the report is:
title, period, filters, coverage, requests, the cost (a number, and the exact decimal as text) and
whether it is exact (render.exactness).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from genai_meter.ledger import deadline
from genai_meter.money import from_pico
from genai_meter.periods import NS
from genai_meter.reports.render.numbers import money_places
from genai_meter.reports.render.tables import Cell, Column, Report, Table
from genai_meter.reports.service.ranges import iso

_BAD = re.compile(r"[\[\]:*?/\\]")
MAX_CHART_POINTS = 200


def _sheet_name(name: str, used: set[str]) -> str:
    base = _BAD.sub("_", name)[:28] or "sheet"
    candidate, n = base, 2
    while candidate.lower() in used:
        candidate, n = f"{base[:26]}_{n}", n + 1
    used.add(candidate.lower())
    return candidate


def _usd_format(wb: Workbook, places: int) -> object:
    return wb.add_format({"num_format": "[$$-409]#,##0." + "0" * places})


def _write_cell(ws: Worksheet, row: int, col: int, column: Column, value: Cell, formats: dict[str, object]) -> None:
    if value is None:
        ws.write_blank(row, col, None)
    elif column.kind == "usd":
        ws.write_number(row, col, float(from_pico(int(value))), formats[f"usd:{column.key}"])
    elif column.kind == "int":
        ws.write_number(row, col, int(value), formats["int"])
    elif column.kind == "ratio":
        ws.write_number(row, col, float(Decimal(value)), formats["ratio"])
    elif column.kind == "percent":
        ws.write_number(row, col, float(Decimal(value) / 100), formats["ratio"])
    elif column.kind == "decimal":
        ws.write_number(row, col, float(Decimal(value)), formats["decimal"])
    elif column.kind == "time":
        moment = datetime.fromtimestamp(int(value) // NS, UTC).replace(tzinfo=None)
        ws.write_datetime(row, col, moment, formats["time"])
    else:
        ws.write_string(row, col, str(value)[:32000])


def _chart(wb: Workbook, ws: Worksheet, sheet: str, table: Table) -> None:
    chart_spec = table.chart
    if chart_spec is None or not table.rows:
        return
    n = min(len(table.rows), MAX_CHART_POINTS)
    label_col = table.column_index(chart_spec.label)
    chart = wb.add_chart({"type": chart_spec.kind if chart_spec.kind != "bar" else "column"})
    for key in chart_spec.values:
        col = table.column_index(key)
        chart.add_series({
            "name": [sheet, 0, col],
            "categories": [sheet, 1, label_col, n, label_col],
            "values": [sheet, 1, col, n, col],
        })
    chart.set_title({"name": chart_spec.title})
    if chart_spec.kind != "pie":
        chart.set_legend({"none": True})
    chart.set_size({"width": 720, "height": 360})
    ws.insert_chart(1, len(table.columns) + 1, chart)


def _info_lines(report: Report) -> list[tuple[str, object, str]]:
    """The Report sheet: (label, value, format key); numbers stay numbers."""
    s = report.summary
    filters = "; ".join(f"{k}={','.join(v)}" for k, v in sorted(report.filters.items())) or "none"
    lines: list[tuple[str, object, str]] = [
        ("Period from", iso(report.start_ns), "text"), ("Period to", iso(report.end_ns), "text"),
        ("Filters", filters, "text"), ("Group by", ", ".join(report.group_by) or "none", "text")]
    lines += [(f"Coverage {k.replace('_', ' ')}", v or "none", "text") for k, v in report.coverage.items()]
    cost = s.get("cost_usd")
    lines += [("Requests", int(str(s.get("calls", 0))), "int"),
              ("Cost (USD)", float(Decimal(str(cost))) if cost is not None else "unknown: every request unpriced",
               "usd" if cost is not None else "text"),
              ("Cost (USD, exact)", str(cost) if cost is not None else "", "text"),
              ("Exactness", str(s.get("exactness", "")), "text"),
              ("Unpriced requests", int(str(s.get("calls_unpriced", 0))), "int"),
              ("Upper-bound requests", int(str(s.get("calls_upper_bound", 0))), "int")]
    previous, change = s.get("previous"), s.get("change")
    if isinstance(previous, dict) and isinstance(change, dict):
        if previous.get("cost_usd") is not None:
            lines.append(("Previous period cost (USD)", float(Decimal(str(previous["cost_usd"]))), "usd"))
        if change.get("cost_pct") is not None:
            lines.append(("Cost change", float(Decimal(str(change["cost_pct"])) / 100), "ratio"))
    caveats = s.get("caveats")
    for item in caveats if isinstance(caveats, list) else []:
        lines.append((f"Note: {item['kind']}", f"{item['calls']} requests: {item['note']}", "text"))
    return lines


def report_xlsx(report: Report) -> bytes:
    """The workbook's bytes."""
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                      "strings_to_urls": False})
    formats: dict[str, object] = {
        "usd": _usd_format(wb, 2),
        "int": wb.add_format({"num_format": "#,##0"}),
        "ratio": wb.add_format({"num_format": "0.00%"}),
        "decimal": wb.add_format({"num_format": "#,##0.00####"}),
        "time": wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "head": wb.add_format({"bold": True, "bg_color": "#DDE4EE", "border": 1}),
        "title": wb.add_format({"bold": True, "font_size": 14}),
    }
    used: set[str] = set()
    info = wb.add_worksheet(_sheet_name("Report", used))
    info.write_string(0, 0, report.title, formats["title"])
    for i, (key, value, kind) in enumerate(_info_lines(report), start=2):
        info.write_string(i, 0, key, formats["head"])
        if kind == "text":
            info.write_string(i, 1, str(value))
        else:
            info.write_number(i, 1, value, formats[kind])
    info.set_column(0, 0, 26)
    info.set_column(1, 1, 60)
    for table in report.tables:
        sheet = _sheet_name(table.name, used)
        ws = wb.add_worksheet(sheet)
        for col, column in enumerate(table.columns):
            ws.write_string(0, col, column.title, formats["head"])
            ws.set_column(col, col, max(12, min(30, len(column.title) + 2)))
            if column.kind == "usd":
                places = money_places(int(row[col]) if row[col] is not None else None  # type: ignore[arg-type]
                                      for row in table.rows)
                formats[f"usd:{column.key}"] = _usd_format(wb, places)
        for r, row in enumerate(deadline.checked(table.rows), start=1):
            for col, (column, value) in enumerate(zip(table.columns, row)):
                _write_cell(ws, r, col, column, value, formats)
        if table.note:
            ws.write_string(len(table.rows) + 2, 0, table.note)
        ws.freeze_panes(1, 0)
        _chart(wb, ws, sheet, table)
    wb.close()
    return buffer.getvalue()
