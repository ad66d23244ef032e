"""Dated exchange rates (USD base) and the exact conversion of USD amounts into another currency.

The ledger and every metric stay in USD (integers of 10^-12 USD). A report in another currency
converts with an `FxTable` built from `pricing.fx` (docs/pricing.md "Currencies"), by this rule:

- **Which rate.** A call converts at the rate of its own day (its end time, UTC). A day without a
  published rate (a weekend, a holiday) takes the newest rate published before it, at most
  `max_gap_days` earlier; a rate is never taken from a later day.
- **Summing.** Costs are summed per day in USD first (exact), each day's total is converted at that
  day's rate (exact), and the converted days are added exactly.
- **Rounding.** Once, half-even (banker's rounding), at the end, at the stated quantum: 10^-12 of the
  currency by default, or the currency's minor unit (`Decimal("0.01")`) for an invoice line.

A missing rate is an `FxError` naming the currency and the day, never a silent 1 or a stale rate.
The module is pure: the loaders take text or parsed data, `load_fx` alone reads the configured file.
"""

from __future__ import annotations

import csv
import io
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import yaml

from genai_meter.config import Config, ConfigError

USD = "USD"
PICO_QUANTUM = Decimal("1e-12")  # the default rounding quantum: 10^-12 of the currency
_CODE = re.compile(r"^[A-Z]{3}$")
_PICO = 10**12

Rates = dict[str, list[tuple[date, Decimal]]]  # currency -> (day, units of the currency per USD), ascending


class FxError(ValueError):
    """No usable rate for a currency on a day (the message names both)."""


@dataclass(frozen=True)
class FxTable:
    """Exchange rates by currency and day, USD base: `rate` units of the currency per US dollar."""

    rates: Mapping[str, tuple[tuple[date, Decimal], ...]]  # ascending days, one rate per day
    max_gap_days: int = 7

    @classmethod
    def of(cls, rates: Mapping[str, Mapping[date, Decimal]], max_gap_days: int = 7) -> FxTable:
        """A table from {currency: {day: rate}}."""
        return cls({code: tuple(sorted(days.items())) for code, days in rates.items()}, max_gap_days)

    @property
    def currencies(self) -> list[str]:
        return sorted(self.rates)

    def rate(self, currency: str, day: date) -> Decimal:
        """Units of `currency` per USD on `day`: that day's rate, else the newest within `max_gap_days`
        before it. USD is 1. Raises FxError."""
        if currency == USD:
            return Decimal(1)
        series = self.rates.get(currency)
        if not series:
            known = ", ".join(self.currencies) or "none"
            raise FxError(f"no exchange rate for {currency} (pricing.fx has rates for: {known})")
        index = bisect_right(series, day, key=lambda item: item[0]) - 1
        if index < 0:
            raise FxError(f"no {currency} rate on or before {day.isoformat()} (the first is of "
                          f"{series[0][0].isoformat()})")
        published, value = series[index]
        if day - published > timedelta(days=self.max_gap_days):
            raise FxError(f"no {currency} rate for {day.isoformat()}: the newest before it is of "
                          f"{published.isoformat()}, more than {self.max_gap_days} days earlier "
                          "(pricing.fx.max_gap_days)")
        return value

    def exact(self, usd_pico: int, currency: str, day: date) -> Fraction:
        """`usd_pico` (10^-12 USD) in `currency` at `day`'s rate, exactly (not rounded)."""
        return Fraction(usd_pico, _PICO) * Fraction(self.rate(currency, day))

    def convert(self, usd_pico: int, currency: str, day: date, quantum: Decimal = PICO_QUANTUM) -> Decimal:
        """One amount converted at `day`'s rate, rounded once half-even to `quantum`."""
        return round_to(self.exact(usd_pico, currency, day), quantum)

    def convert_days(self, usd_pico_by_day: Mapping[date, int], currency: str,
                     quantum: Decimal = PICO_QUANTUM) -> Decimal:
        """Daily USD totals converted each at its day's rate, added exactly, rounded once half-even."""
        total = sum((self.exact(pico, currency, day) for day, pico in usd_pico_by_day.items()), Fraction(0))
        return round_to(total, quantum)


def round_to(amount: Fraction, quantum: Decimal) -> Decimal:
    """`amount` rounded half-even to a multiple of `quantum`, a power of ten (1, 0.01, 1E-12), exactly."""
    sign, digits, exponent = quantum.normalize().as_tuple()
    if sign or digits != (1,) or not isinstance(exponent, int):
        raise ValueError(f"a rounding quantum is a positive power of ten (0.01, 1E-12), got {quantum}")
    steps = round(amount / Fraction(quantum))  # Fraction rounds half to even
    return Decimal(f"{steps}E{exponent}")  # built from text: exact at any size


def _rate(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a decimal rate, got {value!r}")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: expected a decimal rate, got {value!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise ConfigError(f"{where}: a rate must be a positive number, got {value!r}")
    return rate


def _day(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: expected a date (2026-11-02), got {value!r}") from None


def _code(value: Any, where: str) -> str:
    code = str(value).strip()
    if not _CODE.match(code):
        raise ConfigError(f"{where}: expected an ISO 4217 currency code (EUR), got {value!r}")
    if code == USD:
        raise ConfigError(f"{where}: USD is the base currency (its rate is 1); list other currencies")
    return code


def _add(rates: Rates, code: str, day: date, rate: Decimal) -> None:
    rates.setdefault(code, []).append((day, rate))


def parse_mapping(data: Any, source: str) -> Rates:
    """{day: {currency: rate}} (YAML or the inline config) -> rates. Raises ConfigError naming the entry."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of dates to {{currency: rate}}, got {type(data).__name__}")
    rates: Rates = {}
    for raw_day, by_code in data.items():
        day = _day(raw_day, f"{source}: {raw_day}")
        if not isinstance(by_code, Mapping):
            raise ConfigError(f"{source}: {day}: expected {{currency: rate}}, got {type(by_code).__name__}")
        for raw_code, value in by_code.items():
            code = _code(raw_code, f"{source}: {day}")
            _add(rates, code, day, _rate(value, f"{source}: {day}.{code}"))
    return rates


def parse_csv(text: str, source: str) -> Rates:
    """A CSV with a `date` column and one column per currency (`date,EUR,GBP`); an empty cell is no rate
    that day; lines starting with `#` are comments. Raises ConfigError naming the line and column."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].lstrip().startswith("#")]
    if not rows:
        return {}
    header = [cell.strip() for cell in rows[0]]
    if not header or header[0].lower() != "date" or len(header) < 2:
        raise ConfigError(f"{source}: line 1: the header must be date,<currency>,... (e.g. date,EUR,GBP)")
    codes = [_code(cell, f"{source}: line 1") for cell in header[1:]]
    rates: Rates = {}
    for number, row in enumerate(rows[1:], start=2):
        day = _day(row[0], f"{source}: line {number}")
        if len(row) > len(header):
            raise ConfigError(f"{source}: line {number}: {len(row)} cells, the header has {len(header)}")
        for code, cell in zip(codes, row[1:]):
            if cell.strip():
                _add(rates, code, day, _rate(cell, f"{source}: line {number}, {code}"))
    return rates


def table(rates: Rates, max_gap_days: int, source: str) -> FxTable:
    """An FxTable from parsed rates; a currency with two rates for one day is an error."""
    for code, series in rates.items():
        days = [day for day, _ in series]
        twice = sorted({day for day in days if days.count(day) > 1})
        if twice:
            raise ConfigError(f"{source}: {code} has more than one rate for {twice[0].isoformat()}")
    return FxTable.of({code: dict(series) for code, series in rates.items()}, max_gap_days)


def load_fx(config: Config) -> FxTable | None:
    """The FX table of `pricing.fx` (its file, relative to the config file, plus inline `rates`, which
    win for the same currency and day); None when not configured. Raises ConfigError."""
    fx = config.pricing.fx
    if fx is None:
        return None
    rates: Rates = {}
    if fx.file is not None:
        path = config.resolve_path(fx.file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read exchange rates: {getattr(exc, 'strerror', None) or exc}") from None
        if path.suffix.lower() == ".csv":
            rates = parse_csv(text, str(path))
        else:
            try:
                rates = parse_mapping(yaml.safe_load(text), str(path))
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    inline = parse_mapping({day: dict(codes) for day, codes in fx.rates.items()}, "pricing.fx.rates")
    for code, series in inline.items():
        given = {day for day, _ in series}
        rates[code] = [item for item in rates.get(code, []) if item[0] not in given] + series
    return table(rates, fx.max_gap_days, "pricing.fx")
