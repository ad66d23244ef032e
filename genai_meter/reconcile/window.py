"""Which UTC days a reconciliation covers: from/to (a date or an RFC 3339 time, `to` exclusive), or
the whole days before today."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from genai_meter.periods import NS

DAY_OR_TIME = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2}))?"
DEFAULT_DAYS = 30
MAX_DAYS = 1100


def parse_moment(name: str, text: str) -> int:
    """A date (its midnight UTC) or an RFC 3339 time as Unix ns; ValueError naming `name`."""
    if not re.fullmatch(DAY_OR_TIME, text):
        raise ValueError(f"{name}: {text[:64]!r} is not a date (2026-11-01) or an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a valid date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.astimezone(UTC).year <= 2200:
        raise ValueError(f"{name}: the year must be between 1970 and 2200")
    return int(moment.replace(microsecond=0).timestamp()) * NS + moment.microsecond * 1000


def day_of(ns: int) -> date:
    return datetime.fromtimestamp(ns // NS, UTC).date()


def days_between(start_ns: int, end_ns: int) -> tuple[date, date]:
    """The first and last UTC day that [start_ns, end_ns) touches; ValueError naming `to` when empty or
    longer than MAX_DAYS."""
    if end_ns <= start_ns:
        raise ValueError("to: must be after from")
    first, last = day_of(start_ns), day_of(end_ns - 1)
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"to: at most {MAX_DAYS} days")
    return first, last


def each_day(first: date, last: date) -> list[date]:
    """first, first + 1 day, ..., last."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_before(today: date, count: int = DEFAULT_DAYS) -> tuple[date, date]:
    """The `count` whole UTC days before `today`."""
    return today - timedelta(days=count), today - timedelta(days=1)


def resolve_days(from_: str, to: str, now_ns: int) -> tuple[date, date]:
    """The days of `from`/`to` (`to` exclusive, default now), or the DEFAULT_DAYS days before today."""
    if not from_:
        if to:
            raise ValueError("from: required when to is given")
        return days_before(day_of(now_ns))
    start = parse_moment("from", from_)
    return days_between(start, parse_moment("to", to) if to else now_ns)
