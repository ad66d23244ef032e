"""PDF rendering of a `Report`: title, period, filters, tables and matplotlib charts (Agg backend).

Laid out with fpdf2 on landscape A4. Money is printed exactly (every significant decimal of the
10^-12 USD sum, at least two); wide tables show their key columns (the XLSX and CSV carry all).
"""

from __future__ import annotations

import io
from decimal import Decimal

from genai_meter.money import from_pico
from genai_meter.reports.render.tables import Cell, Column, Report, Table, cell_text
from genai_meter.reports.service.ranges import iso

MAX_PDF_ROWS = 60  # rows per table printed; the rest are counted in a note
_PREFERRED = ("calls", "failures", "tokens_in", "tokens_out", "tokens_total", "tokens", "cost_usd", "share_of_cost",
              "previous_cost_usd", "change_usd", "change_pct", "hour", "day_of_week", "comparison", "token_class",
              "provider", "model", "start")
MAX_COLUMNS = 9


def pdf_money(pico: int) -> str:
    """USD text with every significant decimal (at least two): exact."""
    text = f"{from_pico(pico):f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _cell(column: Column, value: Cell) -> str:
    if value is None:
        return ""
    if column.kind == "usd":
        return pdf_money(int(value))
    if column.kind == "ratio":
        return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))} %"
    if column.kind == "time":
        return iso(int(value))[:16].replace("T", " ")
    return cell_text(column.kind, value)


def _columns(table: Table, group_by: list[str]) -> list[int]:
    keys = [c.key for c in table.columns]
    chosen = [i for i, k in enumerate(keys) if k in group_by and table.columns[i].kind == "text"]
    for want in _PREFERRED:
        if want in keys and keys.index(want) not in chosen:
            chosen.append(keys.index(want))
    if not chosen:
        chosen = list(range(len(keys)))
    return sorted(chosen[:MAX_COLUMNS])


def _chart_png(table: Table) -> bytes | None:
    spec = table.chart
    if spec is None or not table.rows:
        return None
    label_i = table.column_index(spec.label)
    rows = table.rows[:40] if spec.kind != "line" else table.rows[:2000]
    labels = [_cell(table.columns[label_i], r[label_i])[:20] for r in rows]
    series = [_numbers(table, key, rows) for key in spec.values]
    values = series[len(series) // 2]
    # matplotlib takes a second or more to import: loaded on the first PDF, not with the CLI
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    if spec.kind == "line":
        if len(series) == 3:
            ax.fill_between(range(len(values)), series[0], series[2], color="#90cdf4", alpha=0.6)
        ax.plot(range(len(values)), values, color="#2b6cb0", marker="o" if len(values) < 40 else None)
        step = max(1, len(labels) // 8)
        ax.set_xticks(range(0, len(labels), step), [labels[i] for i in range(0, len(labels), step)], rotation=20,
                      fontsize=7)
    elif spec.kind == "pie" and sum(values) > 0:
        whole = sum(values)
        wedges, _ = ax.pie(values, labels=[lab if v / whole >= 0.04 else "" for lab, v in zip(labels, values)],
                           textprops={"fontsize": 7}, startangle=90, counterclock=False)
        ax.legend(wedges, [f"{lab} ({v / whole:.1%})" for lab, v in zip(labels, values)], fontsize=7,
                  loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        ax.axis("equal")
    else:
        ax.bar(range(len(values)), values, color="#2b6cb0")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_title(spec.title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def _numbers(table: Table, key: str, rows: list[list[Cell]]) -> list[float]:
    """A column as floats for plotting (money in USD)."""
    i = table.column_index(key)
    if table.columns[i].kind == "usd":
        return [float(from_pico(int(r[i] or 0))) for r in rows]
    return [float(r[i] or 0) for r in rows]


def _latin(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def report_pdf(report: Report) -> bytes:
    """The PDF's bytes."""
    from fpdf import FPDF  # loaded on the first PDF, like matplotlib

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin(f"genai-meter: {report.title}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    filters = "; ".join(f"{k}={','.join(v)}" for k, v in sorted(report.filters.items())) or "none"
    for line in (f"Period: {iso(report.start_ns)} to {iso(report.end_ns)}", f"Filters: {filters}",
                 f"Group by: {', '.join(report.group_by) or 'none'}",
                 f"Coverage: first call {report.coverage.get('first_call')}, raw calls since "
                 f"{report.coverage.get('raw_since')}",
                 f"Requests: {report.summary.get('calls')}    Total cost (USD): "
                 f"{pdf_money(round(Decimal(str(report.summary.get('cost_usd', '0'))).scaleb(12)))}"):
        pdf.multi_cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    for table in report.tables:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin(table.title), new_x="LMARGIN", new_y="NEXT")
        chosen = _columns(table, report.group_by)
        pdf.set_font("Helvetica", "", 8)
        with pdf.table(text_align="LEFT", first_row_as_headings=True, line_height=5) as grid:
            head = grid.row()
            for i in chosen:
                head.cell(_latin(table.columns[i].title))
            for row in table.rows[:MAX_PDF_ROWS]:
                cells = grid.row()
                for i in chosen:
                    cells.cell(_latin(_cell(table.columns[i], row[i])))
        hidden = len(table.rows) - MAX_PDF_ROWS
        note = table.note + (f" {hidden} more rows in the CSV and XLSX exports." if hidden > 0 else "")
        if note.strip():
            pdf.set_font("Helvetica", "I", 8)
            pdf.multi_cell(0, 5, _latin(note.strip()), new_x="LMARGIN", new_y="NEXT")
        png = _chart_png(table)
        if png is not None:
            if pdf.get_y() > 120:
                pdf.add_page()
            pdf.image(io.BytesIO(png), w=230)
    return bytes(pdf.output())
