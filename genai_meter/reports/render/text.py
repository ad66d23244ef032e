"""JSON and CSV renderings of a `Report` (decimals as strings, money exact to 10^-12 USD).

Every CSV the service writes goes through `csv_line` / `csv_lines`, so every cell passes
`ledger.csvsafe.csv_cell`: a cell a spreadsheet would read as a formula gets a leading single quote
(OWASP's rule against CSV injection). Quoting follows RFC 4180.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from genai_meter.ledger import deadline
from genai_meter.ledger.csvsafe import csv_cell
from genai_meter.reports.render.tables import Cell, Column, Kind, Report, Table, cell_text
from genai_meter.reports.service.params import ParamError
from genai_meter.reports.service.ranges import iso

CSV_PAGE = 1000  # rows formatted per chunk of a CSV answer


def json_cell(column: Column, value: Cell) -> str | int | None:
    """A cell for JSON: ints stay numbers, money, decimals and times become strings."""
    if value is None:
        return None
    if column.kind == "int":
        return int(value)
    return cell_text(column.kind, value)


def table_json(table: Table) -> dict[str, object]:
    return {
        "title": table.title,
        "columns": [{"key": c.key, "title": c.title, "type": c.kind} for c in table.columns],
        "rows": [{c.key: json_cell(c, v) for c, v in zip(table.columns, row)} for row in deadline.checked(table.rows)],
        "note": table.note,
        "remainder": None if table.remainder is None else {"groups": table.remainder.groups,
                                                            "limit": table.remainder.limit},
    }


def report_json(report: Report) -> dict[str, object]:
    """The JSON answer of a report: resolved window, filters, coverage, summary head and every table."""
    return {
        "report": report.kind,
        "title": report.title,
        "from": iso(report.start_ns),
        "to": iso(report.end_ns),
        "filters": report.filters,
        "group_by": report.group_by,
        "coverage": report.coverage,
        "summary": report.summary,
        "tables": {t.name: table_json(t) for t in report.tables},
    }


def usd12(pico: int) -> str:
    """The same text as `money.usd_text(pico)` (12 decimals), from the integer's digits (hot path of exports)."""
    digits = str(abs(pico)).zfill(13)
    return f"{'-' if pico < 0 else ''}{digits[:-12]}.{digits[-12:]}"


BOM = "\ufeff"  # UTF-8 byte order mark: Excel on Windows reads the file as UTF-8 after it


def csv_lines(rows: Iterable[Iterable[str]]) -> str:
    """Many CSV lines in one string (cells through `csv_cell`, RFC 4180 quoting, \\r\\n)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def csv_line(values: Iterable[str]) -> str:
    """One CSV line (cells through `csv_cell`, RFC 4180 quoting, \\r\\n)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(v) for v in values])
    return buffer.getvalue()


def choose_table(report: Report, section: str) -> Table:
    """The table `section` names (default: the report's primary table); `ParamError` naming `section`."""
    name = section or report.primary
    table = report.table(name)
    if table is None:
        raise ParamError(f"section: {section!r} is not in this report; allowed: "
                         + ", ".join([*(t.name for t in report.tables), *report.omitted]), "section")
    return table


def _csv_text(kind: Kind) -> Callable[[Cell], str]:
    """The CSV text of a cell of `kind`: `cell_text`, through `csv_cell` for text (numbers, money and
    times cannot start a formula), money by integer arithmetic."""
    if kind == "text":
        return lambda v: "" if v is None else csv_cell(str(v))
    if kind == "usd":
        return lambda v: "" if v is None else usd12(int(v))
    if kind == "int":
        return lambda v: "" if v is None else str(v)
    if kind in ("decimal", "ratio"):
        return lambda v: "" if v is None else f"{v:f}"
    return lambda v: cell_text(kind, v)


_QUOTED = re.compile(r'[,"\r\n]')  # a cell csv.writer quotes (QUOTE_MINIMAL, RFC 4180)


def table_csv(table: Table) -> Iterator[str]:
    """The table as CSV lines: a header of column keys, then one line per row (streamed from `stream`
    when the table has one: memory holds one page of rows). The lines are `csv_lines`' (a test compares):
    a row whose text cells need no quoting is joined as is (numbers never do), any other through csv."""
    yield csv_line(c.key for c in table.columns)
    rows = deadline.checked(table.stream() if table.stream is not None else iter(table.rows))
    texts = [_csv_text(c.kind) for c in table.columns]
    free = [i for i, c in enumerate(table.columns) if c.kind in ("text", "time")]
    while page := list(islice(rows, CSV_PAGE)):
        lines = []
        for row in page:
            cells = [text(v) for text, v in zip(texts, row)]
            if len(cells) > 1 and not any(_QUOTED.search(cells[i]) for i in free):
                lines.append(",".join(cells) + "\r\n")
            else:
                lines.append(_csv_one(cells))
        yield "".join(lines)


def _csv_one(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


__all__ = ["BOM", "choose_table", "csv_cell", "csv_line", "csv_lines", "json_cell", "report_json", "table_csv",
           "table_json", "usd12"]
