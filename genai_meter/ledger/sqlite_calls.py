"""The SQLite ledger's per-call reads: the calls of the feed (and of one conversation) with their label
set, price and billed units, and the conversations' sums. Label sets are read by join, never copied."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from genai_meter.ledger import sqlite_units
from genai_meter.ledger.model import CallRow, Conversation
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, TOKEN_CLASSES
from genai_meter.ledger.sqlite_records import call_range
from genai_meter.ledger.sqlite_schema import MASK32
from genai_meter.ledger.units import split_context

Where = tuple[list[str], list[object]]  # SQL conditions and their parameters
CALL_SELECT = ("SELECT c.end_ns, c.trace_id, c.span_id, c.parent_span_id, c.labelset, c.conversation, c.user, "
               "c.duration_us, c.ttft_us, c.t_input, c.t_cache_read, c.t_cache_write, c.t_output, c.t_reasoning, "
               "c.c_input, c.c_cache_read, c.c_cache_write, c.c_output, c.c_reasoning, c.c_request, c.unpriced, "
               "c.unmetered, c.invalid, c.weight_micro, p.source, p.version, p.entry, p.unit_prices, "
               f"{', '.join('l.' + f for f in LABEL_FIELDS)}, l.dims "
               "FROM calls c JOIN prices p ON p.id = c.price JOIN labelsets l ON l.id = c.labelset")


def read_calls(conn: sqlite3.Connection, where: Where, start_ns: int | None, end_ns: int | None,
               before: tuple[int, bytes, bytes] | None, limit: int, conversation: str | None,
               dims_of: Callable[[str], dict[str, str]]) -> list[CallRow]:
    """Up to `limit` calls matching `where` (on alias c.) in [start, end), newest first before `before`; or the
    calls of `conversation`, oldest first."""
    conds, params = call_range(where, "c.", start_ns, end_ns, before)
    order = "DESC"
    if conversation is not None:
        conds.append("c.conversation = ? AND c.conversation <> ''")
        params.append(conversation)
        order = "ASC"
    sql = (f"{CALL_SELECT} {'WHERE ' + ' AND '.join(conds) if conds else ''} "
           f"ORDER BY c.end_ns {order}, c.trace_id {order}, c.span_id {order} LIMIT ?")
    rows = conn.execute(sql, [*params, limit]).fetchall()
    return sqlite_units.with_units(conn, [_call_row(r, dims_of) for r in rows])


def _call_row(r: tuple[Any, ...], dims_of: Callable[[str], dict[str, str]]) -> CallRow:
    labels, (dims, tier, batch) = r[28:36], split_context(dims_of(r[36]))
    return CallRow(
        end_ns=r[0], trace_id=r[1].hex(), span_id=r[2].hex(), parent_span_id=r[3].hex(),
        service=labels[0], environment=labels[1], provider=labels[2], model=labels[3], request_model=labels[4],
        operation=labels[5], status=labels[6], error_type=labels[7], duration_s=r[7] / 1_000_000,
        ttft_s=None if r[8] is None else r[8] / 1_000_000, tokens=dict(zip(TOKEN_CLASSES, r[9:14])),
        cost_pico=dict(zip(COST_CLASSES, r[14:20])), unit_prices=json.loads(r[27]), price_entry=r[26],
        price_version=r[25], price_source=r[24], unpriced=bool(r[20]), unmetered=r[21], invalid=r[22],
        conversation=r[5], user=r[6], dimensions=dims, sample_weight=r[23] / 1_000_000, service_tier=tier,
        batch=batch)


def read_conversations(conn: sqlite3.Connection, where: Where, where_c: Where, start_ns: int, end_ns: int,
                       before: tuple[int, str] | None, limit: int,
                       value: Callable[[int, str], str]) -> list[Conversation]:
    """The conversations with a call in [start, end) matching `where` (`where_c`: the same on alias c.), the
    most recent first, before `before` (last call, id); `value(labelset, field)` names their services and
    models."""
    conds, params = where
    total = " + ".join(f"c_{c}" for c in COST_CLASSES)
    having = "HAVING (MAX(end_ns), conversation) < (?, ?)" if before else ""
    sql = (f"SELECT conversation, COUNT(*), {', '.join(f'SUM(t_{c})' for c in TOKEN_CLASSES)}, "
           f"SUM(({total}) >> 32), SUM(({total}) & {MASK32}), MIN(end_ns - duration_us * 1000), MAX(end_ns), "
           f"SUM(duration_us), group_concat(DISTINCT labelset), SUM(unpriced) + SUM(invalid <> ''), "
           f"SUM(unmetered <> '') FROM calls "
           f"WHERE end_ns >= ? AND end_ns < ? AND conversation <> '' {''.join(' AND ' + c for c in conds)} "
           f"GROUP BY conversation {having} ORDER BY MAX(end_ns) DESC, conversation DESC LIMIT ?")
    rows = conn.execute(sql, [start_ns, end_ns, *params, *(before or ()), limit]).fetchall()
    out = []
    for r in rows:
        ids = [int(x) for x in str(r[12]).split(",")]
        out.append(Conversation(
            conversation=r[0], calls=r[1], tokens=dict(zip(TOKEN_CLASSES, r[2:7])), cost_pico=(r[7] << 32) + r[8],
            first_ns=r[9], last_ns=r[10], duration_s=r[11] / 1_000_000,
            services=sorted({value(i, "service") for i in ids}),
            models=sorted({value(i, "model") for i in ids}), calls_unpriced=r[13], calls_upper_bound=r[14]))
    return sqlite_units.with_unit_costs(conn, out, start_ns, end_ns, *where_c)
