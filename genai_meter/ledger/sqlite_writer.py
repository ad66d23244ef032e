"""The SQLite ledger writer: one thread with its own connection doing group commit.

`submit` (any thread) builds the row tuples and queues them; the writer thread collects
submissions for `ledger.commit_interval_ms`, then in one BEGIN IMMEDIATE transaction looks up which
(trace id, span id) keys exist, inserts the new rows, upserts the hourly and daily rollups (summed
per batch in Python) and commits, and only then resolves each submission's Future with its new/dup
bools. Any error resolves the whole batch with `LedgerUnavailable` (nothing of it stored). Several
processes may write one file: the lookup and the insert share the IMMEDIATE transaction, so each
key is stored once across processes. The thread also checkpoints the WAL (PASSIVE each second,
TRUNCATE above `WAL_TRUNCATE_BYTES`) and prunes (daily, and above `ledger.max_bytes`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import sqlite_prune
from genai_meter.ledger.commit_queue import CommitQueue
from genai_meter.ledger.model import Entry, LedgerUnavailable
from genai_meter.ledger.rows import Price, Row, RowBuilder
from genai_meter.ledger.sqlite_rollups import HOUR_NS, add_rollups, seal_days
from genai_meter.ledger.sqlite_schema import open_write

log = logging.getLogger(__name__)

WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
CHECKPOINT_EVERY_S = 1.0
PRUNE_CHECK_EVERY_S = 60.0
LOOKUP_CHUNK = 400  # (trace id, span id) pairs per lookup statement (2 variables each)

_CALL_COLS = ("end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, duration_us, ttft_us, "
              "t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, c_cache_read, c_cache_write, "
              "c_output, c_reasoning, c_request, list_cost, price, unpriced, unmetered, invalid, weight_micro, "
              "cache_write_1h")
INSERT_CALL = f"INSERT INTO calls ({_CALL_COLS}) VALUES ({', '.join('?' * 27)})"


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


def existing_keys(conn: sqlite3.Connection, keys: Sequence[tuple[bytes, bytes]]) -> set[tuple[bytes, bytes]]:
    """Which of `keys` are stored already (through the unique (trace_id, span_id) index)."""
    found: set[tuple[bytes, bytes]] = set()
    for i in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[i:i + LOOKUP_CHUNK]
        values = ", ".join("(?, ?)" for _ in chunk)
        params = [part for key in chunk for part in key]
        found.update(conn.execute(  # a join, so each pair is one index search (row-value IN scans)
            f"SELECT c.trace_id, c.span_id FROM (VALUES {values}) AS v "
            "JOIN calls AS c ON c.trace_id = v.column1 AND c.span_id = v.column2", params).fetchall())
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
        next_prune = time.monotonic()
        try:
            while True:
                batch, closing = self._commits.take(max(0.0, next_checkpoint - time.monotonic()))
                if batch:
                    self._commit(batch)
                now = time.monotonic()
                if now >= next_checkpoint:
                    self._checkpoint()
                    next_checkpoint = now + CHECKPOINT_EVERY_S
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

    def _commit(self, batch: list[tuple[list[Row], Future[list[bool]]]]) -> None:
        conn = self._conn
        pending_ls: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int] = {}
        pending_pr: dict[Price, int] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            keys = [(r.trace_id, r.span_id) for rows, _ in batch for r in rows]
            seen = existing_keys(conn, keys)
            answers: list[list[bool]] = []
            params = []
            groups: dict[tuple[int, int], list[int]] = {}  # (hour, labelset) -> SUM_NAMES sums of the batch
            labelset_id, price_id, dicts = self._dicts.labelset_id, self._dicts.price_id, self._dicts
            for rows, _ in batch:
                flags = []
                for r in rows:
                    key = (r.trace_id, r.span_id)
                    if key in seen:
                        flags.append(False)
                        continue
                    seen.add(key)
                    flags.append(True)
                    ls = dicts.labelsets.get((r.labels, r.dims)) or labelset_id(conn, r.labels, r.dims, pending_ls)
                    pr = dicts.prices.get(r.price) or price_id(conn, r.price, pending_pr)
                    params.append((r.end_ns, r.trace_id, r.span_id, r.parent_span_id, ls, r.conversation, r.user,
                                   r.duration_us, r.ttft_us, *r.tokens, *r.costs, r.list_cost, pr, r.unpriced,
                                   r.unmetered, r.invalid, r.weight_micro, r.cache_write_1h))
                    group = (r.end_ns - r.end_ns % HOUR_NS, ls)
                    sums = groups.get(group)
                    if sums is None:
                        groups[group] = r.sums()  # a fresh list: summed into in place below
                    else:
                        for i, v in enumerate(r.sums()):
                            sums[i] += v
                answers.append(flags)
            params.sort()  # primary-key order: the inserts append
            if params:
                conn.executemany(INSERT_CALL, params)
                add_rollups(conn, groups)
            conn.execute("COMMIT")
        except Exception as exc:
            self.failures += 1
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.warning("ledger %s: batch not stored: %s", self.path, exc)
            error = LedgerUnavailable(f"the ledger cannot store calls now: {exc}")
            for _, future in batch:
                future.set_exception(error)
            return
        self.batches += 1
        self._dicts.labelsets.update(pending_ls)
        self._dicts.prices.update(pending_pr)
        for (_, future), flags in zip(batch, answers):
            future.set_result(flags)

    def _checkpoint(self) -> None:
        try:
            mode = "TRUNCATE" if self.wal_bytes() > WAL_TRUNCATE_BYTES else "PASSIVE"
            self._conn.execute(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.Error as exc:
            log.debug("ledger %s: checkpoint skipped: %s", self.path, exc)

    def _prune(self) -> None:
        try:
            seal_days(self._conn, time.time_ns())
        except sqlite3.Error as exc:
            log.warning("ledger %s: daily rollups not sealed now: %s", self.path, exc)
        try:
            sqlite_prune.prune_connection(self._conn, self.path, self._config, time.time_ns(), max_batches=4)
        except Exception as exc:  # pruning is best effort; the next pass retries
            log.warning("ledger %s: prune skipped: %s", self.path, exc)
