"""Calendar periods in a fixed UTC offset: the one definition budgets, rollups and reports share.

A period is a calendar day, an ISO week (Monday start) or a month of the local time at `offset`,
labelled `2026-11-23`, `2026-W48` or `2026-11`, and spans [start_ns, end_ns) in Unix nanoseconds.
Pure functions; no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

NS = 1_000_000_000
Period = Literal["day", "week", "month"]

_EPOCH = datetime(1970, 1, 1)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PeriodBounds:
    """One calendar period: its label and [start_ns, end_ns) in Unix nanoseconds."""

    label: str
    start_ns: int
    end_ns: int


def local_midnight_ns(day: date, offset: timedelta) -> int:
    """Unix nanoseconds of 00:00 on `day` in the UTC `offset`."""
    delta = datetime.combine(day, time()) - offset - _EPOCH
    return (delta.days * 86400 + delta.seconds) * NS


def local_date(ns: int, offset: timedelta) -> date:
    """The calendar date at the instant `ns` in the UTC `offset`."""
    return (_EPOCH + timedelta(seconds=ns // NS) + offset).date()


def period_of(kind: Period, offset: timedelta, ns: int) -> PeriodBounds:
    """The calendar period (in UTC `offset`) that contains the instant `ns`."""
    day = local_date(ns, offset)
    if kind == "day":
        start, end = day, day + _DAY
        label = day.isoformat()
    elif kind == "week":
        start = day - timedelta(days=day.weekday())
        end = start + 7 * _DAY
        iso_year, iso_week, _ = start.isocalendar()
        label = f"{iso_year:04d}-W{iso_week:02d}"
    else:
        start = day.replace(day=1)
        end = (start + 32 * _DAY).replace(day=1)
        label = f"{start.year:04d}-{start.month:02d}"
    return PeriodBounds(label, local_midnight_ns(start, offset), local_midnight_ns(end, offset))


def previous_period(kind: Period, offset: timedelta, bounds: PeriodBounds) -> PeriodBounds:
    """The period just before `bounds`."""
    return period_of(kind, offset, bounds.start_ns - 1)


def parse_utc_offset(text: str) -> timedelta:
    """'+HH:MM' or '-HH:MM' as a timedelta; raises ValueError otherwise."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isascii() \
            or not (text[1:3] + text[4:]).isdigit():
        raise ValueError(f"a UTC offset looks like +HH:MM, got {text!r}")
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:]))
