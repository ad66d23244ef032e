"""Exact money: USD as integers of 10^-12 USD ("pico-dollars"), the unit the ledger stores.

A cost is rounded half-even to this unit once per cost class, right where it is priced; every
store (metrics, ledger, reports) then adds the same integers, so their totals agree to the last
digit. Decimal is used only to show amounts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PICO_PER_USD = 10**12
PICO = Decimal(1).scaleb(-12)  # the quantum, 0.000000000001


def to_pico(usd: Decimal) -> int:
    """`usd` in 10^-12 USD, rounded half-even."""
    return int(usd.scaleb(12).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_pico(pico: int) -> Decimal:
    """An exact Decimal amount of USD from 10^-12 USD (12 decimal places)."""
    return Decimal(pico).scaleb(-12)


def round_usd(usd: Decimal) -> Decimal:
    """`usd` rounded half-even to the 10^-12 quantum (the value every store adds)."""
    return usd.quantize(PICO, rounding=ROUND_HALF_EVEN)


def usd_text(pico: int, places: int = 12) -> str:
    """A decimal string of `pico` in USD with `places` decimals (half-even when places < 12)."""
    amount = from_pico(pico)
    if places < 12:
        amount = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{amount:f}"
