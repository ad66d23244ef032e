"""XLSX rendering of a `Report` with XlsxWriter: a sheet per table, typed cells, native charts.

Numbers are numbers (money as USD with a currency format; spreadsheet numbers are IEEE doubles,
exact to 15 significant digits), times are dates, shares are percentages. The first sheet says what
the report is: title, period, filters, coverage.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from genai_meter.money import from_pico
from genai_meter.periods import NS
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


def _write_cell(ws: Worksheet, row: int, col: int, column: Column, value: Cell, formats: dict[str, object]) -> None:
    if value is None:
        ws.write_blank(row, col, None)
    elif column.kind == "usd":
        ws.write_number(row, col, float(from_pico(int(value))), formats["usd"])
    elif column.kind == "int":
        ws.write_number(row, col, int(value), formats["int"])
    elif column.kind == "ratio":
        ws.write_number(row, col, float(Decimal(value)), formats["ratio"])
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


def report_xlsx(report: Report) -> bytes:
    """The workbook's bytes."""
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                      "strings_to_urls": False})
    formats: dict[str, object] = {
        "usd": wb.add_format({"num_format": "[$$-409]#,##0.00##########"}),
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
    lines = [("Period from", iso(report.start_ns)), ("Period to", iso(report.end_ns)),
             ("Filters", "; ".join(f"{k}={','.join(v)}" for k, v in sorted(report.filters.items())) or "none"),
             ("Group by", ", ".join(report.group_by) or "none")]
    lines += [(f"Coverage {k.replace('_', ' ')}", v or "") for k, v in report.coverage.items()]
    lines += [("Requests", str(report.summary.get("calls", ""))),
              ("Cost (USD)", str(report.summary.get("cost_usd", "")))]
    for i, (key, text) in enumerate(lines, start=2):
        info.write_string(i, 0, key, formats["head"])
        info.write_string(i, 1, text)
    info.set_column(0, 0, 22)
    info.set_column(1, 1, 48)
    for table in report.tables:
        sheet = _sheet_name(table.name, used)
        ws = wb.add_worksheet(sheet)
        for col, column in enumerate(table.columns):
            ws.write_string(0, col, column.title, formats["head"])
            ws.set_column(col, col, max(12, min(30, len(column.title) + 2)))
        for r, row in enumerate(table.rows, start=1):
            for col, (column, value) in enumerate(zip(table.columns, row)):
                _write_cell(ws, r, col, column, value, formats)
        if table.note:
            ws.write_string(len(table.rows) + 2, 0, table.note)
        ws.freeze_panes(1, 0)
        _chart(wb, ws, sheet, table)
    wb.close()
    return buffer.getvalue()
