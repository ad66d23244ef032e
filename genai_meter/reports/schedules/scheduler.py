"""Scheduled exports: each cron slot claimed exactly once across processes and restarts, then delivered.

State lives in a SQLite file of its own (the ledger is opened read-only): a row per (schedule, slot)
is inserted by the one process that wins the claim (primary key), so two service processes, or a
restarted one, never run the same slot twice. Only slots at or after the state file's creation run
(a new install does not replay history); after a restart the latest missed slot runs late.
Delivery is at least once: a failed delivery is retried with exponential backoff (2, 4, 8 ... s, at
most 5 min) by whichever process comes first, up to `max_attempts`, then marked failed; failures are
logged and counted (`status()`, `/api/v1/schedules`, `/api/v1/metrics`). A webhook gets an
`Idempotency-Key` that is the same for every attempt of a slot.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from croniter import croniter

from genai_meter.config import Config, ScheduleConfig
from genai_meter.periods import NS

log = logging.getLogger("genai_meter.reports.schedules")
LEASE_S = 120  # a running slot whose process died is taken over after this
MAX_BACKOFF_S = 300
WEBHOOK_TIMEOUT_S = 10.0
EXTENSIONS = {"json": "json", "csv": "csv", "xlsx": "xlsx", "pdf": "pdf", "focus": "csv", "slack": "json"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    schedule TEXT NOT NULL, slot_ns INTEGER NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_at_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, last_error TEXT NOT NULL,
    PRIMARY KEY (schedule, slot_ns));
"""


@dataclass(frozen=True, slots=True)
class Output:
    """One rendered run: the body, its media type and the file extension."""

    body: bytes
    media_type: str
    extension: str


def validate(config: Config) -> None:
    """Raise ValueError naming the schedule whose cron expression is invalid."""
    for s in config.reports.schedules:
        if not croniter.is_valid(s.cron) or len(s.cron.split()) != 5:
            raise ValueError(f"reports.schedules[{s.name}].cron: {s.cron!r} is not a five-field cron expression")


class ScheduleState:
    """The state file: slot claims, attempts, errors. Safe across processes (SQLite locking)."""

    def __init__(self, path: Path, now_ns: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('created_ns', ?)", (str(now_ns),))
        row = self._db.execute("SELECT value FROM meta WHERE key='created_ns'").fetchone()
        self.created_ns = int(row[0])

    def close(self) -> None:
        self._db.close()

    def claim(self, name: str, slot_ns: int, owner: str, now_ns: int) -> bool:
        """True for exactly one caller per (schedule, slot), ever."""
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, 'running', 0, ?, ?, '')",
                                   (name, slot_ns, owner, now_ns + LEASE_S * NS, now_ns))
            return cur.rowcount == 1

    def take_due(self, owner: str, now_ns: int) -> list[tuple[str, int, int]]:
        """Retries that are due and runs whose owner's lease expired, taken over by `owner`."""
        with self._lock:
            due = self._db.execute("SELECT schedule, slot_ns, attempts, updated_ns FROM runs WHERE status IN "
                                   "('retry', 'running') AND next_at_ns <= ?", (now_ns,)).fetchall()
            taken = []
            for name, slot, attempts, updated in due:
                cur = self._db.execute("UPDATE runs SET status='running', owner=?, next_at_ns=?, updated_ns=? "
                                       "WHERE schedule=? AND slot_ns=? AND updated_ns=?",
                                       (owner, now_ns + LEASE_S * NS, now_ns, name, slot, updated))
                if cur.rowcount == 1:
                    taken.append((name, slot, attempts))
            return taken

    def finish(self, name: str, slot_ns: int, ok: bool, error: str, attempts: int, max_attempts: int,
               now_ns: int) -> str:
        """Record an attempt's outcome; returns the new status (done, retry, failed)."""
        status = "done" if ok else ("failed" if attempts >= max_attempts else "retry")
        backoff = min(MAX_BACKOFF_S, 2 ** attempts) * NS
        with self._lock:
            self._db.execute("UPDATE runs SET status=?, attempts=?, next_at_ns=?, updated_ns=?, last_error=? "
                             "WHERE schedule=? AND slot_ns=?",
                             (status, attempts, now_ns + backoff, now_ns, error[:500], name, slot_ns))
        return status

    def status(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT schedule, SUM(status='done'), SUM(status='failed'), SUM(status IN ('retry','running')), "
                "SUM(attempts) - SUM(status='done'), MAX(slot_ns) FROM runs "
                "GROUP BY schedule ORDER BY schedule").fetchall()
            errors = dict(self._db.execute("SELECT schedule, last_error FROM runs WHERE last_error != '' "
                                           "ORDER BY updated_ns").fetchall())
        return [{"schedule": r[0], "delivered": r[1], "failed": r[2], "pending": r[3],
                 "failed_attempts": max(0, (r[4] or 0)), "last_slot_ns": r[5], "last_error": errors.get(r[0], "")}
                for r in rows]


def latest_slot(cron: str, now_ns: int, offset: timedelta) -> int:
    """Unix ns of the latest cron slot at or before `now_ns` (cron read in the UTC `offset`)."""
    zone = timezone(offset)
    moment = datetime.fromtimestamp(now_ns // NS, zone).replace(microsecond=0)
    it = croniter(cron, moment + timedelta(seconds=1))
    prev = it.get_prev(datetime)
    return int(prev.astimezone(UTC).timestamp()) * NS


def deliver(schedule: ScheduleConfig, config: Config, slot_ns: int, output: Output) -> None:
    """Write the file and/or POST the webhook; raises on failure (the caller retries)."""
    stamp = datetime.fromtimestamp(slot_ns // NS, UTC).strftime("%Y%m%dT%H%MZ")
    if schedule.directory is not None:
        folder = config.resolve_path(schedule.directory)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{schedule.name}-{stamp}.{output.extension}"
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(output.body)
        os.replace(tmp, target)
    if schedule.webhook_url is not None:
        request = urllib.request.Request(schedule.webhook_url, data=output.body, method="POST", headers={
            "Content-Type": output.media_type, "Idempotency-Key": f"{schedule.name}-{slot_ns}",
            "User-Agent": "genai-meter-reports", "X-Genai-Meter-Schedule": schedule.name})
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as answer:
            if not 200 <= answer.status < 300:
                raise OSError(f"webhook answered {answer.status}")


class Scheduler:
    """Runs the schedules of `config` in one background thread of this process."""

    def __init__(self, config: Config, state: ScheduleState, produce: Callable[[ScheduleConfig, int], Output],
                 offset: timedelta, clock: Callable[[], int]) -> None:
        self.config = config
        self.state = state
        self.produce = produce
        self.offset = offset
        self.clock = clock
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._by_name = {s.name: s for s in config.reports.schedules}

    def tick(self) -> None:
        """Claim and run due slots, then due retries. Never raises."""
        now = self.clock()
        for schedule in self.config.reports.schedules:
            try:
                slot = latest_slot(schedule.cron, now, self.offset)
                if slot >= self.state.created_ns - 60 * NS and self.state.claim(schedule.name, slot, self.owner, now):
                    self._attempt(schedule, slot, 0)
            except Exception:  # a broken schedule must not stop the others
                log.exception("schedule %s: tick failed", schedule.name)
        for name, slot, attempts in self.state.take_due(self.owner, self.clock()):
            retried = self._by_name.get(name)
            if retried is not None:
                self._attempt(retried, slot, attempts)

    def _attempt(self, schedule: ScheduleConfig, slot: int, attempts: int) -> None:
        try:
            deliver(schedule, self.config, slot, self.produce(schedule, slot))
            ok, error = True, ""
        except Exception as exc:  # every failure is recorded and retried
            ok, error = False, f"{type(exc).__name__}: {exc}"
        status = self.state.finish(schedule.name, slot, ok, error, attempts + 1, schedule.max_attempts, self.clock())
        if status == "failed":
            log.error("schedule %s slot %d failed after %d attempts: %s", schedule.name, slot, attempts + 1, error)
        elif status == "retry":
            log.warning("schedule %s slot %d attempt %d failed (will retry): %s", schedule.name, slot, attempts + 1,
                        error)
        else:
            log.info("schedule %s slot %d delivered", schedule.name, slot)

    def start(self, interval_s: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.tick()

        self._thread = threading.Thread(target=loop, name="report-schedules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
