"""Typed reading of parsed JSON, each failure one `ReconcileError` naming the file and the field's path.

`Node(value, where, path)` wraps a parsed JSON value (numbers parsed as `Decimal`, so amounts keep the
exact digits the provider wrote); `node.req("results")` descends into a required key, `node.opt(...)`
into an optional one, and `.integer()`, `.text()`, `.flag()`, `.amount()`, `.items()` check the type.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from genai_meter.reconcile.lines import ReconcileError

DAY = timedelta(days=1)


def describe(value: object) -> str:
    """A short form of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Node:
    """A parsed JSON value at `path` of the file (or URL) `where`."""

    __slots__ = ("path", "value", "where")

    def __init__(self, value: object, where: str, path: str = "") -> None:
        self.value = value
        self.where = where
        self.path = path

    def fail(self, message: str) -> ReconcileError:
        return ReconcileError(f"{self.where}: {self.path or '(top level)'}: {message}")

    def _child(self, key: str, value: object) -> Node:
        return Node(value, self.where, f"{self.path}.{key}" if self.path else key)

    def mapping(self) -> dict[str, object]:
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {describe(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def req(self, key: str) -> Node:
        """The value at `key`; missing or null is an error."""
        value = self.mapping().get(key)
        if value is None:
            raise self._child(key, None).fail("missing")
        return self._child(key, value)

    def opt(self, key: str) -> Node | None:
        """The value at `key`, None when missing or null."""
        value = self.mapping().get(key)
        return None if value is None else self._child(key, value)

    def items(self) -> Iterator[Node]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {describe(self.value)}")
        for index, value in enumerate(self.value):
            yield Node(value, self.where, f"{self.path}[{index}]")

    def integer(self) -> int:
        """A non-negative whole number (JSON integer; a bool or a string is refused)."""
        value = self.value
        if isinstance(value, Decimal) and value == value.to_integral_value() and value.is_finite():
            value = int(value)
        if type(value) is not int:
            raise self.fail(f"expected a whole number, got {describe(self.value)}")
        if value < 0:
            raise self.fail(f"expected a count >= 0, got {value}")
        return value

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"expected a string, got {describe(self.value)}")
        return self.value

    def flag(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail(f"expected true or false, got {describe(self.value)}")
        return self.value

    def amount(self) -> Decimal:
        """An exact decimal amount: a JSON number or a decimal string ("123.45")."""
        value = self.value
        if isinstance(value, bool):
            raise self.fail(f"expected a decimal amount, got {describe(value)}")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, Decimal | str):
            try:
                amount = Decimal(value)
            except InvalidOperation:
                amount = Decimal("NaN")
            if amount.is_finite():
                return amount
        raise self.fail(f"expected a decimal amount, got {describe(value)}")

    def unix_time(self) -> datetime:
        """Unix seconds (UTC)."""
        seconds = self.integer()
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise self.fail(f"expected Unix seconds, got {seconds}") from None

    def rfc3339(self) -> datetime:
        """An RFC 3339 date-time with an offset (UTC)."""
        text = self.text()
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise self.fail(f"expected an RFC 3339 date-time, got {describe(text)}") from None
        if at.tzinfo is None:
            raise self.fail(f"expected an RFC 3339 date-time with an offset, got {describe(text)}")
        return at.astimezone(UTC)

    def iso_day(self) -> date:
        text = self.text()
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise self.fail(f"expected a date YYYY-MM-DD, got {describe(text)}") from None


def count(node: Node, key: str) -> int:
    """An optional count: 0 when missing or null."""
    child = node.opt(key)
    return 0 if child is None else child.integer()


def label(node: Node, key: str) -> str:
    """An optional grouping label: "" when missing or null (the report is not split by it)."""
    child = node.opt(key)
    return "" if child is None else child.text()


def bucket_day(node: Node, start: datetime, end: datetime) -> date:
    """The UTC day of a time bucket [start, end), which must lie within that day."""
    if end <= start:
        raise node.fail(f"bucket ends ({end:%Y-%m-%dT%H:%M:%SZ}) before it starts ({start:%Y-%m-%dT%H:%M:%SZ})")
    day = start.date()
    if end > datetime(day.year, day.month, day.day, tzinfo=UTC) + DAY:
        raise node.fail(f"bucket {start:%Y-%m-%dT%H:%M:%SZ}..{end:%Y-%m-%dT%H:%M:%SZ} spans more than one UTC day "
                        "(export with bucket_width 1d, 1h or 1m)")
    return day
