"""Scheduled exports: each cron slot claimed exactly once across processes and restarts, then delivered.

Slots at or after the state file's creation run (a new install does not replay history); after a
restart the latest missed slot runs late. Delivery is at least once: a failed delivery waits in the
state file's outbox (`state.ScheduleState`) and is retried with backoff for the schedule's
`retry_for_hours` by whichever process comes first, then marked failed, logged at error level and
counted (`status()`, `/api/v1/schedules`, `/api/v1/metrics`, the `LLMReportDeliveryFailed` alert). A
webhook gets an `Idempotency-Key` that is the same for every attempt of a slot.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from croniter import croniter

from genai_meter.config import Config, ScheduleConfig
from genai_meter.periods import NS
from genai_meter.reports.schedules.delivery import Output, deliver
from genai_meter.reports.schedules.state import ScheduleState

log = logging.getLogger("genai_meter.reports.schedules")
EXTENSIONS = {"json": "json", "csv": "csv", "xlsx": "xlsx", "pdf": "pdf", "focus": "csv", "slack": "json"}


def validate(config: Config) -> None:
    """Raise ValueError naming the schedule whose cron expression is invalid."""
    for s in config.reports.schedules:
        if not croniter.is_valid(s.cron) or len(s.cron.split()) != 5:
            raise ValueError(f"reports.schedules[{s.name}].cron: {s.cron!r} is not a five-field cron expression")


def latest_slot(cron: str, now_ns: int, offset: timedelta) -> int:
    """Unix ns of the latest cron slot at or before `now_ns` (cron read in the UTC `offset`)."""
    zone = timezone(offset)
    moment = datetime.fromtimestamp(now_ns // NS, zone).replace(microsecond=0)
    it = croniter(cron, moment + timedelta(seconds=1))
    prev = it.get_prev(datetime)
    return int(prev.astimezone(UTC).timestamp()) * NS


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
                    self._attempt(schedule, slot, 0, now)
            except Exception:  # a broken schedule must not stop the others
                log.exception("schedule %s: tick failed", schedule.name)
        try:
            for name, slot, attempts, first in self.state.take_due(self.owner, self.clock(), self._by_name):
                self._attempt(self._by_name[name], slot, attempts, first)
        except Exception:  # the state file locked or broken: the outbox keeps the slots, the next tick retries
            log.exception("schedules: retrying the outbox failed")

    def _attempt(self, schedule: ScheduleConfig, slot: int, attempts: int, first_ns: int) -> None:
        try:
            deliver(schedule, self.config, slot, self.produce(schedule, slot))
            ok, error = True, ""
        except Exception as exc:  # every failure is recorded and retried
            ok, error = False, f"{type(exc).__name__}: {exc}"
        status = self.state.finish(schedule, slot, ok, error, attempts + 1, first_ns, self.clock())
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


__all__ = ["EXTENSIONS", "Output", "ScheduleState", "Scheduler", "deliver", "latest_slot", "validate"]
