"""A call as the SQLite ledger inserts it: the parameter tuple of `INSERT_CALL`, and the dictionary
ids (label sets, prices) it references.

Parameters are built in the submitting thread, so the writer thread only inserts. `Dictionaries`
resolves ids through its own connection: a new label set or price is stored and committed in a short
transaction of its own before its id is handed out (a call row never references an uncommitted id,
and concurrent writers, in this process or others, agree on ids through the tables' UNIQUE
constraints). Known ids come from memory.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.rows import LABEL_FIELDS, Price, Row

CALL_COLUMNS = ("end_ns", "trace_id", "span_id", "parent_span_id", "labelset", "conversation", "user", "ttft_us",
                "price", "unmetered", "invalid", "cache_write_1h", "t_input", "t_cache_read", "t_cache_write",
                "t_output", "t_reasoning", "c_input", "c_cache_read", "c_cache_write", "c_output", "c_reasoning",
                "c_request", "list_cost", "duration_us", "weight_micro", "unpriced")
# ttft_us is bound as -1 for "none" (NULL): binding None takes sqlite3's slow adaptation path
INSERT_CALL = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * 7)}, NULLIF(?, -1), "
               f"{', '.join('?' * 19)})")
Params = tuple[Any, ...]  # one call's INSERT_CALL parameters
END, LABELSET = 0, 4  # the end time's and the label set id's positions
NO_TTFT = -1

LabelSet = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]  # (LABEL_FIELDS values, sorted dimensions)
_LABELSET_WHERE = " AND ".join(f"{f} = ?" for f in (*LABEL_FIELDS, "dims"))


def labelset_id(conn: sqlite3.Connection, labels: tuple[str, ...], dims: tuple[tuple[str, str], ...]) -> int:
    """The id of a label set, added when new; inside the caller's write transaction."""
    dims_json = json.dumps(dict(dims), sort_keys=True, separators=(",", ":"))
    row = conn.execute(f"SELECT id FROM labelsets WHERE {_LABELSET_WHERE}", (*labels, dims_json)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute(f"INSERT INTO labelsets ({', '.join(LABEL_FIELDS)}, dims) VALUES "
                       f"({', '.join('?' * (len(LABEL_FIELDS) + 1))})", (*labels, dims_json))
    return int(cur.lastrowid or 0)


def price_id(conn: sqlite3.Connection, price: Price) -> int:
    """The id of a price entry, added when new; inside the caller's write transaction."""
    row = conn.execute("SELECT id FROM prices WHERE source = ? AND version = ? AND entry = ? AND unit_prices = ?",
                       price).fetchone()
    if row is not None:
        return int(row[0])
    return int(conn.execute("INSERT INTO prices (source, version, entry, unit_prices) VALUES (?, ?, ?, ?)",
                            price).lastrowid or 0)


class Dictionaries:
    """Label-set and price ids of one ledger file, cached; thread-safe. `failing[id]` is 1 when the
    label set's status is not ok (the rollups' error count)."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._lock = threading.Lock()
        self.labelsets: dict[LabelSet, int] = {}
        self.prices: dict[Price, int] = {}
        self.failing: dict[int, int] = {}

    def resolve(self, labelsets: Iterable[LabelSet], prices: Iterable[Price]) -> None:
        """Make sure every given label set and price has an id in memory: the missing ones in one
        committed transaction. LedgerUnavailable when the file cannot take them now."""
        with self._lock:
            new_sets = [s for s in labelsets if s not in self.labelsets]
            new_prices = [p for p in prices if p not in self.prices]
            if not new_sets and not new_prices:
                return
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    sets = {s: labelset_id(conn, *s) for s in new_sets}
                    found = {p: price_id(conn, p) for p in new_prices}
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise LedgerUnavailable(f"the ledger cannot store new label sets now: {exc}") from None
            for (labels, _), ls in sets.items():
                self.failing[ls] = int(labels[LABEL_FIELDS.index("status")] != "ok")
            self.labelsets.update(sets)
            self.prices.update(found)

    def ids(self, labelset: LabelSet, price: Price) -> tuple[int, int]:
        """(label set id, price id), resolved when new."""
        ls, pid = self.labelsets.get(labelset), self.prices.get(price)
        if ls is None or pid is None:
            self.resolve((labelset,), (price,))
            ls, pid = self.labelsets[labelset], self.prices[price]
        return ls, pid

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def params_of(rows: Sequence[Row], dicts: Dictionaries) -> list[Params]:
    """The INSERT_CALL parameters of `rows`, in their order, built column-wise (`zip`, `map`: C speed);
    ids resolved once per distinct label set and price. Bytes go in as bytearray: bytes parameters take
    sqlite3's slow adaptation path, and so does None (ttft_us is bound as NO_TTFT)."""
    if not rows:
        return []
    (ends, traces, spans, parents, labels, dims, conversations, users, durations, ttfts, tokens, costs, list_costs,
     prices, unpriced, unmetered, invalid, weights, cache_1h) = zip(*rows)
    sets = dict.fromkeys(zip(labels, dims))
    ids = dict.fromkeys(prices)
    dicts.resolve(sets, ids)
    for key in sets:
        sets[key] = dicts.labelsets[key]
    for price in ids:
        ids[price] = dicts.prices[price]
    return list(zip(ends, map(bytearray, traces), map(bytearray, spans), map(bytearray, parents),
                    map(sets.__getitem__, zip(labels, dims)), conversations, users,
                    [NO_TTFT if t is None else t for t in ttfts], map(ids.__getitem__, prices), unmetered, invalid,
                    cache_1h, *zip(*tokens), *zip(*costs), list_costs, durations, weights, unpriced))


@runtime_checkable
class ParamsLedger(Protocol):
    """A ledger writer that takes INSERT_CALL parameters built by its caller (the SQLite writer)."""

    dictionaries: Dictionaries

    def params_of(self, rows: Sequence[Row]) -> list[Params]:
        """`params_of(rows, self.dictionaries)`; LedgerUnavailable when new ids cannot be stored now."""

    def submit_params(self, params: list[Params]) -> Future[list[bool]]:
        """`submit_rows` for parameters already built: one new/duplicate bool per call."""
