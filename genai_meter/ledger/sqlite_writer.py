"""The SQLite ledger writer: one thread with its own connection doing group commit.

`submit` (any thread) builds the row tuples and queues them; the writer thread collects
submissions for `ledger.commit_interval_ms`, then in one BEGIN IMMEDIATE transaction inserts the
new rows (and adds the few that end before the hourly rollup watermark, late calls, to the
rollups) and commits, and only then resolves each submission's Future with its new/dup bools. A
call's identity is its primary key (end time, trace id, span id): the rows are inserted as they
are, and when one was stored before (a retry, a replay) the insert fails on the key, the
transaction is rolled back and the batch is done again with the keys looked up first (primary-key
searches), inserting only the new rows. Any other error resolves the whole batch with
`LedgerUnavailable` (nothing of it stored). Several processes may write one file: the insert (or
the lookup and the insert) runs in the IMMEDIATE transaction, so each key is stored once across
processes. The thread also seals the rollups (`sqlite_rollups.seal`: every `SEAL_EVERY_S` up to
`SEAL_GRACE_S` before now, back to back while behind), checkpoints the WAL (PASSIVE each second,
TRUNCATE above `WAL_TRUNCATE_BYTES`) and prunes (daily, and above `ledger.max_bytes`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from concurrent.futures import Future
from operator import itemgetter
from pathlib import Path
from typing import Any

from genai_meter.config import Config
from genai_meter.ledger import sqlite_prune
from genai_meter.ledger.commit_queue import CommitQueue, Submission
from genai_meter.ledger.model import Entry, LedgerUnavailable
from genai_meter.ledger.rows import SUM_NAMES, Price, Row, RowBuilder
from genai_meter.ledger.sqlite_rollups import HOUR_NS, add_rollups, hours_sealed_until, seal
from genai_meter.ledger.sqlite_schema import open_write

log = logging.getLogger(__name__)

WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
CHECKPOINT_EVERY_S = 1.0
PRUNE_CHECK_EVERY_S = 60.0
SEAL_EVERY_S = 10.0  # an hourly-rollup seal pass this often (sooner while a backlog is sealed)
SEAL_GRACE_S = 60.0  # seal up to this long before now: spans arrive seconds after they end (later ones are late)
LOOKUP_CHUNK = 400  # (end time, trace id, span id) keys per lookup statement (3 variables each)

_CALL_COLS = ("end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, ttft_us, price, unmetered, "
              "invalid, cache_write_1h, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, "
              "c_cache_read, c_cache_write, c_output, c_reasoning, c_request, list_cost, duration_us, weight_micro, "
              "unpriced")
# ttft_us is bound as -1 for "none" (NULL): binding None takes sqlite3's slow adaptation path
INSERT_CALL = f"INSERT INTO calls ({_CALL_COLS}) VALUES ({', '.join('?' * 7)}, NULLIF(?, -1), {', '.join('?' * 19)})"
_KEY = itemgetter(0, 1, 2)  # a Row's identity: (end time, trace id, span id)
_END = itemgetter(0)
_LABELSET = itemgetter(4)
_COLUMNS = _CALL_COLS.split(", ")
_AT = {name: _COLUMNS.index(name) for name in SUM_NAMES[2:]}  # the summed columns (not calls, errors)
_FLAGS = ("unmetered", "invalid")  # counted when not empty


def _late_sums(conn: sqlite3.Connection, params: list[tuple[Any, ...]]) -> dict[tuple[int, int], list[int]]:
    """The SUM_NAMES sums per (hour, label set id) of late calls' insert parameters (errors: the calls
    of a label set whose status is not ok), as a seal pass would add them."""
    sets = json.dumps(sorted({_LABELSET(p) for p in params}))
    failing = {r[0] for r in conn.execute("SELECT id FROM labelsets WHERE status <> 'ok' "
                                          "AND id IN (SELECT value FROM json_each(?))", (sets,))}
    groups: dict[tuple[int, int], list[int]] = {}
    for p in params:
        ls = _LABELSET(p)
        acc = groups.setdefault((p[0] - p[0] % HOUR_NS, ls), [0] * len(SUM_NAMES))
        acc[0] += 1
        acc[1] += ls in failing
        for i, name in enumerate(SUM_NAMES[2:], start=2):
            v = p[_AT[name]]
            acc[i] += (v != "") if name in _FLAGS else v
    return groups


class Dictionaries:
    """Label-set and price ids, cached; new ids become visible only after their transaction commits."""

    def __init__(self) -> None:
        self.labelsets: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int] = {}
        self.prices: dict[Price, int] = {}

    def labelset_id(self, conn: sqlite3.Connection, labels: tuple[str, ...], dims: tuple[tuple[str, str], ...],
                    pending: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int]) -> int:
        key = (labels, dims)
        found = self.labelsets.get(key) or pending.get(key)
        if found is not None:
            return found
        dims_json = json.dumps(dict(dims), sort_keys=True, separators=(",", ":"))
        where = " AND ".join(f"{f} = ?" for f in ("service", "environment", "provider", "model", "request_model",
                                                   "operation", "status", "error_type", "dims"))
        row = conn.execute(f"SELECT id FROM labelsets WHERE {where}", (*labels, dims_json)).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO labelsets (service, environment, provider, model, request_model, "
                               "operation, status, error_type, dims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (*labels, dims_json))
            row = (cur.lastrowid,)
        pending[key] = int(row[0])
        return int(row[0])

    def price_id(self, conn: sqlite3.Connection, price: Price, pending: dict[Price, int]) -> int:
        found = self.prices.get(price) or pending.get(price)
        if found is not None:
            return found
        row = conn.execute("SELECT id FROM prices WHERE source = ? AND version = ? AND entry = ? AND unit_prices = ?",
                           price).fetchone()
        if row is None:
            row = (conn.execute("INSERT INTO prices (source, version, entry, unit_prices) VALUES (?, ?, ?, ?)",
                                price).lastrowid,)
        pending[price] = int(row[0])
        return int(row[0])


def existing_keys(conn: sqlite3.Connection, keys: Sequence[tuple[int, bytes, bytes]]) -> set[tuple[int, bytes, bytes]]:
    """Which of `keys` (end time, trace id, span id) are stored already (primary-key searches)."""
    found: set[tuple[int, bytes, bytes]] = set()
    for i in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[i:i + LOOKUP_CHUNK]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        params = [part for end, trace, span in chunk for part in (end, bytearray(trace), bytearray(span))]
        found.update((end, bytes(trace), bytes(span)) for end, trace, span in conn.execute(
            f"SELECT c.end_ns, c.trace_id, c.span_id FROM (VALUES {values}) AS v JOIN calls AS c "
            "ON c.end_ns = v.column1 AND c.trace_id = v.column2 AND c.span_id = v.column3", params).fetchall())
    return found


class SQLiteWriter:
    """The group-commit writer of one process. `submit` is thread-safe and never blocks on I/O."""

    def __init__(self, path: Path, config: Config, *, pragmas: Sequence[str] = ()) -> None:
        self.path = path
        self._config = config.ledger
        self._builder = RowBuilder(config)
        self._conn = open_write(path, config.ledger.busy_timeout_seconds)
        for pragma in pragmas:  # e.g. max_page_count in tests
            self._conn.execute(f"PRAGMA {pragma}")
        self._dicts = Dictionaries()
        self._commits = CommitQueue(config.ledger.commit_interval_ms / 1000.0)
        self._closed = threading.Event()
        self.batches = 0  # group commits done (self-metric)
        self.failures = 0  # batches answered LedgerUnavailable (self-metric)
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    # -- any thread --------------------------------------------------------------------------------

    def submit(self, entries: Sequence[Entry]) -> Future[list[bool]]:
        return self._commits.put(self._builder.rows(entries))

    def submit_rows(self, rows: Sequence[Row]) -> Future[list[bool]]:
        return self._commits.put(list(rows))

    def wal_bytes(self) -> int:
        """Size of the write-ahead log file now (a self-metric)."""
        try:
            return os.path.getsize(f"{self.path}-wal")
        except OSError:
            return 0

    def close(self, timeout_s: float = 10.0) -> None:
        self._commits.close()
        self._thread.join(timeout_s)

    # -- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
        next_seal = next_prune = time.monotonic()
        behind = False  # the last seal pass did not reach its end: the next comes right after this batch
        try:
            while True:
                idle = 0.0 if behind else max(0.0, next_checkpoint - time.monotonic())
                batch, closing = self._commits.take(idle)
                if batch:
                    self._commit(batch)
                now = time.monotonic()
                if now >= next_checkpoint:
                    self._checkpoint()
                    next_checkpoint = now + CHECKPOINT_EVERY_S
                if (behind or now >= next_seal) and not closing:
                    behind = not self._seal()
                    next_seal = now + SEAL_EVERY_S
                if now >= next_prune and not closing:
                    self._prune()
                    next_prune = now + PRUNE_CHECK_EVERY_S
                if closing and self._commits.empty():
                    break
        except BaseException:
            log.exception("ledger %s: the writer thread stopped", self.path)
            raise
        finally:
            self._commits.stop("the ledger writer stopped")
            self._checkpoint()
            self._conn.close()
            self._closed.set()

    def _commit(self, batch: list[Submission]) -> None:
        rows = [r for rows, _ in batch for r in rows]
        try:
            try:
                flags = self._store(rows, look_up=False)
            except sqlite3.IntegrityError:  # a call stored before (a retry, a replay): look the keys up
                self._rollback()
                flags = self._store(rows, look_up=True)
        except Exception as exc:
            self.failures += 1
            self._rollback()
            log.warning("ledger %s: batch not stored: %s", self.path, exc)
            error = LedgerUnavailable(f"the ledger cannot store calls now: {exc}")
            for _, future in batch:
                future.set_exception(error)
            return
        self.batches += 1
        i = 0
        for submitted, future in batch:
            future.set_result(flags[i:i + len(submitted)])
            i += len(submitted)

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _store(self, rows: list[Row], *, look_up: bool) -> list[bool]:
        """One transaction: insert the new rows, add the late ones' rollups, commit; the new/duplicate flags.
        Without `look_up` every row is inserted: a key stored before, or twice in the batch, fails the
        insert on the primary key with IntegrityError (the caller rolls back and comes again with
        `look_up`, which looks the keys up first and inserts only the first of each new key)."""
        conn = self._conn
        dicts = self._dicts
        pending_ls: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int] = {}
        pending_pr: dict[Price, int] = {}
        conn.execute("BEGIN IMMEDIATE")
        if look_up:  # a duplicate within the batch, or stored before
            keys = list(map(_KEY, rows))
            seen = existing_keys(conn, keys)
            flags, fresh = [], []
            for r, key in zip(rows, keys):
                new = key not in seen
                flags.append(new)
                if new:
                    seen.add(key)
                    fresh.append(r)
        else:
            flags, fresh = [True] * len(rows), rows
        if fresh:
            params = self._params(sorted(fresh, key=_END), pending_ls, pending_pr)  # time order: inserts append
            conn.executemany(INSERT_CALL, params)  # IntegrityError: a key stored before (or twice in the batch)
            late = bisect_left(params, hours_sealed_until(conn), key=_END)  # these end before the sealed hours
            if late:
                add_rollups(conn, _late_sums(conn, params[:late]))
        conn.execute("COMMIT")
        dicts.labelsets.update(pending_ls)
        dicts.prices.update(pending_pr)
        return flags

    def _params(self, rows: list[Row], pending_ls: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int],
                pending_pr: dict[Price, int]) -> list[tuple[Any, ...]]:
        """The INSERT_CALL parameters of `rows`, in their order, built column-wise (`zip`, `map`: C speed);
        label-set and price ids resolved once per distinct value. Bytes go in as bytearray: bytes
        parameters take sqlite3's slow adaptation path, and so does None (ttft_us is bound as -1)."""
        conn, dicts = self._conn, self._dicts
        (ends, traces, spans, parents, labels, dims, conversations, users, durations, ttfts, tokens, costs, list_costs,
         prices, unpriced, unmetered, invalid, weights, cache_1h) = zip(*rows)
        sets = dict.fromkeys(zip(labels, dims))
        for key in sets:
            ls = dicts.labelsets.get(key) or dicts.labelset_id(conn, key[0], key[1], pending_ls)
            sets[key] = ls
        ids = dict.fromkeys(prices)
        for price in ids:
            ids[price] = dicts.prices.get(price) or dicts.price_id(conn, price, pending_pr)
        return list(zip(ends, map(bytearray, traces), map(bytearray, spans), map(bytearray, parents),
                        map(sets.__getitem__, zip(labels, dims)), conversations, users,
                        [-1 if t is None else t for t in ttfts], map(ids.__getitem__, prices), unmetered, invalid,
                        cache_1h, *zip(*tokens), *zip(*costs), list_costs, durations, weights, unpriced))

    def _checkpoint(self) -> None:
        try:
            mode = "TRUNCATE" if self.wal_bytes() > WAL_TRUNCATE_BYTES else "PASSIVE"
            self._conn.execute(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.Error as exc:
            log.debug("ledger %s: checkpoint skipped: %s", self.path, exc)

    def _seal(self) -> bool:
        """One seal pass up to SEAL_GRACE_S before now; False when it stopped short (a backlog)."""
        until = time.time_ns() - int(SEAL_GRACE_S * 10**9)
        try:
            return seal(self._conn, until)[0] >= until
        except sqlite3.Error as exc:  # busy past the timeout: the next pass retries
            log.warning("ledger %s: rollups not sealed now: %s", self.path, exc)
            return True

    def _prune(self) -> None:
        try:
            sqlite_prune.prune_connection(self._conn, self.path, self._config, time.time_ns(), max_batches=4)
        except Exception as exc:  # pruning is best effort; the next pass retries
            log.warning("ledger %s: prune skipped: %s", self.path, exc)
