"""CSV rows with typed cells, each failure one `ReconcileError` naming the file, the row and the column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from genai_meter.reconcile.fields import describe
from genai_meter.reconcile.lines import ReconcileError

_TRUE = frozenset({"true", "yes", "1", "batch"})
_FALSE = frozenset({"false", "no", "0", ""})


class Row:
    """One data row of a CSV file: `cells` by header, `number` counting the header as row 1."""

    __slots__ = ("cells", "number", "where")

    def __init__(self, cells: dict[str, str], where: str, number: int) -> None:
        self.cells = cells
        self.where = where
        self.number = number

    def fail(self, column: str, message: str) -> ReconcileError:
        return ReconcileError(f"{self.where}: row {self.number}, column {column}: {message}")

    def text(self, column: str) -> str:
        return (self.cells.get(column) or "").strip()

    def integer(self, column: str) -> int:
        """A count >= 0; an empty cell is 0."""
        text = self.text(column).replace(",", "").replace("_", "")
        if not text:
            return 0
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.fail(column, f"expected a whole number, got {describe(text)}") from None
        if not value.is_finite() or value != value.to_integral_value():
            raise self.fail(column, f"expected a whole number, got {describe(text)}")
        if value < 0:
            raise self.fail(column, f"expected a count >= 0, got {text}")
        return int(value)

    def amount(self, column: str) -> Decimal | None:
        """An exact decimal amount ("$" and thousands separators allowed); None for an empty cell."""
        text = self.text(column).replace("$", "").replace(",", "")
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            raise self.fail(column, f"expected a decimal amount, got {describe(text)}")
        return value

    def flag(self, column: str) -> bool:
        text = self.text(column).lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise self.fail(column, f"expected true or false, got {describe(text)}")

    def day(self, column: str, fmt: str | None = None) -> date:
        """The UTC day of a date or date-time cell: `fmt` (strptime) or ISO 8601; naive means UTC."""
        text = self.text(column)
        try:
            at = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(column, f"expected a date{' ' + fmt if fmt else ' (ISO 8601)'}, got {describe(text)}") \
                from None
        return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


def read_rows(text: str, where: str, delimiter: str = ",") -> tuple[list[str], Iterator[Row]]:
    """The header and the data rows of CSV `text` (a leading byte-order mark is dropped)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ReconcileError(f"{where}: empty file") from None
    except csv.Error as exc:
        raise ReconcileError(f"{where}: row 1: not CSV: {exc}") from None

    def rows() -> Iterator[Row]:
        number = 1
        try:
            for cells in reader:
                number = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) > len(header):
                    raise ReconcileError(f"{where}: row {number}: {len(cells)} cells, the header has {len(header)}")
                yield Row(dict(zip(header, cells, strict=False)), where, number)
        except csv.Error as exc:
            raise ReconcileError(f"{where}: row {number + 1}: not CSV: {exc}") from None

    return header, rows()


def header_of(text: str, delimiter: str = ",") -> list[str]:
    """The header of CSV `text`, or [] when its first line is not a CSV header."""
    try:
        first = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter), [])
    except csv.Error:
        return []
    return [name.strip() for name in first]
