"""How the ledger reads a range: its parts (daily rollups for whole days, hourly rollups for whole
hours before the watermark, raw calls for the rest) and the starts of its series steps, the same for
every backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from genai_meter.ledger.model import MAX_POINTS, STEPS, Step
from genai_meter.periods import NS, local_date, local_midnight_ns

MINUTE_NS = 60 * NS
HOUR_NS = 3600 * NS
DAY_NS = 86400 * NS
Table = Literal["raw", "hour", "day"]


def ceil_to(ns: int, unit: int) -> int:
    return -(-ns // unit) * unit


def plan(start_ns: int, end_ns: int, hour_ok: bool, day_ok: bool, rollups_before: int,
         days_before: int | None = None) -> list[tuple[Table, int, int]]:
    """Split [start, end) into (table, start, end) parts: daily rollups for aligned whole days before
    `days_before`, hourly rollups for aligned hours before `rollups_before` (W), raw calls for the rest.
    The hourly rollups hold exactly the calls before W: when W is not hour-aligned, W <= end and its
    hour h starts in the range, h's row (the calls in [h, W)) is read too (the hour part then ends at
    h + 1h, past W) and raw calls from W on."""
    if end_ns <= start_ns:
        return []
    if not hour_ok:
        return [("raw", start_ns, end_ns)]
    h0 = ceil_to(start_ns, HOUR_NS)
    h1 = min(end_ns, rollups_before)
    h1 -= h1 % HOUR_NS
    partial = rollups_before <= end_ns and rollups_before % HOUR_NS != 0 and h1 >= h0
    if h0 >= h1 and not partial:
        return [("raw", start_ns, end_ns)]
    hour_end, raw_from = (h1 + HOUR_NS, rollups_before) if partial else (h1, h1)
    parts: list[tuple[Table, int, int]] = []
    if start_ns < h0:
        parts.append(("raw", start_ns, h0))
    d0, d1 = ceil_to(h0, DAY_NS), h1 - h1 % DAY_NS
    if days_before is not None:
        d1 = min(d1, days_before - days_before % DAY_NS)
    if day_ok and d0 < d1:
        parts += [("hour", h0, d0), ("day", d0, d1), ("hour", d1, hour_end)]
    else:
        parts.append(("hour", h0, hour_end))
    if raw_from < end_ns:
        parts.append(("raw", raw_from, end_ns))
    return [p for p in parts if p[1] < p[2]]


def step_starts(start_ns: int, end_ns: int, step: Step, utc_offset_s: int) -> list[int]:
    """The starts of the steps that cover [start, end), the first at or before `start`."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
    off_ns = utc_offset_s * NS
    if step in ("1m", "1h"):
        unit = MINUTE_NS if step == "1m" else HOUR_NS
        first = (start_ns + off_ns) // unit * unit - off_ns
        count = ceil_to(end_ns - first, unit) // unit
        if count > MAX_POINTS:
            raise ValueError(f"{count} steps of {step} exceed {MAX_POINTS} points; use a larger step")
        return [first + i * unit for i in range(max(count, 1))]
    offset = timedelta(seconds=utc_offset_s)
    day = local_date(start_ns, offset)
    if step == "1w":
        day -= timedelta(days=day.weekday())
    elif step == "1mo":
        day = day.replace(day=1)
    starts: list[int] = []
    while True:
        ns = local_midnight_ns(day, offset)
        if starts and ns >= end_ns:
            return starts
        starts.append(ns)
        if len(starts) > MAX_POINTS:
            raise ValueError(f"more than {MAX_POINTS} steps of {step}; use a larger step")
        if step == "1d":
            day += timedelta(days=1)
        elif step == "1w":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
