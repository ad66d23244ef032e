"""Which whole UTC days a report covers, from its time buckets.

Buckets of one (provider, kind) must tile each day they touch exactly: a day covered only in part
(an export that starts at 17:31) would replace a whole day's lines with part of them, and a bucket
seen twice (the same page in a file twice) would count twice. Both are a `ReconcileError`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime

from genai_meter.reconcile.fields import DAY, Node, bucket_day
from genai_meter.reconcile.lines import Coverage, ReconcileError


def _clock(at: datetime, day: date) -> str:
    """The time of day of `at` within `day`, 24:00:00 for its end."""
    return "24:00:00" if at.date() > day else f"{at:%H:%M:%S}"


class DayTiles:
    """Collects the buckets of one file or pull, then checks that they tile whole days."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._spans: dict[tuple[str, str, date], list[tuple[datetime, datetime, str]]] = defaultdict(list)

    def add(self, provider: str, kind: str, day: date, start: datetime, end: datetime, path: str) -> None:
        """Record the bucket [start, end) of `day` found at `path` (for the error message)."""
        self._spans[(provider, kind, day)].append((start, end, path))

    def add_day(self, provider: str, kind: str, day: date, path: str) -> None:
        """Record a report of the whole of `day` (a per-day source such as OpenRouter's activity)."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        self.add(provider, kind, day, start, start + DAY, path)

    def has(self, provider: str, kind: str, day: date) -> bool:
        """Whether a bucket of `day` was recorded for (provider, kind)."""
        return (provider, kind, day) in self._spans

    def covers(self) -> frozenset[Coverage]:
        found: set[Coverage] = set()
        for (provider, kind, day), spans in sorted(self._spans.items()):
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
            day_end = at + DAY
            for start, end, path in sorted(spans):
                if start < at:
                    raise ReconcileError(f"{self.where}: {path}: {kind} bucket {start:%Y-%m-%dT%H:%M:%SZ} overlaps "
                                         "an earlier one (the same bucket twice would count twice)")
                if start > at:
                    day_end = start
                    break
                at = end
            if at != datetime(day.year, day.month, day.day, tzinfo=UTC) + DAY:
                raise ReconcileError(f"{self.where}: {kind} for {day} covers only part of the UTC day (nothing from "
                                     f"{_clock(at, day)} to {_clock(day_end, day)}): export whole UTC days")
            found.add(Coverage(provider, day, kind))
        return frozenset(found)


def bucket_results(page: Node, provider: str, kind: str, tiles: DayTiles, *, unix: bool) -> Iterator[tuple[date, Node]]:
    """(UTC day, result) for every result of every bucket of `page`, each bucket recorded in `tiles`.
    Buckets are OpenAI's (start_time / end_time, Unix seconds: `unix`) or Anthropic's (starting_at /
    ending_at, RFC 3339)."""
    for bucket in page.req("data").items():
        if unix:
            start, end = bucket.req("start_time").unix_time(), bucket.req("end_time").unix_time()
        else:
            start, end = bucket.req("starting_at").rfc3339(), bucket.req("ending_at").rfc3339()
        day = bucket_day(bucket, start, end)
        tiles.add(provider, kind, day, start, end, bucket.path)
        for result in bucket.req("results").items():
            yield day, result
