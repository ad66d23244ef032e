"""Activity feed, conversations and dimension values: `/api/v1/events`, `/conversations`, `/dimensions`.

A cursor the ledger cannot use (malformed, or a time beyond 64-bit nanoseconds) is a 400 naming
`cursor`. The events list without a range ends a day after now: a call dated far in the future (a
clock gone wrong before the receiver refused such spans) does not head the feed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TypeVar

from flask import Blueprint, Response, jsonify

from genai_meter.ledger.model import CallRow, Conversation, Filters, LedgerReader
from genai_meter.ledger.units import unit_class
from genai_meter.money import usd_text
from genai_meter.reports.render.call_csv import CallCsv
from genai_meter.reports.render.exactness import call_exactness, call_priced, exactness_of
from genai_meter.reports.render.tables import COST_CLASSES, TOKEN_CLASSES
from genai_meter.reports.render.text import csv_line
from genai_meter.reports.service.api import (
    BOM_PARAM,
    CSV,
    INT,
    JSON,
    NSTR,
    RANGE_PARAMS,
    STR,
    Endpoint,
    arr,
    context,
    obj,
    route,
)
from genai_meter.reports.service.params import NotFound, Param, ParamError
from genai_meter.reports.service.ranges import iso
from genai_meter.reports.service.spool import export_answer

bp = Blueprint("activity_api", __name__, url_prefix="/api/v1")
CURSOR = Param("cursor", "the next_cursor of the previous page", pattern=r"[A-Za-z0-9_=:.,+/-]{1,200}", max_length=200)
EXPORT_PAGE = 5000  # calls per ledger read of the CSV export
FEED_AHEAD_NS = 86400 * 10**9  # the unranged events list ends this long after now
T = TypeVar("T")

CALL = obj({"time": STR, "trace_id": STR, "span_id": STR, "service": STR, "provider": STR, "model": STR,
            "tokens": {"type": "object"}, "cost_usd": NSTR, "cost_by_class_usd": {"type": "object"},
            "priced": {"type": "boolean"}, "exactness": STR})
EVENTS = Endpoint("/events", "/api/v1/events", "events", "Calls newest first, filtered, with cursor paging "
                  "(format=csv streams every call of the window)",
                  RANGE_PARAMS + (CURSOR, Param("limit", "calls per page", kind="integer", minimum=1, maximum=500,
                                                default=50),
                                  Param("format", "json page, or csv of every matching call", enum=("json", "csv"),
                                        default="json"), BOM_PARAM),
                  media=(JSON, CSV), schema=obj({"calls": arr(CALL), "next_cursor": STR}), heavy=False)
CONVERSATION = obj({"conversation": STR, "calls": INT, "tokens": {"type": "object"}, "cost_usd": NSTR,
                    "calls_unpriced": INT, "calls_upper_bound": INT, "exactness": STR,
                    "first_call": STR, "last_call": STR, "duration_s": STR, "services": arr(STR), "models": arr(STR)})
CONVERSATIONS = Endpoint("/conversations", "/api/v1/conversations", "conversations",
                         "Conversations with a call in the window, most recent first",
                         RANGE_PARAMS + (CURSOR, Param("limit", "conversations per page", kind="integer", minimum=1,
                                                       maximum=500, default=50)),
                         schema=obj({"from": STR, "to": STR, "conversations": arr(CONVERSATION), "next_cursor": STR}))
ONE_CONVERSATION = Endpoint("/conversations/<path:conversation_id>", "/api/v1/conversations/{conversation_id}",
                            "conversation", "One conversation's calls, oldest first, with each call's cost arithmetic",
                            (Param("conversation_id", "the conversation id", location="path"),),
                            schema=obj({"conversation": STR, "calls": arr(CALL), "cost_usd": NSTR, "exactness": STR,
                                        "tokens": {"type": "object"}}),
                            statuses=(400, 401, 403, 404, 503, 504))
VALUES = Endpoint("/dimensions/<name>/values", "/api/v1/dimensions/{name}/values", "dimension_values",
                  "Distinct values of a field in the window (for filter pickers)",
                  RANGE_PARAMS + (Param("name", "a field name", location="path"),
                                  Param("limit", "most values", kind="integer", minimum=1, maximum=10000,
                                        default=1000)),
                  schema=obj({"name": STR, "values": arr(STR)}), statuses=(400, 401, 403, 404, 503, 504))


def arithmetic(row: CallRow) -> list[dict[str, object]]:
    """Per class: tokens x USD per million = cost, beside the stored (rounded) cost."""
    lines: list[dict[str, object]] = []
    for cls in TOKEN_CLASSES:
        tokens = row.tokens.get(cls, 0)
        rate = row.unit_prices.get(cls)
        if not tokens and not row.cost_pico.get(cls, 0):
            continue
        exact = Decimal(rate) * tokens / Decimal(1_000_000) if rate is not None else None
        lines.append({"class": cls, "tokens": tokens, "usd_per_million": rate,
                      "formula": f"{tokens} x ${rate} / 1M = ${exact:f}" if exact is not None else "unpriced",
                      "cost_usd": usd_text(row.cost_pico.get(cls, 0)) if call_priced(row) else None})
    if row.cost_pico.get("request", 0):
        lines.append({"class": "request", "tokens": 0, "usd_per_million": None, "formula": "per-request fee",
                      "cost_usd": usd_text(row.cost_pico["request"])})
    return lines


def call_json(row: CallRow) -> dict[str, object]:
    return {
        "time": iso(row.end_ns), "trace_id": row.trace_id, "span_id": row.span_id, "parent_span_id": row.parent_span_id,
        "service": row.service, "environment": row.environment, "provider": row.provider, "model": row.model,
        "request_model": row.request_model, "operation": row.operation, "status": row.status,
        "error_type": row.error_type, "duration_s": f"{row.duration_s:.6f}",
        "ttft_s": f"{row.ttft_s:.6f}" if row.ttft_s is not None else None,
        "tokens": {c: row.tokens.get(c, 0) for c in TOKEN_CLASSES},
        "priced": call_priced(row), "exactness": call_exactness(row),
        "cost_usd": usd_text(row.cost_total_pico) if call_priced(row) else None,
        "cost_by_class_usd": {c: usd_text(row.cost_pico.get(c, 0)) if call_priced(row) else None for c in COST_CLASSES},
        "arithmetic": arithmetic(row), "price_entry": row.price_entry, "price_version": row.price_version,
        "price_source": row.price_source, "unpriced": row.unpriced, "unmetered": row.unmetered,
        "invalid": row.invalid, "conversation": row.conversation, "user": row.user, "dimensions": row.dimensions,
        "service_tier": row.service_tier, "batch": row.batch,
        "units": {name: {"quantity": q, "class": unit_class(name),
                         "cost_usd": usd_text(row.units.cost_pico.get(name, 0)) if call_priced(row) else None}
                  for name, q in sorted(row.units.quantity.items())},
        "unpriced_units": sorted(row.units.unpriced), "estimate": next(iter(row.units.estimates), ""),
    }


def read_from(cursor: str, read: Callable[[], T]) -> T:
    """`read()`, a ledger read starting at `cursor`; a cursor it cannot use is a `ParamError` naming `cursor`."""
    head = cursor.partition(":")[0]
    bad = ParamError(f"cursor: {cursor[:64]!r} is not a cursor of this service (give the next_cursor of the "
                     "previous page)", "cursor")
    if cursor and (not head.isdigit() or int(head) >= 2**63):
        raise bad
    try:
        return read()
    except (ValueError, OverflowError):
        if cursor:
            raise bad from None
        raise


def call_lines(reader: LedgerReader, filters: Filters, start: int | None, end: int | None,
               cursor: str = "") -> Iterator[str | bytes]:
    """CSV lines of every call in [start, end) from `cursor` on, newest first, EXPORT_PAGE calls at a time
    (`LedgerReader.call_records`, formatted by `render.call_csv`)."""
    formatter = CallCsv(reader.fields())
    yield csv_line(formatter.header)
    while True:
        records = reader.call_records(filters, start_ns=start, end_ns=end, cursor=cursor, limit=EXPORT_PAGE)
        yield formatter.lines(records)
        if not records.next_cursor:
            return
        cursor = records.next_cursor


@route(bp, EVENTS)
def events_view() -> Response:
    ctx = context(EVENTS)
    reader = ctx.svc.reader
    start, end = None, ctx.now_ns + FEED_AHEAD_NS
    if ctx.args.text("range") or ctx.args.text("from"):
        window = ctx.window()
        start, end = window.start_ns, window.end_ns
        ctx.require_raw(start)
    cursor = ctx.args.text("cursor")
    if ctx.args.text("format") == "csv":
        lines = call_lines(reader, ctx.filters, start, end, cursor)
        return read_from(cursor, lambda: export_answer(lines, "genai-meter-calls.csv", ctx.args.text("bom") == "1"))
    page = read_from(cursor, lambda: reader.events(ctx.filters, start_ns=start, end_ns=end, cursor=cursor,
                                                   limit=ctx.args.number("limit", 50)))
    return jsonify({"calls": [call_json(r) for r in page.rows], "next_cursor": page.next_cursor})


def conversation_json(c: Conversation) -> dict[str, object]:
    return {"conversation": c.conversation, "calls": c.calls, "tokens": {k: c.tokens.get(k, 0) for k in TOKEN_CLASSES},
            "cost_usd": usd_text(c.cost_pico) if c.calls_unpriced < c.calls else None,
            "calls_unpriced": c.calls_unpriced, "calls_upper_bound": c.calls_upper_bound,
            "exactness": exactness_of(c.calls_unpriced, c.calls_upper_bound),
            "first_call": iso(c.first_ns), "last_call": iso(c.last_ns),
            "duration_s": f"{c.duration_s:.6f}", "services": c.services, "models": c.models}


@route(bp, CONVERSATIONS)
def conversations_view() -> Response:
    ctx = context(CONVERSATIONS)
    window = ctx.window()
    asked = ctx.args.text("cursor")
    items, cursor = read_from(asked, lambda: ctx.svc.reader.conversations(
        window.start_ns, window.end_ns, ctx.filters, limit=ctx.args.number("limit", 50), cursor=asked))
    return jsonify({"from": iso(window.start_ns), "to": iso(window.end_ns),
                    "conversations": [conversation_json(c) for c in items], "next_cursor": cursor})


@route(bp, ONE_CONVERSATION)
def conversation_view(conversation_id: str) -> Response:
    ctx = context(ONE_CONVERSATION)
    if len(conversation_id) > 256:
        raise ParamError("conversation_id: at most 256 characters", "conversation_id")
    rows = ctx.svc.reader.conversation(conversation_id, ctx.filters)
    if not rows:
        raise NotFound(f"conversation {conversation_id[:64]!r} not found", "conversation_id")
    tokens = {c: sum(r.tokens.get(c, 0) for r in rows) for c in TOKEN_CLASSES}
    unpriced = sum(not call_priced(r) for r in rows)
    bounded = sum(r.unmetered != "" for r in rows)
    return jsonify({"conversation": conversation_id, "calls": [call_json(r) for r in rows],
                    "cost_usd": usd_text(sum(r.cost_total_pico for r in rows)) if unpriced < len(rows) else None,
                    "calls_unpriced": unpriced, "calls_upper_bound": bounded,
                    "exactness": exactness_of(unpriced, bounded), "tokens": tokens})


@route(bp, VALUES)
def values_view(name: str) -> Response:
    ctx = context(VALUES)
    fields = ctx.svc.reader.fields()
    if name not in fields:
        raise NotFound(f"name: {name[:40]!r} is not a field; allowed: {', '.join(fields)}", "name")
    window = ctx.window()
    values = ctx.svc.reader.dimension_values(name, window.start_ns, window.end_ns, ctx.filters,
                                             limit=ctx.args.number("limit", 1000))
    return jsonify({"name": name, "values": values, "from": iso(window.start_ns), "to": iso(window.end_ns)})


__all__ = ["bp", "NSTR"]
