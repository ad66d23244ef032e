"""The per-call CSV (`/api/v1/events?format=csv`, the detailed report's `rows=calls`): every call of a range as
one line, formatted from the ledger's raw columns (`LedgerReader.call_records`) at the ledger's speed.

What repeats is rendered once: the cells of a label set (base fields, dimensions, price context) and of a price
entry, already neutralised by `csv_cell` and quoted, are kept per id while the ledger's `version` holds (ids
never change meaning within it). The label sets a page brings are read in one call (`CallRecords.label_rows`)
and rendered together: in C, the dimensions' JSON read in place (`_flat_json.c`), a text json.loads would read
otherwise left to the reference. Per call only numbers are formatted (time, hex ids, tokens, money as
`usd12`, the duration), the conversation and user cells are checked (and neutralised and quoted when they need
it), and the billed units are rendered for the calls that have any. Cells and quoting are those of
`csv_line` (RFC 4180, `\\r\\n`); the bytes equal those of formatting each `CallRow` cell by cell
(tests/reports/render/test_call_csv.py compares them for every kind of call).

`format_rows_pure` and `label_rows_pure` are the references; `_call_csv` (C, optional) formats the same bytes
and is used when built and not switched off (`GENAI_METER_ACCELERATOR=off`). A page the C code cannot take (a
value of a type or size the ledger never stores) is formatted by the reference.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from genai_meter.contract import UNMETERED_CACHE_UNKNOWN, UNMETERED_NO_USAGE
from genai_meter.ledger.csvsafe import csv_cell
from genai_meter.ledger.model import CallKey, CallRecords
from genai_meter.ledger.units import BATCH_VALUE, CONTEXT_FIELDS, UnitSums
from genai_meter.reports.render.tables import COST_CLASSES, TOKEN_CLASSES
from genai_meter.reports.render.text import usd12

try:
    from genai_meter.reports.render import _call_csv
except ImportError:  # not built (no C compiler at install): the pure path only
    _call_csv = None  # type: ignore[assignment]

ACCELERATOR_ENV = "GENAI_METER_ACCELERATOR"  # "off": the pure path only (read once, at import)
ACCELERATED: bool = _call_csv is not None and os.environ.get(ACCELERATOR_ENV, "").strip().lower() != "off"

FIXED = ("service", "environment", "provider", "model", "request_model", "operation", "status", "error_type",
         "conversation", "user")
LABEL_CELLS = 8  # the label set's fields among FIXED (conversation and user are the call's own)
_QUOTED = re.compile(r'[,"\r\n]')
CACHED_LABEL_SETS = 131_072  # rendered label sets kept between pages (memory stays bounded)
_SECONDS_CACHED = 100_000  # time texts kept per second (the pure path)
LabelCells = tuple[str, str, str]  # (the 8 label cells, each with a comma after; "," + dimension cells; context)
LabelRow = tuple[Any, ...]  # a stored label set: (id, the 8 LABEL_FIELDS values, the dimensions' JSON object)
UnitCells = tuple[str, int, str, bool]  # (units cell, unit cost pico, unpriced-units cell, partly priced)


def call_csv_header(fields: Sequence[str]) -> list[str]:
    """The header of the per-call CSV for a ledger's `fields`."""
    return ["time", "trace_id", "span_id", *FIXED, *csv_dimensions(fields), *[f"tokens_{c}" for c in TOKEN_CLASSES],
            *[f"cost_{c}_usd" for c in COST_CLASSES], "cost_usd", "duration_s", "price_entry", "unpriced", "priced",
            "exactness", "service_tier", "batch", "units", "cost_units_usd", "unpriced_units"]


def csv_dimensions(fields: Sequence[str]) -> list[str]:
    """The configured dimensions among `fields`, in their order (one column each)."""
    return [f for f in fields if f not in FIXED and f not in CONTEXT_FIELDS]


def csv_field(text: str) -> str:
    """One cell as `csv_line` writes it: through `csv_cell`, quoted (quotes doubled) when it holds `,"\\r\\n`."""
    text = csv_cell(text)
    if _QUOTED.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def label_cells(labels: Sequence[str], dims: Mapping[str, str], dimensions: Sequence[str]) -> LabelCells:
    """The rendered cells of a label set: its LABEL_FIELDS values, its configured dimensions, its price context."""
    head = "".join(csv_field(v) + "," for v in labels[:LABEL_CELLS])
    tail = "".join("," + csv_field(dims.get(d, "")) for d in dimensions)
    context = csv_field(dims.get("service_tier", "")) + ("," + ("1" if dims.get("batch") == BATCH_VALUE else "0"))
    return head, tail, context


def unit_cells(units: UnitSums) -> UnitCells:
    """The rendered units of one call: its billed units, their cost, the reasons it is priced only in part."""
    text = ";".join(f"{n}={q}" for n, q in sorted(units.quantity.items()))
    return csv_field(text), units.cost_total_pico, csv_field(";".join(sorted(units.unpriced))), bool(units.partial)


def _exactness(unpriced: int, invalid: str, unmetered: str, partial: bool) -> str:
    if unpriced or invalid or unmetered == UNMETERED_NO_USAGE:
        return "incomplete"
    if partial:
        return "partial"
    return "upper_bound" if unmetered == UNMETERED_CACHE_UNKNOWN else "exact"


def _seconds_text(seconds: int, cache: dict[int, str]) -> str:
    text = cache.get(seconds)
    if text is None:
        if len(cache) >= _SECONDS_CACHED:
            cache.clear()
        text = cache[seconds] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text


def format_rows_pure(rows: Sequence[tuple[Any, ...]], labels: dict[int, LabelCells], prices: dict[int, str],
                     units: Mapping[CallKey, UnitCells], label_miss: Callable[[int], LabelCells],
                     price_miss: Callable[[int], str], field: Callable[[str], str]) -> bytes:
    """The CSV lines of `rows` (RECORD_COLUMNS), UTF-8. `labels` / `prices`: rendered cells by id, filled by
    `label_miss(id)` / `price_miss(id)` for an id not in them; `units`: the rendered units of the calls that
    have any; `field` renders a conversation or user cell (`csv_field`)."""
    out: list[str] = []
    seconds_cache: dict[int, str] = {}
    for (end, trace, span, labelset, conversation, user, duration_us, t0, t1, t2, t3, t4, c0, c1, c2, c3, c4, c5,
         price, unpriced, unmetered, invalid) in rows:
        cells = labels.get(labelset)
        if cells is None:
            cells = labels[labelset] = label_miss(labelset)
        entry = prices.get(price)
        if entry is None:
            entry = prices[price] = price_miss(price)
        seconds, rest = divmod(end, 10**9)
        when = _seconds_text(seconds, seconds_cache) + (f".{rest:09d}".rstrip("0") if rest else "") + "Z"
        unit = units.get((end, trace, span)) if units else None
        units_text, unit_cost, unpriced_units, partial = unit if unit is not None else ("", 0, "", False)
        priced = not (unpriced or invalid)
        if priced:
            money = (f"{usd12(c0)},{usd12(c1)},{usd12(c2)},{usd12(c3)},{usd12(c4)},{usd12(c5)},"
                     f"{usd12(c0 + c1 + c2 + c3 + c4 + c5 + unit_cost)}")
        else:
            money = ",,,,,,"
        out.append(f"{when},{trace.hex()},{span.hex()},{cells[0]}{field(conversation)},{field(user)}{cells[1]},"
                   f"{t0},{t1},{t2},{t3},{t4},{money},{duration_us / 1_000_000:.6f},{entry},"
                   f"{'1' if unpriced else '0'},{'1' if priced else '0'},"
                   f"{_exactness(unpriced, invalid, unmetered, partial)},{cells[2]},{units_text},"
                   f"{usd12(unit_cost) if priced else ''},{unpriced_units}\r\n")
    return "".join(out).encode()


_format_rows: Callable[..., bytes] = _call_csv.format_rows if ACCELERATED and _call_csv is not None \
    else format_rows_pure


def label_row_cells(row: LabelRow, dimensions: Sequence[str]) -> LabelCells:
    """The rendered cells of a stored label-set row (the reference of `_call_csv.label_rows`)."""
    return label_cells(row[1:-1], json.loads(row[-1]), dimensions)


def label_rows_pure(rows: list[LabelRow], dimensions: list[str]) -> dict[int, LabelCells]:
    """The rendered cells of stored label-set rows, by id."""
    return {row[0]: label_row_cells(row, dimensions) for row in rows}


def label_rows_c(rows: list[LabelRow], dimensions: list[str]) -> dict[int, LabelCells]:
    """`label_rows_pure`, the JSON read and the cells rendered in C; a row it leaves (None) by the reference."""
    if _call_csv is not None:
        try:
            cells = _call_csv.label_rows(rows, dimensions, csv_field)
        except (TypeError, ValueError):  # a value of a type the ledger never stores: the reference says what
            pass
        else:
            return {row[0]: c if c is not None else label_row_cells(row, dimensions) for row, c in zip(rows, cells)}
    return label_rows_pure(rows, dimensions)


class CallCsv:
    """Formats the pages of one export (`lines`), keeping the rendered label sets and prices between pages."""

    def __init__(self, fields: Sequence[str], format_rows: Callable[..., bytes] | None = None) -> None:
        self.header = call_csv_header(fields)
        self._dimensions = csv_dimensions(fields)
        self._format = format_rows or _format_rows
        self._render_labels = label_rows_pure if self._format is format_rows_pure else label_rows_c
        self._labels: dict[int, LabelCells] = {}
        self._prices: dict[int, str] = {}
        self._version: object = None

    def lines(self, records: CallRecords) -> bytes:
        """The CSV lines of a page of calls, UTF-8."""
        if records.version != self._version or len(self._labels) > CACHED_LABEL_SETS:
            self._labels.clear()
            self._prices.clear()
            self._version = records.version
        dimensions, render = self._dimensions, self._render_labels
        missing = {row[3] for row in records.rows}.difference(self._labels)
        if missing:  # the page's new label sets, read and rendered together
            self._labels.update(render(records.label_rows(missing), dimensions))

        def label_miss(labelset: int) -> LabelCells:
            return render(records.label_rows({labelset}), dimensions)[labelset]

        def price_miss(price: int) -> str:
            return csv_field(records.price_entry(price))

        units = {key: unit_cells(sums) for key, sums in records.units.items()}
        args = (records.rows, self._labels, self._prices, units, label_miss, price_miss, csv_field)
        if self._format is format_rows_pure:
            return format_rows_pure(*args)
        try:
            return self._format(*args)
        except (TypeError, OverflowError):  # a value the C code does not take: the reference formats the page
            return format_rows_pure(*args)
