"""Figures as people read them in documents (PDF, XLSX formats): thousands separators, a fixed number of
decimals per money column, percent signs. Display only: the exact figures stay in the cells (XLSX),
in the exact-totals appendix (PDF) and in JSON/CSV.

A money column's decimals: 2, or more (up to 6) when the column holds a non-zero amount under one cent,
enough to show it with two significant digits, so a priced call never reads as $0.00.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.money import from_pico

MIN_PLACES = 2
MAX_PLACES = 6


def money_places(picos: Iterable[int | None]) -> int:
    """2, or the decimals (up to 6) that show the smallest non-zero amount under a cent with two significant
    digits."""
    places = MIN_PLACES
    cent = Decimal("0.01")
    for pico in picos:
        if not pico:
            continue
        amount = abs(from_pico(pico))
        if amount >= cent:
            continue
        while places < MAX_PLACES and amount < Decimal(1).scaleb(1 - places):
            places += 1
    return places


def _grouped(amount: Decimal, places: int) -> str:
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{rounded:,.{places}f}"


def money(pico: int, places: int = MIN_PLACES) -> str:
    """`$1,234.57`, `-$0.000019`: half-even to `places` decimals; a non-zero amount that would round to
    zero reads `<$0.01` (`> -$0.01` below zero), never `$0.00`."""
    amount = from_pico(pico)
    text = _grouped(abs(amount), places)
    if pico and not text.strip("0.,"):
        smallest = f"0.{'0' * (places - 1)}1"
        return f"<${smallest}" if pico > 0 else f"> -${smallest}"
    return f"-${text}" if amount < 0 else f"${text}"


def exact_money(pico: int) -> str:
    """Every significant decimal of the exact sum (at least two), with thousands separators: `$1,234.567891`."""
    amount = from_pico(pico)
    plain = f"{abs(amount):f}".rstrip("0")
    whole, _, frac = plain.partition(".")
    text = f"{int(whole):,}.{frac.ljust(2, '0')}"
    return f"-${text}" if amount < 0 else f"${text}"


def integer(value: int) -> str:
    return f"{value:,}"


def decimal(value: Decimal, places: int = 2) -> str:
    return _grouped(value, places)


def percent(value: Decimal, places: int = 2) -> str:
    """A value already in percent (10.0047) as `10.00 %`."""
    return f"{_grouped(value, places)} %"


def share(value: Decimal, places: int = 2) -> str:
    """A share (0.25) as `25.00 %`."""
    return percent(value * 100, places)
