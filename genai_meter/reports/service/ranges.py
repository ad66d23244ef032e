"""Report windows: range presets and from/to (RFC 3339) to half-open [start_ns, end_ns), and steps.

Calendar presets (today, this_week, ...) use `genai_meter.periods` in the report offset (the budgets'
offset by default), so a month here is the month a budget counts. "this_*" presets end now (to date);
"yesterday" and "last_month" are whole periods. Pure functions: the clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from genai_meter.config import Config
from genai_meter.ledger.model import MAX_POINTS
from genai_meter.periods import NS, Period, local_date, local_midnight_ns, parse_utc_offset, period_of
from genai_meter.reports.service.params import ParamError

RANGES: tuple[str, ...] = ("1h", "24h", "7d", "30d", "90d", "today", "yesterday", "this_week", "this_month",
                           "last_month", "this_year")
STEP_NS: dict[str, int] = {"1m": 60 * NS, "1h": 3600 * NS, "1d": 86400 * NS, "1w": 7 * 86400 * NS,
                           "1mo": 31 * 86400 * NS}
_RELATIVE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
RFC3339 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"


@dataclass(frozen=True, slots=True)
class Window:
    """A resolved report window and the window it is compared with."""

    start_ns: int
    end_ns: int
    label: str  # the preset, or "custom"
    previous_start_ns: int
    previous_end_ns: int


def report_offset(config: Config) -> timedelta:
    """The UTC offset calendar ranges use: reports.utc_offset, else the first budget's, else UTC."""
    if config.reports.utc_offset is not None:
        return parse_utc_offset(config.reports.utc_offset)
    if config.budgets:
        return config.budgets[0].offset
    return timedelta(0)


def iso(ns: int) -> str:
    """RFC 3339 UTC text of Unix nanoseconds (second precision unless there is a fraction)."""
    seconds, rest = divmod(ns, NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        text += f".{rest:09d}".rstrip("0")
    return text + "Z"


def parse_time(name: str, text: str) -> int:
    """RFC 3339 text (with Z or an offset) as Unix nanoseconds; raises `ParamError` naming `name`."""
    if not re.fullmatch(RFC3339, text):
        raise ParamError(f"{name}: {text[:64]!r} is not RFC 3339 (e.g. 2026-11-01T00:00:00Z)", name)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParamError(f"{name}: {text!r} is not a valid date and time", name) from None
    if not 1970 <= moment.astimezone(UTC).year <= 2200:
        raise ParamError(f"{name}: year must be between 1970 and 2200", name)
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * NS + moment.microsecond * 1000


def _calendar(preset: str, now_ns: int, offset: timedelta) -> tuple[int, int, int, int]:
    """(start, end, previous start, previous end) of a calendar preset."""
    kinds: dict[str, Period] = {"today": "day", "yesterday": "day", "this_week": "week", "this_month": "month",
                                "last_month": "month"}
    if preset == "this_year":
        year = local_date(now_ns, offset).year
        start = local_midnight_ns(local_date(now_ns, offset).replace(month=1, day=1), offset)
        previous = local_midnight_ns(local_date(now_ns, offset).replace(year=year - 1, month=1, day=1), offset)
        return start, now_ns, previous, min(previous + (now_ns - start), start)
    kind = kinds[preset]
    current = period_of(kind, offset, now_ns)
    if preset in ("yesterday", "last_month"):
        whole = period_of(kind, offset, current.start_ns - 1)
        before = period_of(kind, offset, whole.start_ns - 1)
        return whole.start_ns, whole.end_ns, before.start_ns, before.end_ns
    before = period_of(kind, offset, current.start_ns - 1)
    return current.start_ns, now_ns, before.start_ns, min(before.start_ns + (now_ns - current.start_ns), before.end_ns)


def resolve_window(range_: str, from_: str, to: str, now_ns: int, offset: timedelta, max_days: int) -> Window:
    """The window of `range` or `from`/`to` (`to` defaults to now); raises `ParamError` naming the parameter."""
    if range_ and (from_ or to):
        raise ParamError("range: give either range or from/to, not both", "range")
    if range_:
        if range_ in _RELATIVE:
            length = _RELATIVE[range_] * NS
            return Window(now_ns - length, now_ns, range_, now_ns - 2 * length, now_ns - length)
        start, end, prev_start, prev_end = _calendar(range_, now_ns, offset)
        return Window(start, end, range_, prev_start, prev_end)
    if not from_:
        if to:
            raise ParamError("from: required when to is given", "from")
        length = 86400 * NS
        return Window(now_ns - length, now_ns, "24h", now_ns - 2 * length, now_ns - length)
    start = parse_time("from", from_)
    end = parse_time("to", to) if to else now_ns
    if end <= start:
        raise ParamError("to: must be after from", "to")
    if end - start > max_days * 86400 * NS:
        raise ParamError(f"to: the range may span at most {max_days} days", "to")
    return Window(start, end, "custom", start - (end - start), start)


def default_step(window: Window) -> str:
    """A step that gives a readable number of points for the window's length."""
    length = window.end_ns - window.start_ns
    if length <= 3 * 3600 * NS:
        return "1m"
    if length <= 4 * 86400 * NS:
        return "1h"
    if length <= 400 * 86400 * NS:
        return "1d"
    return "1w"


def check_step(step: str, start_ns: int, end_ns: int) -> str:
    """`step` when the window holds at most MAX_POINTS of it; raises `ParamError` naming `step`."""
    points = -(-(end_ns - start_ns) // STEP_NS[step])
    if points > MAX_POINTS:
        raise ParamError(f"step: {step} gives {points} points over this range; at most {MAX_POINTS} "
                         "(choose a longer step or a shorter range)", "step")
    return step
