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
from typing import Any, Protocol, cast, runtime_checkable

from genai_meter.ledger.model import LedgerRowRejected, LedgerUnavailable
from genai_meter.ledger.row_checks import labelset_problem
from genai_meter.ledger.rows import LABEL_FIELDS, Price, Row
from genai_meter.ledger.sqlite_schema import GENERATION

CALL_COLUMNS = ("end_ns", "trace_id", "span_id", "parent_span_id", "labelset", "conversation", "user", "ttft_us",
                "price", "unmetered", "invalid", "cache_write_1h", "t_input", "t_cache_read", "t_cache_write",
                "t_output", "t_reasoning", "c_input", "c_cache_read", "c_cache_write", "c_output", "c_reasoning",
                "c_request", "list_cost", "duration_us", "weight_micro", "unpriced")
# ttft_us is bound as -1 for "none" (NULL): binding None takes sqlite3's slow adaptation path
INSERT_CALL = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * 7)}, NULLIF(?, -1), "
               f"{', '.join('?' * 19)})")
Params = tuple[Any, ...]  # one call's INSERT_CALL parameters
END, LABELSET, PRICE = 0, 4, 8  # the positions of the end time, the label set id and the price id
UNITS = len(CALL_COLUMNS)  # a call with billed units has them as one more parameter, past INSERT_CALL's
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


# A failed write whose error is one of these was caused by a call's values (the submission at fault is
# rejected); any other error is the file's or the system's (the batch answers LedgerUnavailable).
ROW_ERRORS = (ValueError, OverflowError, TypeError, sqlite3.IntegrityError, sqlite3.DataError,
              sqlite3.InterfaceError, sqlite3.ProgrammingError)


def is_row_error(exc: BaseException) -> bool:
    """Whether a failed write's error comes from a call's values (not from the file or the system)."""
    return isinstance(exc, ROW_ERRORS) and "closed" not in str(exc)


def read_generation(conn: sqlite3.Connection) -> int:
    """The file's dictionary generation (`meta`; moved by every deletion or change of a dictionary row)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (GENERATION,)).fetchone()
    return int(row[0]) if row else 0


class Dictionaries:
    """Label-set and price ids of one ledger file, cached; thread-safe. `failing[id]` is 1 when the
    label set's status is not ok (the rollups' error count).

    Ids are never reused (schema v6), so an id always means the same label set or price
    (`labelset_keys`, `price_keys`: what each id handed out means). A cached key -> id holds while the
    file's dictionary generation is the one the cache was filled under: `sync(conn)`, inside a
    transaction (each resolving one, each commit), drops the caches when it moved (`epoch` counts the
    drops, for caches built on these ids such as the receiver's `TallyParams`), and from the first drop
    on `confirm` tells a commit which of its ids are gone (deleted by `ledger forget` meanwhile)."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._lock = threading.Lock()  # one resolving transaction at a time
        self._state = threading.Lock()  # the caches; never held while waiting for the file
        self.labelsets: dict[LabelSet, int] = {}
        self.prices: dict[Price, int] = {}
        self.failing: dict[int, int] = {}
        self.live_labelsets: set[int] = set()  # ids known to exist under `generation`
        self.live_prices: set[int] = set()
        self.labelset_keys: dict[int, LabelSet] = {}
        self.price_keys: dict[int, Price] = {}
        self.generation = read_generation(self._conn)
        self.epoch = 0
        self.error: str | None = None  # why the last resolving transaction failed (the writer's health)

    def sync(self, conn: sqlite3.Connection, generation: int | None = None) -> int:
        """Drop the caches if the file's dictionary generation (read on `conn`, inside the caller's
        transaction, unless given) is not the one they were filled under; returns it."""
        if generation is None:
            generation = read_generation(conn)
        if generation != self.generation:
            with self._state:
                if generation != self.generation:
                    self.labelsets, self.prices, self.failing = {}, {}, {}
                    self.live_labelsets, self.live_prices = set(), set()
                    self.generation = generation
                    self.epoch += 1
        return generation

    def resolve(self, labelsets: Iterable[LabelSet], prices: Iterable[Price]) -> tuple[dict[LabelSet, int],
                                                                                        dict[Price, int]]:
        """The ids of every given label set and price: known ones from memory, the missing ones stored
        in one committed transaction. LedgerUnavailable when the file cannot take them now,
        LedgerRowRejected when one of them can never be stored (not valid Unicode)."""
        known_sets, known_prices = self.labelsets, self.prices
        sets = {s: known_sets.get(s) for s in labelsets}
        found = {p: known_prices.get(p) for p in prices}
        new_sets = [s for s, i in sets.items() if i is None]
        new_prices = [p for p, i in found.items() if i is None]
        if new_sets or new_prices:
            stored_sets, stored_prices = self._store(new_sets, new_prices)
            sets.update(stored_sets)
            found.update(stored_prices)
        return cast(dict[LabelSet, int], sets), cast(dict[Price, int], found)

    def _store(self, new_sets: list[LabelSet], new_prices: list[Price]) -> tuple[dict[LabelSet, int],
                                                                                   dict[Price, int]]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    generation = self.sync(conn)
                    sets = {s: labelset_id(conn, *s) for s in new_sets}
                    found = {p: price_id(conn, p) for p in new_prices}
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except Exception as exc:
                if is_row_error(exc):
                    problem = next(filter(None, (labelset_problem(*s) for s in new_sets)), None) or str(exc)
                    raise LedgerRowRejected(f"a label set or price cannot be stored: {problem}") from None
                if not isinstance(exc, sqlite3.Error):
                    raise
                self.error = f"the ledger cannot store new label sets now: {exc}"
                raise LedgerUnavailable(self.error) from None
            self.error = None
        with self._state:
            for key, ls in sets.items():
                self.labelset_keys[ls] = key
            for price, pid in found.items():
                self.price_keys[pid] = price
            if generation == self.generation:  # else the caches were dropped meanwhile: these ids are confirmed later
                for (labels, _), ls in sets.items():
                    self.failing[ls] = int(labels[LABEL_FIELDS.index("status")] != "ok")
                self.labelsets.update(sets)
                self.prices.update(found)
                self.live_labelsets.update(sets.values())
                self.live_prices.update(found.values())
        return sets, found

    def ids(self, labelset: LabelSet, price: Price) -> tuple[int, int]:
        """(label set id, price id), resolved when new."""
        sets, prices = self.resolve((labelset,), (price,))
        return sets[labelset], prices[price]

    def confirm(self, conn: sqlite3.Connection, generation: int, labelsets: set[int],
                prices: set[int]) -> tuple[set[int], set[int]]:
        """Inside a commit's transaction at `generation`: the given ids that no longer exist (label sets,
        prices). Ids not known to exist are looked up (then known, while the generation holds)."""
        unknown_sets, unknown_prices = labelsets - self.live_labelsets, prices - self.live_prices
        if not unknown_sets and not unknown_prices:
            return set(), set()
        alive_sets = _existing(conn, "labelsets", unknown_sets)
        alive_prices = _existing(conn, "prices", unknown_prices)
        with self._state:
            if generation == self.generation:
                self.live_labelsets |= alive_sets
                self.live_prices |= alive_prices
        return unknown_sets - alive_sets, unknown_prices - alive_prices

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _existing(conn: sqlite3.Connection, table: str, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    return {r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                                       (json.dumps(sorted(ids)),))}


def params_of(rows: Sequence[Row], dicts: Dictionaries) -> list[Params]:
    """The INSERT_CALL parameters of `rows`, in their order, built column-wise (`zip`, `map`: C speed);
    ids resolved once per distinct label set and price. Bytes go in as bytearray: bytes parameters take
    sqlite3's slow adaptation path, and so does None (ttft_us is bound as NO_TTFT)."""
    if not rows:
        return []
    (ends, traces, spans, parents, labels, dims, conversations, users, durations, ttfts, tokens, costs, list_costs,
     prices, unpriced, unmetered, invalid, weights, cache_1h, *rest) = zip(*rows)
    sets, ids = dicts.resolve(dict.fromkeys(zip(labels, dims)), dict.fromkeys(prices))
    params = list(zip(ends, map(bytearray, traces), map(bytearray, spans), map(bytearray, parents),
                      map(sets.__getitem__, zip(labels, dims)), conversations, users,
                      [NO_TTFT if t is None else t for t in ttfts], map(ids.__getitem__, prices), unmetered, invalid,
                      cache_1h, *zip(*tokens), *zip(*costs), list_costs, durations, weights, unpriced))
    if rest and any(rest[0]):  # billed units: one more parameter after the INSERT_CALL ones (`UNITS`)
        params = [p + (u,) if u else p for p, u in zip(params, rest[0])]
    return params


@runtime_checkable
class ParamsLedger(Protocol):
    """A ledger writer that takes INSERT_CALL parameters built by its caller (the SQLite writer)."""

    dictionaries: Dictionaries

    def params_of(self, rows: Sequence[Row]) -> list[Params]:
        """`params_of(rows, self.dictionaries)`; LedgerUnavailable when new ids cannot be stored now."""

    def submit_params(self, params: list[Params]) -> Future[list[bool]]:
        """`submit_rows` for parameters already built: one new/duplicate bool per call."""
