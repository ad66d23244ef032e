"""The schedules' state file: slot claims and the durable outbox of deliveries not done yet.

A SQLite file of its own (the ledger is opened read-only). A row per (schedule, slot) is inserted by
the one process that wins the claim (primary key), so two service processes, or a restarted one,
never run the same slot twice. A failed delivery stays in the outbox (`status='retry'`) with its next
attempt time: exponential backoff (2, 4, 8 ... s, at most `MAX_BACKOFF_S` apart) until the schedule's
`retry_for_hours` after the first attempt have passed (or `max_attempts` were made), then it is
`failed` for good. Whichever process comes first makes a due attempt, so the outbox outlives
restarts; a process that dies mid-attempt leaves a lease that another takes over after `LEASE_S`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Sequence
from pathlib import Path

from genai_meter.config import ScheduleConfig
from genai_meter.periods import NS
from genai_meter.reports.service.ranges import iso

LEASE_S = 120  # a running slot whose process died is taken over after this
MAX_BACKOFF_S = 300
OUTBOX_SHOWN = 20  # pending slots listed per schedule in the status (the count covers all)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    schedule TEXT NOT NULL, slot_ns INTEGER NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_at_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, last_error TEXT NOT NULL,
    PRIMARY KEY (schedule, slot_ns));
"""


def give_up_ns(first_ns: int, schedule: ScheduleConfig) -> int:
    """When a slot first tried at `first_ns` stops being retried."""
    return first_ns + int(schedule.retry_for_hours * 3600 * NS)


def next_status(schedule: ScheduleConfig, ok: bool, attempts: int, first_ns: int, now_ns: int) -> tuple[str, int]:
    """(done | retry | failed, next attempt) after attempt number `attempts` (first made at `first_ns`)."""
    if ok:
        return "done", now_ns
    end = give_up_ns(first_ns, schedule)
    if now_ns >= end or (schedule.max_attempts is not None and attempts >= schedule.max_attempts):
        return "failed", now_ns
    return "retry", min(now_ns + min(MAX_BACKOFF_S, 2 ** attempts) * NS, end)


class ScheduleState:
    """The state file: slot claims, the outbox, attempts, errors. Safe across processes (SQLite locking)."""

    def __init__(self, path: Path, now_ns: int, schedules: Sequence[ScheduleConfig] = ()) -> None:
        """`schedules` (the configured ones) let the status say when retrying a pending slot stops."""
        self._schedules = {s.name: s for s in schedules}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "first_ns" not in columns:  # state files of earlier versions: the first attempt was the last update
            self._db.execute("ALTER TABLE runs ADD COLUMN first_ns INTEGER")
            self._db.execute("UPDATE runs SET first_ns = updated_ns WHERE first_ns IS NULL")
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('created_ns', ?)", (str(now_ns),))
        row = self._db.execute("SELECT value FROM meta WHERE key='created_ns'").fetchone()
        self.created_ns = int(row[0])

    def close(self) -> None:
        self._db.close()

    def claim(self, name: str, slot_ns: int, owner: str, now_ns: int) -> bool:
        """True for exactly one caller per (schedule, slot), ever."""
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO runs (schedule, slot_ns, owner, status, attempts, "
                                   "next_at_ns, updated_ns, last_error, first_ns) "
                                   "VALUES (?, ?, ?, 'running', 0, ?, ?, '', ?)",
                                   (name, slot_ns, owner, now_ns + LEASE_S * NS, now_ns, now_ns))
            return cur.rowcount == 1

    def take_due(self, owner: str, now_ns: int, names: Collection[str]) -> list[tuple[str, int, int, int]]:
        """Due retries and runs whose owner's lease expired, of the schedules `names`, taken over by `owner`:
        (schedule, slot, attempts so far, first attempt)."""
        with self._lock:
            due = self._db.execute("SELECT schedule, slot_ns, attempts, updated_ns, first_ns FROM runs WHERE status IN "
                                   "('retry', 'running') AND next_at_ns <= ? ORDER BY next_at_ns", (now_ns,)).fetchall()
            taken = []
            for name, slot, attempts, updated, first in due:
                if name not in names:  # a schedule no longer configured: its rows wait, untouched
                    continue
                cur = self._db.execute("UPDATE runs SET status='running', owner=?, next_at_ns=?, updated_ns=? "
                                       "WHERE schedule=? AND slot_ns=? AND updated_ns=?",
                                       (owner, now_ns + LEASE_S * NS, now_ns, name, slot, updated))
                if cur.rowcount == 1:
                    taken.append((name, slot, attempts, first if first is not None else updated))
            return taken

    def finish(self, schedule: ScheduleConfig, slot_ns: int, ok: bool, error: str, attempts: int, first_ns: int,
               now_ns: int) -> str:
        """Record attempt number `attempts`; returns the new status (done, retry, failed)."""
        status, next_at = next_status(schedule, ok, attempts, first_ns, now_ns)
        with self._lock:
            self._db.execute("UPDATE runs SET status=?, attempts=?, next_at_ns=?, updated_ns=?, last_error=? "
                             "WHERE schedule=? AND slot_ns=?",
                             (status, attempts, next_at, now_ns, error[:500], schedule.name, slot_ns))
        return status

    def status(self) -> list[dict[str, object]]:
        """Per schedule: delivered, failed and pending slots, failed attempts, the last error, and the
        outbox (pending slots, oldest first: attempts, next attempt, last error, when retrying stops)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT schedule, SUM(status='done'), SUM(status='failed'), SUM(status IN ('retry','running')), "
                "SUM(attempts) - SUM(status='done'), MAX(slot_ns), "
                "MIN(CASE WHEN status IN ('retry','running') THEN next_at_ns END) FROM runs "
                "GROUP BY schedule ORDER BY schedule").fetchall()
            errors = dict(self._db.execute("SELECT schedule, last_error FROM runs WHERE last_error != '' "
                                           "ORDER BY updated_ns").fetchall())
            pending = self._db.execute(
                "SELECT schedule, slot_ns, status, attempts, next_at_ns, last_error, first_ns FROM runs "
                "WHERE status IN ('retry','running') ORDER BY schedule, slot_ns").fetchall()
        outbox: dict[str, list[dict[str, object]]] = {}
        for name, slot, status, attempts, next_at, error, first in pending:
            entries = outbox.setdefault(name, [])
            schedule = self._schedules.get(name)
            if len(entries) < OUTBOX_SHOWN:
                entries.append({"slot": iso(slot), "state": "attempting" if status == "running" else "waiting",
                                "attempts": attempts, "next_attempt": iso(next_at), "last_error": error,
                                "first_attempt": iso(first),
                                "retry_until": iso(give_up_ns(first, schedule)) if schedule is not None else None})
        return [{"schedule": r[0], "delivered": r[1], "failed": r[2], "pending": r[3],
                 "failed_attempts": max(0, (r[4] or 0)), "last_slot_ns": r[5], "last_slot": iso(r[5]),
                 "next_attempt": iso(r[6]) if r[6] is not None else None, "last_error": errors.get(r[0], ""),
                 "outbox": outbox.get(r[0], [])} for r in rows]
