"""What one stored call may hold: the values that would fail a shared group commit or poison a sum.

A group commit stores many requests' calls at once, so one call the store cannot take must never fail
the others (docs/ledger.md, "One call never fails a commit"). The stores refuse, per call: an integer
outside 64 bits (SQLite's INTEGER, ClickHouse's Int64: an end time of 2^63 ns or more, a time to first
token of 9.3e12 s in microseconds), a string that is not valid Unicode (a lone surrogate cannot be
written as UTF-8), a value of the wrong type; and, so that an hour's sums of a label set stay within 64
bits, a duration or a sample weight above 2^40 (12.7 days in microseconds; an adjusted count of about
1.1 million, in millionths). The writers check the bounds on every batch (a maximum per column), and
look for the call at fault only when a commit failed on a call's values.
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_meter.ledger.rows import Row

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DURATION_US = 2**40  # a call's duration, microseconds (about 12.7 days)
MAX_WEIGHT_MICRO = 2**40  # a call's sample weight, millionths (an adjusted count of about 1.1 million)
UINT8_MAX = 255


class OutOfBounds(ValueError):
    """A batch holds a call whose duration or sample weight is above its bound (the writer then looks
    for the call with `params_problem` / `row_problem`)."""


def _int(name: str, value: object, low: int = INT64_MIN, high: int = INT64_MAX) -> str | None:
    if not isinstance(value, int):
        return f"{name} is a {type(value).__name__}, not an integer"
    if not low <= value <= high:
        side, bound, limit = ("above", high, INT64_MAX) if value > high else ("below", low, INT64_MIN)
        return f"{name} {value} is {side} " + ("the ledger's 64-bit integers" if bound == limit
                                               else f"its bound {bound}")
    return None


def _text(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} is a {type(value).__name__}, not text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{name} is not valid Unicode ({exc.reason} at character {exc.start})"
    return None


def _blob(name: str, value: object) -> str | None:
    return None if isinstance(value, (bytes, bytearray)) else f"{name} is a {type(value).__name__}, not bytes"


def describe_call(end_ns: object, trace_id: object, span_id: object) -> str:
    """How an error names a call: its trace and span ids (hex) and end time."""
    def hexed(v: object) -> str:
        return bytes(v).hex() if isinstance(v, (bytes, bytearray)) else repr(v)[:40]
    return f"call {hexed(trace_id)}/{hexed(span_id)} ending {str(end_ns)[:40]}"


def params_problem(columns: Sequence[str], params: Sequence[object]) -> str | None:
    """Why the SQLite ledger cannot store one call's insert parameters (`columns` names them), or None.
    Text columns are those holding str, ids those holding bytes; every other column is an integer."""
    for name, value in zip(columns, params):
        if name in ("trace_id", "span_id", "parent_span_id"):
            problem = _blob(name, value)
        elif name in ("conversation", "user", "unmetered", "invalid"):
            problem = _text(name, value)
        elif name == "duration_us":
            problem = _int(name, value, high=MAX_DURATION_US)
        elif name == "weight_micro":
            problem = _int(name, value, high=MAX_WEIGHT_MICRO)
        else:
            problem = _int(name, value)
        if problem:
            return f"{describe_call(params[0], params[1], params[2])}: {problem}"
    return None


def row_fits(row: Row) -> bool:
    """The integers of `row` within their bounds (a quick test per row; `row_problem` says why not)."""
    ints = (row.end_ns, row.ttft_us or 0, *row.tokens, *row.costs, row.list_cost)
    return (min(ints) >= INT64_MIN and max(ints) <= INT64_MAX and row.duration_us <= MAX_DURATION_US
            and row.weight_micro <= MAX_WEIGHT_MICRO and row.duration_us >= INT64_MIN
            and row.weight_micro >= INT64_MIN and 0 <= row.unpriced <= UINT8_MAX
            and 0 <= row.cache_write_1h <= UINT8_MAX)


def row_problem(row: Row) -> str | None:
    """Why a ledger cannot store `row`, or None (the ClickHouse writer checks every row before its spool)."""
    checks = [
        _int("end_ns", row.end_ns), _blob("trace_id", row.trace_id), _blob("span_id", row.span_id),
        _blob("parent_span_id", row.parent_span_id),
        labelset_problem(row.labels, row.dims),
        _text("conversation", row.conversation), _text("user", row.user),
        _int("duration_us", row.duration_us, high=MAX_DURATION_US),
        None if row.ttft_us is None else _int("ttft_us", row.ttft_us),
        *(_int("tokens", v) for v in row.tokens), *(_int("cost", v) for v in row.costs),
        _int("list_cost", row.list_cost), *(_text("price", v) for v in row.price),
        _int("unpriced", row.unpriced, 0, UINT8_MAX), _text("unmetered", row.unmetered),
        _text("invalid", row.invalid), _int("weight_micro", row.weight_micro, high=MAX_WEIGHT_MICRO),
        _int("cache_write_1h", row.cache_write_1h, 0, UINT8_MAX),
    ]
    problem = next((c for c in checks if c), None)
    return None if problem is None else f"{describe_call(row.end_ns, row.trace_id, row.span_id)}: {problem}"


def labelset_problem(labels: Sequence[object], dims: Sequence[tuple[object, object]]) -> str | None:
    """Why a label set (LABEL_FIELDS values, (dimension, value) pairs) cannot be stored, or None."""
    for i, value in enumerate(labels):
        problem = _text(f"label {i}", value)
        if problem:
            return problem
    for name, value in dims:
        problem = _text("dimension name", name) or _text(f"dimension {str(name)[:40]!r}", value)
        if problem:
            return problem
    return None
