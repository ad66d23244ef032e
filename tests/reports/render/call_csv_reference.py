"""The per-call CSV as it was formatted before `render.call_csv`: cell by cell from each `CallRow` of
`LedgerReader.events`, through `csv_lines`. The reference the formatter's bytes are compared with."""

from __future__ import annotations

from collections.abc import Iterator

from genai_meter.ledger.model import CallRow, Filters, LedgerReader
from genai_meter.ledger.units import CONTEXT_FIELDS
from genai_meter.reports.render.exactness import call_exactness, call_priced
from genai_meter.reports.render.tables import COST_CLASSES, TOKEN_CLASSES
from genai_meter.reports.render.text import csv_line, csv_lines, usd12
from genai_meter.reports.service.ranges import iso

_FIXED = ["service", "environment", "provider", "model", "request_model", "operation", "status", "error_type",
          "conversation", "user"]


def call_csv_header(fields: list[str]) -> list[str]:
    dims = [f for f in fields if f not in _FIXED and f not in CONTEXT_FIELDS]
    return ["time", "trace_id", "span_id", *_FIXED, *dims, *[f"tokens_{c}" for c in TOKEN_CLASSES],
            *[f"cost_{c}_usd" for c in COST_CLASSES], "cost_usd", "duration_s", "price_entry", "unpriced", "priced",
            "exactness", "service_tier", "batch", "units", "cost_units_usd", "unpriced_units"]


def call_csv_row(row: CallRow, fields: list[str]) -> list[str]:
    dims = [f for f in fields if f not in _FIXED and f not in CONTEXT_FIELDS]
    fixed = [getattr(row, name) for name in _FIXED]
    priced = call_priced(row)  # an unpriced call's cost cells are blank, never 0
    return [iso(row.end_ns), row.trace_id, row.span_id, *fixed, *[row.dimensions.get(d, "") for d in dims],
            *[str(row.tokens.get(c, 0)) for c in TOKEN_CLASSES],
            *[usd12(row.cost_pico.get(c, 0)) if priced else "" for c in COST_CLASSES],
            usd12(row.cost_total_pico) if priced else "", f"{row.duration_s:.6f}", row.price_entry,
            "1" if row.unpriced else "0", "1" if priced else "0", call_exactness(row), row.service_tier,
            "1" if row.batch else "0", ";".join(f"{n}={q}" for n, q in sorted(row.units.quantity.items())),
            usd12(row.units.cost_total_pico) if priced else "", ";".join(sorted(row.units.unpriced))]


def reference_lines(reader: LedgerReader, filters: Filters, start: int | None, end: int | None,
                    cursor: str = "", page: int = 1000) -> Iterator[str]:
    """The CSV lines of every call in [start, end) from `cursor` on, newest first, as formatted before."""
    fields = list(reader.fields())
    yield csv_line(call_csv_header(fields))
    while True:
        got = reader.events(filters, start_ns=start, end_ns=end, cursor=cursor, limit=page)
        yield csv_lines(call_csv_row(row, fields) for row in got.rows)
        if not got.next_cursor or not got.rows:
            return
        cursor = got.next_cursor


def reference_bytes(reader: LedgerReader, filters: Filters, start: int | None, end: int | None,
                    cursor: str = "") -> bytes:
    return "".join(reference_lines(reader, filters, start, end, cursor)).encode()
