"""One group commit of the SQLite ledger: the transaction that stores a batch of insert parameters.

`store(conn, dicts, params, look_up=...)` runs one BEGIN IMMEDIATE transaction and returns one
new/duplicate flag per call; the caller commits nothing else on the connection meanwhile and rolls
back on an exception. In that transaction, in order:

1. the marks in `meta`: the dictionary generation, the newest prune cutoff (`raw_since_ns`) and the
   hourly rollup watermark W, in one statement;
2. the dictionary ids: the generation moved (`ledger forget` deleted label sets) -> `Dictionaries`
   drops its caches; from then on each batch's ids not known to exist are looked up, and a call that
   names a deleted id gets the id its label set (or price) has now, a new one if need be;
3. the bounds no insert would catch (`row_checks`: duration, sample weight): `OutOfBounds`;
4. the identities: with `look_up`, the keys stored before; and the keys of calls that end before the
   newest prune cutoff are looked up among the pruned identities (`pruned_calls`), so a call pruned and
   sent again is answered False; calls after the cutoff (live traffic) pay nothing for it;
5. the insert (time order); the calls before W (late ones) held in `late_calls` for a grouped roll-up
   later (`sqlite_late`: readers add them to the rollups meanwhile); COMMIT.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter

from genai_meter.ledger.model import LedgerRowRejected
from genai_meter.ledger.row_checks import MAX_DURATION_US, MAX_WEIGHT_MICRO, OutOfBounds
from genai_meter.ledger.sqlite_late import hold
from genai_meter.ledger.sqlite_params import (
    CALL_COLUMNS,
    END,
    INSERT_CALL,
    LABELSET,
    PRICE,
    UNITS,
    Dictionaries,
    Params,
    labelset_id,
    price_id,
)
from genai_meter.ledger.sqlite_schema import GENERATION, HOUR_MARK
from genai_meter.ledger.sqlite_units import store_units
from genai_meter.ledger.units import units_problem

LOOKUP_CHUNK = 400  # (end time, trace id, span id) keys per lookup statement (3 variables each)
RAW_SINCE = "raw_since_ns"  # meta: the newest prune cutoff (raw calls before it were pruned)
_MARKS = ("SELECT (SELECT value FROM meta WHERE key = ?), (SELECT value FROM meta WHERE key = ?), "
          "(SELECT value FROM meta WHERE key = ?)")

_END, _LABELSET, _PRICE = itemgetter(END), itemgetter(LABELSET), itemgetter(PRICE)
_DURATION = itemgetter(CALL_COLUMNS.index("duration_us"))
_WEIGHT = itemgetter(CALL_COLUMNS.index("weight_micro"))
Key = tuple[int, bytes, bytes]


def existing_keys(conn: sqlite3.Connection, keys: Sequence[Key], table: str = "calls") -> set[Key]:
    """Which of `keys` (end time, trace id, span id) `table` holds (primary-key searches): `calls`,
    or `pruned_calls` (the identities of pruned calls)."""
    found: set[Key] = set()
    for i in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[i:i + LOOKUP_CHUNK]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        params = [part for end, trace, span in chunk for part in (end, bytearray(trace), bytearray(span))]
        found.update((end, bytes(trace), bytes(span)) for end, trace, span in conn.execute(
            f"SELECT c.end_ns, c.trace_id, c.span_id FROM (VALUES {values}) AS v JOIN {table} AS c "
            "ON c.end_ns = v.column1 AND c.trace_id = v.column2 AND c.span_id = v.column3", params).fetchall())
    return found


def _current_ids(conn: sqlite3.Connection, dicts: Dictionaries, generation: int, params: list[Params]) -> list[Params]:
    """`params` with every label-set and price id that no longer exists replaced by the id its label set
    (price) has now, stored anew when need be (in the caller's transaction)."""
    dead_sets, dead_prices = dicts.confirm(conn, generation, set(map(_LABELSET, params)), set(map(_PRICE, params)))
    if not dead_sets and not dead_prices:
        return params
    from_id = {}
    for ls in dead_sets:
        key = dicts.labelset_keys.get(ls)
        if key is None:
            raise LedgerRowRejected(f"label set id {ls} does not exist in the ledger")
        from_id[ls] = labelset_id(conn, *key)
    prices = {}
    for pid in dead_prices:
        price = dicts.price_keys.get(pid)
        if price is None:
            raise LedgerRowRejected(f"price id {pid} does not exist in the ledger")
        prices[pid] = price_id(conn, price)
    return [p if p[LABELSET] not in from_id and p[PRICE] not in prices else
            (*p[:LABELSET], from_id.get(p[LABELSET], p[LABELSET]), *p[LABELSET + 1:PRICE],
             prices.get(p[PRICE], p[PRICE]), *p[PRICE + 1:]) for p in params]


def store(conn: sqlite3.Connection, dicts: Dictionaries, params: list[Params], *, look_up: bool) -> list[bool]:
    """One transaction: insert the new calls, add the late ones' rollups, commit; the new/duplicate flags
    (module docstring). Without `look_up` every call not pruned before is inserted: a key stored before,
    or twice in the batch, fails the insert on the primary key with IntegrityError (the caller rolls back
    and comes again with `look_up`, which looks the keys up first and inserts only the first of each new
    key). Other errors: the caller rolls back (see sqlite_writer for which are a call's fault)."""
    conn.execute("BEGIN IMMEDIATE")
    generation_text, raw_since_text, sealed_text = conn.execute(_MARKS, (GENERATION, RAW_SINCE, HOUR_MARK)).fetchone()
    generation = dicts.sync(conn, int(generation_text or 0))
    if dicts.epoch:  # a dictionary row was deleted while this writer ran: its ids may be gone
        params = _current_ids(conn, dicts, generation, params)
    if params and (max(map(_DURATION, params)) > MAX_DURATION_US or max(map(_WEIGHT, params)) > MAX_WEIGHT_MICRO):
        raise OutOfBounds("a call's duration or sample weight is above its bound")
    known: set[Key] = set()
    keys: list[Key] = []
    if look_up:
        keys = [(p[0], bytes(p[1]), bytes(p[2])) for p in params]
        known = existing_keys(conn, keys)
    raw_since = int(raw_since_text or 0)
    if raw_since and params and min(map(_END, params)) < raw_since:  # re-sent calls a prune removed: stored before
        keys = keys or [(p[0], bytes(p[1]), bytes(p[2])) for p in params]
        known |= existing_keys(conn, [k for k in keys if k[0] < raw_since], "pruned_calls")
    if keys:
        flags, fresh = [], []
        for p, key in zip(params, keys):
            new = key not in known
            flags.append(new)
            if new:
                known.add(key)
                fresh.append(p)
    else:
        flags, fresh = [True] * len(params), params
    if fresh:
        fresh = sorted(fresh, key=_END)  # time order: inserts append
        with_units = [p for p in fresh if len(p) > UNITS]
        if with_units:  # the calls' own columns to `calls`, their units to `call_units`
            problem = next(filter(None, (units_problem(p[UNITS]) for p in with_units)), None)
            if problem:
                raise OutOfBounds(problem)
            fresh = [p[:UNITS] if len(p) > UNITS else p for p in fresh]
        conn.executemany(INSERT_CALL, fresh)  # IntegrityError: a key stored before (or twice in the batch)
        late = bisect_left(fresh, int(sealed_text or 0), key=_END)  # these end before the sealed hours
        if late:
            hold(conn, [(p[0], p[1], p[2]) for p in fresh[:late]])
        if with_units:
            store_units(conn, [(p[0], p[1], p[2], p[UNITS]) for p in with_units])
    conn.execute("COMMIT")
    return flags
