"""PDF rendering of a `Report` (fpdf2, landscape A4): a document a finance lead can forward.

Page 1: title, period, filters, grouping, data coverage, the key figures (requests, cost, whether
the cost is exact, the change against the previous period) and any caveat. Then the charts, two
per row where they are bars or pies, then each table with its key columns (60 rows; CSV and XLSX
carry every row and column), then an appendix of the exact figures (every significant decimal of
the 10^-12 USD sums). Every page has a header (report, period) and a footer (generated at,
filters, page x of y). Money is `$1,234.57`, with a fixed number of decimals per column
(`numbers.money_places`); counts have thousands separators; shares and changes carry `%`; numbers
are right-aligned. A cost whose calls are all unpriced reads `unpriced`, never $0. Names are printed
whole in any script the installed fonts cover (`fonts.plan`); long ones wrap at `-`, `/`, `_`, `.`.
"""

from __future__ import annotations

import io
import time
from decimal import Decimal
from typing import Any

from genai_meter.reports.render import numbers
from genai_meter.reports.render.exactness import WORDS
from genai_meter.reports.render.fonts import FontPlan, plan
from genai_meter.reports.render.pdf_charts import chart_png, heatmap_png
from genai_meter.reports.render.tables import Cell, Column, Report, Table
from genai_meter.reports.service.ranges import iso

MAX_PDF_ROWS = 60  # rows per table printed; the rest are counted in a note
PAGE_W, MARGIN = 297.0, 12.0
BODY_W = PAGE_W - 2 * MARGIN
FONT_SIZE = 8
GREY = (110, 110, 110)
_BREAK_AFTER = "-/_.]"
ZWSP = "\u200b"
# Columns printed per table (the CSV and XLSX hold all); "*" stands for the report's group fields.
PRINTED: dict[str, tuple[str, ...]] = {
    "totals": ("calls", "failures", "error_rate", "tokens_in", "tokens_out", "tokens_total", "cost_usd",
               "cost_per_call_usd"),
    "groups": ("*", "calls", "failures", "tokens_total", "cost_usd", "cost_per_call_usd", "share_of_cost"),
    "top": ("*", "calls", "tokens_in", "tokens_out", "tokens_total", "cost_usd"),
    "requests_by_model": ("provider", "model", "calls", "tokens_total", "cost_usd"),
    "by_model": ("provider", "model", "calls", "tokens_total", "cost_usd", "share_of_cost", "previous_cost_usd",
                 "change_usd", "change_pct"),
    "by_token_class": ("token_class", "tokens", "cost_usd", "share_of_cost"),
    "series": ("start", "*", "calls", "failures", "tokens_total", "cost_usd"),
    "comparisons": ("comparison", "from", "to", "calls", "previous_calls", "cost_usd", "previous_cost_usd",
                    "change_usd", "change_pct"),
    "forecast": ("day", "conservative_usd", "likely_usd", "aggressive_usd"),
}
APPENDIX = ("totals", "previous", "groups", "by_model", "by_token_class", "comparisons")
PER_REQUEST = frozenset({"cost_per_call_usd"})  # money columns of sub-cent amounts: more decimals than cents
EXACT_COLUMNS = ("cost_usd", "previous_cost_usd", "change_usd")


def _printed(table: Table, group_by: list[str]) -> list[int]:
    """Indexes of the columns printed for `table`, plus its exactness columns when a row is not exact."""
    name = "top" if table.name.startswith("top_") else "totals" if table.name == "previous" else table.name
    keys = [c.key for c in table.columns]
    wanted = PRINTED.get(name, tuple(keys[:9]))
    chosen: list[int] = []
    for key in wanted:
        if key == "*":
            chosen += [i for i, c in enumerate(table.columns) if c.kind == "text" and
                       (c.key in group_by or (name == "top" and i == 0)) and i not in chosen]
        elif key in keys:
            chosen.append(keys.index(key))
    for key in ("exactness", "previous_exactness"):
        if key in keys and any(row[keys.index(key)] not in (None, "exact") for row in table.rows):
            chosen.append(keys.index(key))
    return chosen


class _Cells:
    """Display text of a table's cells: cents (a per-request column: the decimals its amounts need),
    `unpriced` for an unknown cost."""

    def __init__(self, table: Table, fonts: FontPlan) -> None:
        self.fonts = fonts
        self.places = {i: numbers.money_places(int(str(r[i])) if r[i] is not None else None for r in table.rows)
                       if c.key in PER_REQUEST else numbers.MIN_PLACES
                       for i, c in enumerate(table.columns) if c.kind == "usd"}

    def text(self, i: int, column: Column, value: Cell) -> str:
        if value is None:
            return "unpriced" if column.kind == "usd" and "change" not in column.key else "n/a"
        if column.kind == "usd":
            return numbers.money(int(value), self.places[i])
        if column.kind == "int":
            return numbers.integer(int(value))
        if column.kind == "ratio":
            return numbers.share(Decimal(value))
        if column.kind == "percent":
            return numbers.percent(Decimal(value))
        if column.kind == "decimal":
            return numbers.decimal(Decimal(value))
        if column.kind == "time":
            return iso(int(value))[:16].replace("T", " ")
        if column.key.endswith("exactness"):
            return WORDS.get(str(value), str(value))
        return self.fonts.text(str(value))


class _Document:
    """An fpdf2 document with this report's header, footer and fonts."""

    def __init__(self, report: Report, fonts: FontPlan, generated_ns: int) -> None:
        from fpdf import FPDF  # loaded on the first PDF, like matplotlib

        doc = self
        period = f"{_day(report.start_ns)} to {_day(report.end_ns)} (UTC)"
        filters = _filters(report)

        class Pages(FPDF):
            def header(self) -> None:
                doc.small(f"genai-meter \u00b7 {report.title} \u00b7 {period}", y=5)
                self.set_xy(MARGIN, 12)

            def footer(self) -> None:
                doc.small(f"Generated {iso(generated_ns)[:16].replace('T', ' ')} UTC \u00b7 filters: {filters}",
                          y=-9)
                doc.small(f"Page {self.page_no()} of {{nb}}", y=-9, align="R")

        self.pdf: Any = Pages(orientation="L", unit="mm", format="A4")
        self.fonts = fonts
        for face, path, bold in fonts.faces:
            self.pdf.add_font(face.family, "", str(path), collection_font_number=face.index)
            self.pdf.add_font(face.family, "B", str(bold or path), collection_font_number=face.index)
        if len(fonts.faces) > 1:
            self.pdf.set_fallback_fonts([face.family for face, _, _ in fonts.faces[1:]], exact_match=False)
        self.pdf.set_margins(MARGIN, 12, MARGIN)
        self.pdf.set_auto_page_break(auto=True, margin=14)
        self.pdf.alias_nb_pages()
        self.pdf.add_page()

    def font(self, size: float = FONT_SIZE, bold: bool = False, grey: bool = False) -> None:
        self.pdf.set_font(self.fonts.main, "B" if bold else "", size)
        self.pdf.set_text_color(*(GREY if grey else (0, 0, 0)))

    def small(self, text: str, y: float, align: str = "L") -> None:
        self.font(7, grey=True)
        self.pdf.set_y(y)
        self.pdf.cell(0, 4, self.fonts.text(text), align=align)
        self.font()

    def line(self, text: str, size: float = FONT_SIZE + 1, bold: bool = False, grey: bool = False,
             height: float = 5.5) -> None:
        self.font(size, bold, grey)
        self.pdf.multi_cell(0, height, self.fonts.text(text), new_x="LMARGIN", new_y="NEXT")
        self.font()

    def heading(self, text: str) -> None:
        if self.pdf.get_y() > 175:
            self.pdf.add_page()
        self.pdf.ln(3)
        self.line(text, size=12, bold=True, height=7)


def _day(ns: int) -> str:
    return iso(ns)[:16].replace("T", " ")


def _filters(report: Report) -> str:
    return "; ".join(f"{k}={','.join(v)}" for k, v in sorted(report.filters.items())) or "none"


def _texts(report: Report) -> list[str]:
    """Every text the document may print (for choosing fonts)."""
    out = [report.title, _filters(report), *report.group_by]
    for table in report.tables:
        out += [table.title, table.note, *(c.title for c in table.columns)]
        out += [str(v) for row in table.rows for v in row if isinstance(v, str)]
    return out


def _summary(doc: _Document, report: Report) -> None:
    s = report.summary
    doc.line(report.title, size=18, bold=True, height=10)
    cov = report.coverage
    raw = f"raw calls kept since {cov['raw_since']}" if cov.get("raw_since") else "every raw call kept"
    data = (f"first call {cov['first_call']}, last call {cov['last_call']}; {raw}" if cov.get("first_call")
            else "no calls stored")
    for text in (f"Period: {iso(report.start_ns)} to {iso(report.end_ns)}", f"Filters: {_filters(report)}",
                 f"Group by: {', '.join(report.group_by) or 'none'}", f"Data: {data}"):
        doc.line(text)
    doc.pdf.ln(2)
    cost = s.get("cost_usd")
    pico = round(Decimal(str(cost)).scaleb(12)) if cost is not None else None
    figures = [("Requests", numbers.integer(int(str(s.get("calls", 0))))),
               ("Cost (USD)", numbers.money(pico) if pico is not None else "unpriced"),
               ("Exact cost", numbers.exact_money(pico) if pico is not None else "n/a"),
               ("Cost is", WORDS.get(str(s.get("exactness")), "exact"))]
    change = s.get("change")
    if isinstance(change, dict) and change.get("cost_pct") is not None:
        figures.append(("Change vs previous period", numbers.percent(Decimal(str(change["cost_pct"])))))
    width = BODY_W / len(figures)
    doc.font(7, grey=True)
    for label, _ in figures:
        doc.pdf.cell(width, 5, label)
    doc.pdf.ln(5)
    doc.font(14, bold=True)
    for _, value in figures:
        doc.pdf.cell(width, 8, value)
    doc.pdf.ln(10)
    caveats = s.get("caveats")
    for item in caveats if isinstance(caveats, list) else []:
        doc.line(f"Note: {numbers.integer(int(item['calls']))} requests: {item['note']}.", grey=True)
    if doc.fonts.missing:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in sorted(doc.fonts.missing)[:12])
        doc.line(f"Note: some names hold characters no installed font covers ({codes}); they are printed as "
                 "[U+XXXX] code points. `make fonts` installs the fonts this document looks for.", grey=True)


def _charts(doc: _Document, report: Report) -> None:
    """Bars and pies two per row, lines and the heatmap across the page; no section when nothing draws."""
    half, full, height = (BODY_W - 6) / 2, BODY_W, 56.0
    wide = [heatmap_png(t, doc.fonts, full, height) if t.name == "heatmap" else chart_png(t, doc.fonts, full, height)
            for t in report.tables if (t.chart is not None and t.chart.kind == "line") or t.name == "heatmap"]
    narrow, drawn = [], set()
    for table in report.tables:  # a chart another table already draws (top-k by cost = the groups) once
        if table.chart is not None and table.chart.kind != "line":
            key = (table.chart.kind, table.chart.label, table.chart.values)
            if key not in drawn:
                drawn.add(key)
                narrow.append(chart_png(table, doc.fonts, half, height + 8))
    lines = [png for png in wide if png is not None]
    pairs = [png for png in narrow if png is not None]
    if not lines and not pairs:
        return
    doc.heading("Charts")
    for png in lines:
        _place(doc, [png], full, height)
    for i in range(0, len(pairs), 2):
        _place(doc, pairs[i:i + 2], half, height + 8)


def _place(doc: _Document, pngs: list[bytes], width: float, height: float) -> None:
    if doc.pdf.get_y() + height > 196:
        doc.pdf.add_page()
    y = doc.pdf.get_y()
    for i, png in enumerate(pngs):
        doc.pdf.image(io.BytesIO(png), x=MARGIN + i * (width + 6), y=y, w=width, h=height)
    doc.pdf.set_y(y + height + 3)


def _widths(doc: _Document, titles: list[str], texts: list[list[str]], numeric: list[bool]) -> list[float]:
    """Column widths (mm) that fit each column's longest cell and title word, shrunk to the page."""
    pdf = doc.pdf
    doc.font(bold=True)  # a title takes at most about two lines, and its longest word fits
    head = [max(max(pdf.get_string_width(w) for w in t.split()), min(pdf.get_string_width(t) / 2 + 2, 28)) + 3
            for t in titles]
    doc.font()
    cells = [max((pdf.get_string_width(row[i]) for row in texts), default=0) + 3 for i in range(len(titles))]
    widths = [max(h, min(c, 70)) for h, c in zip(head, cells)]
    for i, natural in enumerate(cells):  # room left: long names get it first, up to their full width
        widths[i] = max(widths[i], min(natural, widths[i] + BODY_W - sum(widths)))
    over = sum(widths) - BODY_W
    if over > 0:  # take it from the text columns, never below their title
        text_cols = [i for i, n in enumerate(numeric) if not n]
        spare = sum(widths[i] - head[i] for i in text_cols)
        for i in text_cols:
            widths[i] -= over * (widths[i] - head[i]) / spare if spare > 0 else 0
    return widths


def _breakable(pdf: Any, text: str, width: float, fonts: FontPlan) -> str:
    """`text`, with break opportunities after -, /, _, . and ] in each word wider than `width` (a name
    is never cut inside a word, and one that fits keeps its exact characters)."""
    if ord(ZWSP) not in fonts.covered or pdf.get_string_width(text) <= width - 3:
        return text
    return " ".join("".join(ch + ZWSP if ch in _BREAK_AFTER else ch for ch in word)
                    if pdf.get_string_width(word) > width - 3 else word for word in text.split(" "))


def _grid(doc: _Document, titles: list[str], texts: list[list[str]], numeric: list[bool]) -> None:
    """A table: bold shaded titles (repeated on each page), numbers right-aligned, text left."""
    widths = _widths(doc, titles, texts, numeric)
    doc.font()
    align = tuple("RIGHT" if n else "LEFT" for n in numeric)
    with doc.pdf.table(col_widths=widths, width=sum(widths), align="LEFT", text_align=align, line_height=4.6,
                       first_row_as_headings=True, repeat_headings=1, borders_layout="HORIZONTAL_LINES",
                       headings_style=_heading_style()) as grid:
        head = grid.row()
        for title in titles:
            head.cell(title)
        for row_texts in texts:
            line = grid.row()
            for text, width in zip(row_texts, widths):
                line.cell(_breakable(doc.pdf, text, width, doc.fonts))


def _table(doc: _Document, table: Table, group_by: list[str]) -> None:
    doc.heading(table.title)
    if not table.rows:
        doc.line("No requests in this period.", grey=True)
        return
    chosen = _printed(table, group_by)
    cells = _Cells(table, doc.fonts)
    texts = [[cells.text(i, table.columns[i], row[i]) for i in chosen] for row in table.rows[:MAX_PDF_ROWS]]
    _grid(doc, [doc.fonts.text(table.columns[i].title) for i in chosen], texts,
          [table.columns[i].kind not in ("text", "time") for i in chosen])
    hidden = len(table.rows) - MAX_PDF_ROWS
    note = table.note + (f" {numbers.integer(hidden)} more rows in the CSV and XLSX exports." if hidden > 0 else "")
    if note.strip():
        doc.line(note.strip(), size=7, grey=True, height=4)


def _heading_style() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(221, 228, 238))


def _exact(value: Cell) -> str:
    return numbers.exact_money(int(str(value))) if value is not None else "unpriced"


def _appendix(doc: _Document, report: Report) -> None:
    """The money of the summary tables with every significant decimal."""
    if doc.pdf.get_y() > 110:
        doc.pdf.add_page()
    else:
        doc.pdf.ln(6)
    doc.line("Exact figures (USD)", size=12, bold=True, height=7)
    doc.line("The tables above round money to the cent for reading; these are the exact sums of the ledger's "
             "amounts (10^-12 USD).", grey=True)
    for table in report.tables:
        if table.name not in APPENDIX or not table.rows:
            continue
        doc.heading(table.title)
        cells = _Cells(table, doc.fonts)
        if table.name in ("totals", "previous"):  # one row: its money columns, one per line
            row = table.rows[0]
            texts = [[c.title.replace(" (USD)", ""), _exact(row[i])] for i, c in enumerate(table.columns)
                     if c.kind == "usd"]
            _grid(doc, ["Figure", "Exact (USD)"], texts, [False, True])
            continue
        keys = [i for i, c in enumerate(table.columns) if c.kind in ("text", "time") and "exactness" not in c.key]
        money = [i for i, c in enumerate(table.columns) if c.key in EXACT_COLUMNS]
        texts = [[cells.text(i, table.columns[i], row[i]) for i in keys] + [_exact(row[i]) for i in money]
                 for row in table.rows[:MAX_PDF_ROWS]]
        _grid(doc, [doc.fonts.text(table.columns[i].title) for i in keys + money], texts,
              [False] * len(keys) + [True] * len(money))


def report_pdf(report: Report, generated_ns: int | None = None) -> bytes:
    """The PDF's bytes (`generated_ns`: the time the footer names; default now)."""
    fonts = plan(_texts(report))
    doc = _Document(report, fonts, generated_ns if generated_ns is not None else time.time_ns())
    _summary(doc, report)
    _charts(doc, report)
    for table in report.tables:
        if table.name != "heatmap":
            _table(doc, table, report.group_by)
    _appendix(doc, report)
    return bytes(doc.pdf.output())

