"""The time figures of a span, range-checked where the span is read (docs/accuracy.md, "Times").

A span's end time is the instant the call happened: prices, budget periods and the ledger's key follow
it. `EndTimes` says whether an end time is a plausible instant for this process: at least 0 and below
2^63 ns (the ledger's integers), no further in the future than the clock-skew allowance
(`receiver.max_future_skew_seconds`), and, with a ledger, no older than its retention
(`ledger.retention_days`). A span that fails is refused with one of `REJECT_END_TIMES`'s reasons by
every path that reads spans: the receiver's extraction (pure and C), the in-process processor.

Durations and times to first token are figures of a call, not its identity: one outside
0..`MAX_CALL_SECONDS` (a start after the end, a start of 0, a first-token event before the start or a
day after it, an attribute of 9.2e12 s) is unknown, never an exception and never a number that
overflows the ledger's integer microseconds: an unknown duration reads 0.0 (the ledger's column has no
"unknown"), an unknown time to first token None. The readers inline the comparison with `MAX_CALL_NS`
on their hot paths; the C tally (`metering/_tally.c`) makes the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_meter.config import Config

MAX_CALL_SECONDS = 86_400  # a duration or time to first token above a day is no figure of one LLM call
MAX_CALL_NS = MAX_CALL_SECONDS * 1_000_000_000
INT63 = 1 << 63  # end times from here on do not fit the ledger's signed 64-bit integers
NS_PER_DAY = 86_400 * 1_000_000_000

# genai_meter_spans_rejected_total{reason} of a span whose end time is refused
END_TIME_OUT_OF_RANGE = "end_time_out_of_range"  # negative, 2^63 ns or later, or not an integer
END_TIME_IN_FUTURE = "end_time_in_future"  # later than now + the clock-skew allowance
END_TIME_TOO_OLD = "too_old"  # older than the ledger keeps calls
REJECT_END_TIMES: tuple[str, ...] = (END_TIME_OUT_OF_RANGE, END_TIME_IN_FUTURE, END_TIME_TOO_OLD)


@dataclass(frozen=True, slots=True)
class EndTimes:
    """Which end times a span may have. `max_future_skew_ns`: how far past the local clock an end time
    may be; `retention_ns`: how far before it, None for no lower bound (no ledger)."""

    max_future_skew_ns: int = 600 * 1_000_000_000
    retention_ns: int | None = None

    @classmethod
    def of(cls, config: Config, ledger: bool) -> EndTimes:
        """The bounds of `config`; the retention bound only with a `ledger`."""
        skew = round(config.receiver.max_future_skew_seconds * 1_000_000_000)
        return cls(skew, config.ledger.retention_days * NS_PER_DAY if ledger else None)

    def bounds(self, now_ns: int) -> tuple[int, int]:
        """(oldest, newest) end time accepted at `now_ns`, both within 0..2^63 - 1: a span passes when
        `oldest <= end_ns <= newest` (and its end time is an int)."""
        oldest = 0 if self.retention_ns is None else max(0, now_ns - self.retention_ns)
        return oldest, max(0, min(INT63 - 1, now_ns + self.max_future_skew_ns))

    @staticmethod
    def reason(end_ns: object, oldest: int, newest: int) -> str:
        """Why `end_ns` is refused under `bounds` (called for one that did not pass; "" if it does)."""
        if type(end_ns) is not int or end_ns < 0 or end_ns >= INT63:
            return END_TIME_OUT_OF_RANGE
        if end_ns > newest:
            return END_TIME_IN_FUTURE
        if end_ns < oldest:
            return END_TIME_TOO_OLD
        return ""

