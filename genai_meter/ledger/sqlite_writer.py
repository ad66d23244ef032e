"""The SQLite ledger writer: one thread with its own connection doing group commit.

`submit` (any thread) builds the calls' insert parameters (`sqlite_params`: ids of label sets and
prices, a new one stored and committed first) and queues them. A thread that waits for its
submission's result commits the queue itself when no commit is under way (`_Submitted`: the calls'
parameters are still in its CPU's caches and no thread hand-off is paid; the commits of concurrent
requests group while one is under way); the writer thread commits what nobody waits for after
`ledger.commit_interval_ms`. A commit is one BEGIN IMMEDIATE transaction (`sqlite_store.store`): it
inserts the new rows (and holds the keys of those that end before the hourly rollup watermark, late
calls, for a grouped roll-up by the writer thread) and commits, and only then resolves each
submission's Future with its new/dup bools. A call's identity is its primary key (end time, trace
id, span id): the rows are inserted as they are, and when one was stored before (a retry, a replay)
the insert fails on the key, the
transaction is rolled back and the batch is done again with the keys looked up first (primary-key
searches), inserting only the new rows. Several processes may write one file: the insert (or the
lookup and the insert) runs in the IMMEDIATE transaction, so each key is stored once across
processes.

One call never fails a commit: when the store fails on a call's values (`ROW_ERRORS`: an integer
beyond 64 bits, text that is not valid Unicode, a bound of `row_checks`), the submissions holding
such calls are found (`row_checks.params_problem`, else by halving the batch) and answered
`LedgerRowRejected` alone, and the others are committed in the same pass. Any other error (disk
full, busy past the timeout, I/O error, the file gone) answers every submission of the batch
`LedgerUnavailable` (nothing of it stored) and makes the writer unhealthy (`healthy()`,
`last_error`) until a commit, or the probe the writer thread makes every second meanwhile, succeeds.
The thread also folds the held late calls into the rollups (`sqlite_late.fold_pass`) and seals the
rollups (`sqlite_rollups.seal`: every `SEAL_EVERY_S` up to `SEAL_GRACE_S` before now, back to back
while behind), checkpoints the WAL (PASSIVE each second, TRUNCATE above
`WAL_TRUNCATE_BYTES`) and prunes (each minute; daily retention, `ledger.max_bytes`).
"""

from __future__ import annotations

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
from genai_meter.ledger.commit_queue import CommitQueue, Submission, refused
from genai_meter.ledger.model import FILE_GONE, Entry, LedgerRowRejected, LedgerUnavailable
from genai_meter.ledger.row_checks import params_problem
from genai_meter.ledger.rows import Row, RowBuilder
from genai_meter.ledger.sqlite_late import fold_pass
from genai_meter.ledger.sqlite_params import CALL_COLUMNS, Dictionaries, Params, is_row_error, params_of
from genai_meter.ledger.sqlite_rollups import seal
from genai_meter.ledger.sqlite_schema import file_identity, open_write
from genai_meter.ledger.sqlite_store import store

log = logging.getLogger(__name__)

WAL_TRUNCATE_BYTES = 64 * 1024 * 1024
CHECKPOINT_EVERY_S = 1.0
PRUNE_CHECK_EVERY_S = 60.0
SEAL_EVERY_S = 10.0  # an hourly-rollup seal pass this often (sooner while a backlog is sealed)
SEAL_GRACE_S = 60.0  # seal up to this long before now: spans arrive seconds after they end (later ones are late)
PROBE_BYTES = 64 * 1024  # an unhealthy writer's probe writes (and removes) this much: a full disk fails it


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
        self.rejections = 0  # submissions answered LedgerRowRejected
        self._identity = file_identity(path)
        self._error: str | None = None  # why the last commit failed; None once one (or a probe) succeeds
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    # -- any thread --------------------------------------------------------------------------------

    def submit(self, entries: Sequence[Entry]) -> Future[list[bool]]:
        return self.submit_rows(self._builder.rows(entries))

    def submit_rows(self, rows: Sequence[Row]) -> Future[list[bool]]:
        try:
            params = self.params_of(rows)
        except (LedgerUnavailable, LedgerRowRejected) as exc:
            return refused(exc)
        return self.submit_params(params)

    def params_of(self, rows: Sequence[Row]) -> list[Params]:
        try:
            return params_of(rows, self.dictionaries)
        except LedgerRowRejected as exc:  # a label set or price that can never be stored
            self.rejections += 1
            log.warning("ledger %s: a submission of %d call(s) rejected: %s", self.path, len(rows), exc.reason)
            raise

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

    def healthy(self) -> bool:
        return self.last_error is None

    @property
    def last_error(self) -> str | None:
        return self._file_problem() or self._error or self.dictionaries.error

    def _recovered(self, message: str) -> None:
        if self._error is not None or self.dictionaries.error is not None:
            log.info("ledger %s: %s", self.path, message)
        self._error = self.dictionaries.error = None

    def _file_problem(self) -> str | None:
        """Why the file at `path` is not the one this writer writes (moved away, deleted, replaced), or None."""
        now = file_identity(self.path)
        if now == self._identity:
            return None
        if now is None:
            return (f"{self.path}: the ledger file is gone (moved away or deleted); put it back, or restart serve "
                    "to begin a new ledger there")
        return f"{self.path}: the ledger file was replaced by another file; restart serve to write to it"

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
                        if (self._error or self.dictionaries.error) is not None and not closing:
                            self._probe()
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
                self._fold_all()
                self._checkpoint()
                self._conn.close()
            self._closed.set()

    def _commit(self, batch: list[Submission]) -> Answers:
        """Store the batch (under the connection lock); the answers, which the caller gives with
        `_answer` once the lock is released (a Future's callback may then wait for another commit).
        A submission cancelled before its batch was taken is stored all the same, and not answered."""
        for _, future in batch:
            future.set_running_or_notify_cancel()  # from now on it cannot be cancelled
        problem = self._file_problem()
        if problem is not None:  # the file moved away: what this connection writes would be lost
            return self._failed(batch, LedgerUnavailable(problem, FILE_GONE))
        return self._commit_parts(batch)

    def _commit_parts(self, batch: list[Submission]) -> Answers:
        params = [p for submitted, _ in batch for p in submitted]
        try:
            try:
                flags = store(self._conn, self.dictionaries, params, look_up=False)
            except sqlite3.IntegrityError:  # a call stored before (a retry, a replay): look the keys up
                self._rollback()
                flags = store(self._conn, self.dictionaries, params, look_up=True)
        except Exception as exc:
            self._rollback()
            if is_row_error(exc):
                return self._isolate(batch, exc)
            return self._failed(batch, LedgerUnavailable(f"the ledger cannot store calls now: {exc}"))
        self.batches += 1
        self._recovered("calls are stored again")
        answers: Answers = []
        i = 0
        for submitted, future in batch:
            answers.append((future, flags[i:i + len(submitted)]))
            i += len(submitted)
        return answers

    def _failed(self, batch: list[Submission], error: LedgerUnavailable) -> Answers:
        """Every submission of the batch answered `error` (nothing stored); the writer unhealthy."""
        self.failures += 1
        self._error = str(error)
        log.warning("ledger %s: batch not stored: %s", self.path, error)
        return [(future, error) for _, future in batch]

    def _isolate(self, batch: list[Submission], exc: Exception) -> Answers:
        """The store failed on a call's values: answer the submissions at fault LedgerRowRejected and
        commit the others (again; a further failure on values halves the batch until it is found)."""
        faults: dict[int, LedgerRowRejected] = {}
        for i, (params, _) in enumerate(batch):
            found = [(j, problem) for j, p in enumerate(params) if (problem := params_problem(CALL_COLUMNS, p))]
            if found:
                faults[i] = LedgerRowRejected(found[0][1], [j for j, _ in found])
        if not faults and len(batch) == 1:
            faults[0] = LedgerRowRejected(f"a call cannot be stored: {exc}")
        if not faults:
            half = len(batch) // 2
            return self._commit_parts(batch[:half]) + self._commit_parts(batch[half:])
        self.rejections += len(faults)
        for i, error in faults.items():
            log.warning("ledger %s: a submission of %d call(s) rejected: %s", self.path, len(batch[i][0]), error.reason)
        rest = [submission for i, submission in enumerate(batch) if i not in faults]
        return [(batch[i][1], error) for i, error in faults.items()] + (self._commit_parts(rest) if rest else [])

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

    def _checkpoint(self) -> None:
        try:
            mode = "TRUNCATE" if self.wal_bytes() > WAL_TRUNCATE_BYTES else "PASSIVE"
            self._conn.execute(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.Error as exc:
            log.debug("ledger %s: checkpoint skipped: %s", self.path, exc)

    def _probe(self) -> None:
        """While commits fail: a small write transaction (PROBE_BYTES stored and removed); healthy again
        when it commits, so readiness comes back without waiting for traffic it turned away."""
        if self._file_problem() is not None:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT INTO meta (key, value) VALUES ('writer_probe', zeroblob(?)) ON CONFLICT (key) "
                               "DO UPDATE SET value = excluded.value", (PROBE_BYTES,))
            self._conn.execute("DELETE FROM meta WHERE key = 'writer_probe'")
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            log.debug("ledger %s: still cannot write: %s", self.path, exc)
            return
        self._recovered("the ledger takes writes again")

    def _seal(self) -> bool:
        """One pass folding the held late calls into the rollups (`sqlite_late`), then one seal pass up to
        SEAL_GRACE_S before now; False when either stopped short (a backlog)."""
        until = time.time_ns() - int(SEAL_GRACE_S * 10**9)
        try:
            folded = fold_pass(self._conn)
            return seal(self._conn, until)[0] >= until and folded
        except sqlite3.Error as exc:  # busy past the timeout: the next pass retries
            log.warning("ledger %s: rollups not sealed now: %s", self.path, exc)
            return True

    def _fold_all(self) -> None:
        """On close: every held late call folded (`ledger import` leaves its file rolled up); best effort,
        readers count held calls all the same."""
        try:
            while not fold_pass(self._conn):
                pass
        except sqlite3.Error as exc:
            log.warning("ledger %s: late calls left held: %s", self.path, exc)

    def _prune(self) -> None:
        try:
            sqlite_prune.prune_connection(self._conn, self.path, self._config, time.time_ns(), max_batches=4)
        except Exception as exc:  # pruning is best effort; the next pass retries
            log.warning("ledger %s: prune skipped: %s", self.path, exc)
