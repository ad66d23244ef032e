"""The ClickHouse ledger writer: group commit into a durable local spool, a shipper thread, sealing.

`submit` queues rows; the writer thread collects them for `ledger.commit_interval_ms`, writes the
new ones to the spool with fsync and then resolves the Futures (True: new, False: a duplicate seen
by this process recently; the table itself deduplicates by (tenant, day, trace id, span id) through
ReplacingMergeTree, and every query reads FINAL or sealed rollups). Every row is checked before it
reaches the spool (`row_checks`: ClickHouse would wrap an Int64 past 2^63 silently, and a line it
cannot parse would hold up every later batch): a submission with a row the ledger cannot store is
answered `LedgerRowRejected` alone, the others of the batch go on. A spool that cannot be written
answers `LedgerUnavailable` and makes the writer unhealthy until a write (or the shipper's probe)
succeeds. The shipper thread sends spool
batches at least every second with their dedup token and deletes a file only after ClickHouse
accepted it; it also seals closed hours (older than `seal_grace_s`) into the hourly rollups, from
deduplicated rows, once per hour thanks to the hour's dedup token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import ConnectExecutor, Executor, cell_int
from genai_meter.ledger.clickhouse_upkeep import prune_cutoff, prune_executor, reseal
from genai_meter.ledger.commit_queue import CommitQueue
from genai_meter.ledger.model import Entry, LedgerRowRejected, LedgerUnavailable
from genai_meter.ledger.row_checks import row_fits, row_problem
from genai_meter.ledger.rows import Row, RowBuilder
from genai_meter.ledger.spool import Spool
from genai_meter.ledger.urls import ClickHouseTarget, LedgerOpenError, data_dir

log = logging.getLogger(__name__)

RECENT_KEYS = 1_000_000  # (trace id, span id) keys this process remembers for its new/dup answers
SHIP_EVERY_S = 0.5
SEAL_EVERY_S = 60.0
SEAL_GRACE_S = 2 * 3600.0  # an hour is rolled up this long after it ends (late spans, other spools)
SEAL_HOURS_PER_PASS = 48


def migrate_executor(executor: Executor, db: str, config: Config, target: int | None = None) -> int:
    """Create or upgrade the schema (to `target`, default the latest); refuses a newer one."""
    for statement in sql.bootstrap(db):
        executor.command(statement)
    current = cell_int(executor.query(sql.schema_version_sql(db))[0][0])
    steps = sql.migrations(db, config.ledger.retention_days, config.ledger.rollup_retention_days)
    if current > len(steps):
        raise LedgerOpenError(f"ClickHouse database {db}: ledger schema version {current} is newer than this "
                              f"genai-meter knows ({len(steps)}); upgrade genai-meter")
    goal = len(steps) if target is None else target
    for version in range(current + 1, goal + 1):
        for statement in steps[version - 1]:
            executor.command(statement)
        executor.command(sql.record_version_sql(db, version))
    return max(current, goal)


def migrate_clickhouse(target: ClickHouseTarget, config: Config) -> None:
    executor = ConnectExecutor(target, config.ledger.busy_timeout_seconds)
    try:
        migrate_executor(executor, target.database, config)
    finally:
        executor.close()


def seal(executor: Executor, db: str, now_ns: int, grace_ns: int) -> int:
    """Re-seal sealed hours late calls reached (`clickhouse_upkeep.reseal`), then roll up closed hours not
    sealed yet (oldest first, a bounded number); returns the new watermark."""
    until = cell_int(executor.query(sql.sealed_until_sql(db))[0][0])
    horizon = now_ns - grace_ns
    horizon -= horizon % sql.HOUR_NS
    if until == 0:
        first, count = (cell_int(v) for v in executor.query(sql.first_call_sql(db))[0])
        if not count:
            return 0
        until = first - first % sql.HOUR_NS
    else:
        reseal(executor, db, until)  # late calls for hours sealed by earlier passes
    if until >= horizon:
        return until
    hours = [cell_int(r[0]) for r in executor.query(sql.hours_with_calls_sql(db), {"start": until, "end": horizon})]
    new_until = horizon
    if len(hours) > SEAL_HOURS_PER_PASS:
        hours = hours[:SEAL_HOURS_PER_PASS]
        new_until = hours[-1] + sql.HOUR_NS
    for hour in hours:
        executor.command(sql.seal_hour_sql(db, hour))
        executor.command(sql.seal_hour_units_sql(db, hour))
    executor.command(sql.set_sealed_until_sql(db, new_until))
    return new_until


def prune_sealed(executor: Executor, db: str, config: Config, now_ns: int) -> int:
    """`ledger prune` on ClickHouse: every hour before the cutoff sealed, then `prune_executor`."""
    cutoff = prune_cutoff(config.ledger.retention_days, now_ns)
    while seal(executor, db, cutoff, 0) < cutoff and cell_int(executor.query(sql.first_call_sql(db))[0][1]):
        pass
    return prune_executor(executor, db, config.ledger.retention_days, config.ledger.rollup_retention_days, now_ns)


class ClickHouseWriter:
    """Group commit into the spool; a shipper thread sends batches. `submit` is thread-safe."""

    def __init__(self, executor_factory: Callable[[], Executor], db: str, config: Config, spool_dir: Path, *,
                 seal_grace_s: float = SEAL_GRACE_S) -> None:
        self.db = db
        self._builder = RowBuilder(config)
        self._spool = Spool(spool_dir)
        self._factory = executor_factory
        self._grace_ns = int(seal_grace_s * 1e9)
        self._recent: dict[tuple[bytes, bytes], None] = {}
        self._commits = CommitQueue(config.ledger.commit_interval_ms / 1000.0)
        self._ship_wake = threading.Event()
        self.shipped = 0  # batches accepted by ClickHouse (self-metric)
        self.ship_failures = 0
        self.rejections = 0  # submissions answered LedgerRowRejected
        self._error: str | None = None  # why the spool could not be written last; None once it could
        self._writer = threading.Thread(target=self._write_loop, name="ledger-spool", daemon=True)
        self._shipper = threading.Thread(target=self._ship_loop, name="ledger-shipper", daemon=True)
        self._writer.start()
        self._shipper.start()

    def submit(self, entries: Sequence[Entry]) -> Future[list[bool]]:
        return self._commits.put(self._builder.rows(entries))

    def submit_rows(self, rows: Sequence[Row]) -> Future[list[bool]]:
        return self._commits.put(list(rows))

    def wal_bytes(self) -> int:
        """Bytes waiting in the spool (the self-metric beside SQLite's WAL size)."""
        return self._spool.size_bytes()

    def healthy(self) -> bool:
        return self._error is None

    @property
    def last_error(self) -> str | None:
        return self._error

    def close(self, timeout_s: float = 10.0) -> None:
        self._commits.close()
        self._writer.join(timeout_s)
        self._ship_wake.set()
        self._shipper.join(timeout_s)

    def _write_loop(self) -> None:
        while True:
            batch, closing = self._commits.take()
            if batch:
                try:
                    self._commit(batch)
                except Exception as exc:  # a defect: answer the batch, never stop the thread
                    log.exception("ledger: a batch could not be written to the spool")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(LedgerUnavailable(f"the ledger spool cannot store calls: {exc}"))
            if closing:
                return

    def _encoded(self, rows: list[Row], version: int, seen: set[tuple[bytes, bytes]]) -> tuple[list[bool],
                                                                                               list[bytes]]:
        """One submission's new/dup flags and the spool lines of its new rows; LedgerRowRejected when a row
        cannot be stored (nothing of the submission is taken then)."""
        flags: list[bool] = []
        lines: list[bytes] = []
        mine: set[tuple[bytes, bytes]] = set()
        recent = self._recent
        try:
            for r in rows:
                if not row_fits(r):
                    raise ValueError("a value beyond its column")
                key = (r.trace_id, r.span_id)
                new = key not in seen and key not in recent and key not in mine
                flags.append(new)
                if new:
                    mine.add(key)
                    lines.append(sql.json_row(r, version).encode("utf-8"))  # a lone surrogate fails here
        except (ValueError, TypeError, OverflowError, AttributeError) as exc:
            problems = [(i, problem) for i, r in enumerate(rows) if (problem := row_problem(r))]
            reason = problems[0][1] if problems else f"a call cannot be stored: {exc}"
            raise LedgerRowRejected(reason, [i for i, _ in problems]) from None
        seen |= mine
        return flags, lines

    def _commit(self, batch: list[tuple[list[Row], Future[list[bool]]]]) -> None:
        version = time.time_ns()
        lines: list[bytes] = []
        answers: list[tuple[Future[list[bool]], list[bool] | Exception]] = []
        seen: set[tuple[bytes, bytes]] = set()  # this batch's keys; earlier ones are in self._recent
        for rows, future in batch:
            try:
                flags, new_lines = self._encoded(rows, version, seen)
            except LedgerRowRejected as exc:
                self.rejections += 1
                log.warning("ledger: a submission of %d call(s) rejected: %s", len(rows), exc.reason)
                answers.append((future, exc))
                continue
            lines.extend(new_lines)
            answers.append((future, flags))
        try:
            if lines:
                self._spool.append(lines)
        except OSError as exc:
            self._error = f"the ledger spool cannot store calls now: {exc}"
            error = LedgerUnavailable(self._error)
            for _, future in batch:
                future.set_exception(error)
            return
        if self._error is not None:
            log.info("ledger: the spool takes calls again")
            self._error = None
        for key in seen:
            self._recent[key] = None
        while len(self._recent) > RECENT_KEYS:
            del self._recent[next(iter(self._recent))]
        self._ship_wake.set()
        for future, answer in answers:
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _ship_loop(self) -> None:
        executor: Executor | None = None
        next_seal = 0.0
        while True:
            self._ship_wake.wait(SHIP_EVERY_S)
            self._ship_wake.clear()
            done = self._commits.closing and not self._writer.is_alive()
            if self._error is not None and self._spool.probe():
                log.info("ledger: the spool can be written again")
                self._error = None
            try:
                if executor is None:
                    executor = self._factory()
                for path in self._spool.pending():
                    body = path.read_text(encoding="utf-8")
                    executor.command(sql.insert_sql(self.db, Spool.token(path), body))
                    self._spool.remove(path)
                    self.shipped += 1
                if time.monotonic() >= next_seal:
                    seal(executor, self.db, time.time_ns(), self._grace_ns)
                    next_seal = time.monotonic() + SEAL_EVERY_S
            except (LedgerUnavailable, LedgerOpenError, OSError) as exc:
                self.ship_failures += 1
                log.warning("ledger: ClickHouse shipping deferred (calls stay in the spool): %s", exc)
            if done:
                if executor is not None:
                    executor.close()
                return


def open_clickhouse_writer(target: ClickHouseTarget, config: Config) -> ClickHouseWriter:
    """A writer for `target`; the schema is migrated first (LedgerOpenError naming the server)."""
    migrate_clickhouse(target, config)
    spool = data_dir(config) / f"clickhouse-spool-{target.host}-{target.port}-{target.database}"
    return ClickHouseWriter(lambda: ConnectExecutor(target, config.ledger.busy_timeout_seconds), target.database,
                            config, spool)
