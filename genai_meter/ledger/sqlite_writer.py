"""The SQLite ledger writer: one thread with its own connection doing group commit.

`submit` (any thread) builds the calls' insert parameters (`sqlite_params`: ids of label sets and
prices, a new one stored and committed first) and queues them. A thread that waits for its
submission's result commits the queue itself when no commit is under way (`_Submitted`: the calls'
parameters are still in its CPU's caches and no thread hand-off is paid; the commits of concurrent
requests group while one is under way); the writer thread commits what nobody waits for after
`ledger.commit_interval_ms`. A commit is one BEGIN IMMEDIATE transaction: it inserts the
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
from genai_meter.ledger.commit_queue import CommitQueue, Submission, refused
from genai_meter.ledger.model import Entry, LedgerUnavailable
from genai_meter.ledger.rows import SUM_NAMES, Row, RowBuilder
from genai_meter.ledger.sqlite_params import CALL_COLUMNS, END, INSERT_CALL, LABELSET, Dictionaries, Params, params_of
from genai_meter.ledger.sqlite_rollups import HOUR_NS, add_rollups, hours_sealed_until, seal
from genai_meter.ledger.sqlite_schema import open_write

log = logging.getLogger(__name__)

WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
CHECKPOINT_EVERY_S = 1.0
PRUNE_CHECK_EVERY_S = 60.0
SEAL_EVERY_S = 10.0  # an hourly-rollup seal pass this often (sooner while a backlog is sealed)
SEAL_GRACE_S = 60.0  # seal up to this long before now: spans arrive seconds after they end (later ones are late)
LOOKUP_CHUNK = 400  # (end time, trace id, span id) keys per lookup statement (3 variables each)

_END, _LABELSET = itemgetter(END), itemgetter(LABELSET)
_AT = {name: CALL_COLUMNS.index(name) for name in SUM_NAMES[2:]}  # the summed columns (not calls, errors)
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


class _Submitted(Future[list[bool]]):
    """A submission's Future: `result` commits the queue in the waiting thread unless another thread's
    commit takes (or took) the submission; the same answers. `timeout` bounds the wait for the
    connection; a commit this thread starts may take up to `ledger.busy_timeout_seconds` longer when
    another process holds the file's write lock."""

    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    def result(self, timeout: float | None = None) -> list[bool]:
        timeout = None if timeout is None else max(0.0, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.done():
            self._writer.commit_for(self, timeout)
        return super().result(None if deadline is None else max(0.0, deadline - time.monotonic()))


Answers = list[tuple[Future[list[bool]], list[bool] | BaseException]]  # given once the connection is free


class SQLiteWriter:
    """The group-commit writer of one process. `submit` is thread-safe; it blocks on I/O only to store a
    label set or price entry the file has not seen (`Dictionaries`, one short transaction)."""

    def __init__(self, path: Path, config: Config, *, pragmas: Sequence[str] = ()) -> None:
        self.path = path
        self._config = config.ledger
        self._builder = RowBuilder(config)
        self._conn = open_write(path, config.ledger.busy_timeout_seconds)
        for pragma in pragmas:  # e.g. max_page_count in tests
            self._conn.execute(f"PRAGMA {pragma}")
        self.dictionaries = Dictionaries(path, config.ledger.busy_timeout_seconds)
        self._commits = CommitQueue(config.ledger.commit_interval_ms / 1000.0)
        self._closed = threading.Event()
        self._connection = threading.Lock()  # held by whichever thread uses the connection (commits, upkeep)
        self._stopped = False  # the connection is closed (under the lock)
        self.batches = 0  # group commits done (self-metric)
        self.failures = 0  # batches answered LedgerUnavailable (self-metric)
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    # -- any thread --------------------------------------------------------------------------------

    def submit(self, entries: Sequence[Entry]) -> Future[list[bool]]:
        return self.submit_rows(self._builder.rows(entries))

    def submit_rows(self, rows: Sequence[Row]) -> Future[list[bool]]:
        try:
            params = self.params_of(rows)
        except LedgerUnavailable as exc:
            return refused(exc)
        return self.submit_params(params)

    def params_of(self, rows: Sequence[Row]) -> list[Params]:
        return params_of(rows, self.dictionaries)

    def submit_params(self, params: list[Params]) -> Future[list[bool]]:
        return self._commits.put(params, _Submitted(self))

    def commit_for(self, future: Future[list[bool]], timeout: float | None) -> None:
        """Commit everything queued in this thread, unless `future` is resolved by then (another
        thread's commit took it) or the lock does not come within `timeout`."""
        if not self._connection.acquire(timeout=-1 if timeout is None else timeout):
            return
        answers: Answers = []
        try:
            if not future.done() and not self._stopped:
                batch = self._commits.take_now()
                if batch:
                    answers = self._commit(batch)
        finally:
            self._connection.release()
        self._answer(answers)

    def wal_bytes(self) -> int:
        """Size of the write-ahead log file now (a self-metric)."""
        try:
            return os.path.getsize(f"{self.path}-wal")
        except OSError:
            return 0

    def close(self, timeout_s: float = 10.0) -> None:
        self._commits.close()
        self._thread.join(timeout_s)
        self.dictionaries.close()

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
                    with self._connection:
                        answers = self._commit(batch)
                    self._answer(answers)
                with self._connection:
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
            with self._connection:
                self._stopped = True
                self._checkpoint()
                self._conn.close()
            self._closed.set()

    def _commit(self, batch: list[Submission]) -> Answers:
        """Store the batch (under the connection lock); the answers, which the caller gives with
        `_answer` once the lock is released (a Future's callback may then wait for another commit).
        A submission cancelled before its batch was taken is stored all the same, and not answered."""
        for _, future in batch:
            future.set_running_or_notify_cancel()  # from now on it cannot be cancelled
        params = [p for submitted, _ in batch for p in submitted]
        try:
            try:
                flags = self._store(params, look_up=False)
            except sqlite3.IntegrityError:  # a call stored before (a retry, a replay): look the keys up
                self._rollback()
                flags = self._store(params, look_up=True)
        except Exception as exc:
            self.failures += 1
            self._rollback()
            log.warning("ledger %s: batch not stored: %s", self.path, exc)
            error = LedgerUnavailable(f"the ledger cannot store calls now: {exc}")
            return [(future, error) for _, future in batch]
        self.batches += 1
        answers: Answers = []
        i = 0
        for submitted, future in batch:
            answers.append((future, flags[i:i + len(submitted)]))
            i += len(submitted)
        return answers

    @staticmethod
    def _answer(answers: Answers) -> None:
        for future, answer in answers:
            if future.cancelled():
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _store(self, params: list[Params], *, look_up: bool) -> list[bool]:
        """One transaction: insert the new calls, add the late ones' rollups, commit; the new/duplicate flags.
        Without `look_up` every call is inserted: a key stored before, or twice in the batch, fails the
        insert on the primary key with IntegrityError (the caller rolls back and comes again with
        `look_up`, which looks the keys up first and inserts only the first of each new key)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        if look_up:  # a duplicate within the batch, or stored before
            keys = [(p[0], bytes(p[1]), bytes(p[2])) for p in params]
            seen = existing_keys(conn, keys)
            flags, fresh = [], []
            for p, key in zip(params, keys):
                new = key not in seen
                flags.append(new)
                if new:
                    seen.add(key)
                    fresh.append(p)
        else:
            flags, fresh = [True] * len(params), params
        if fresh:
            fresh = sorted(fresh, key=_END)  # time order: inserts append
            conn.executemany(INSERT_CALL, fresh)  # IntegrityError: a key stored before (or twice in the batch)
            late = bisect_left(fresh, hours_sealed_until(conn), key=_END)  # these end before the sealed hours
            if late:
                add_rollups(conn, _late_sums(conn, fresh[:late]))
        conn.execute("COMMIT")
        return flags

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
