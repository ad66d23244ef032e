"""Exact money arithmetic of the hot path: prices as integer ratios of 10^-12 USD, costs rounded half-even.

A price (a finite Decimal) per token or per `per` units becomes a (numerator, denominator) pair once,
when a plan is built; the cost of n units is then n * numerator / denominator rounded half-even to an
integer of 10^-12 USD (`pico_cost`): exact for any count and any finite price, no Decimal context.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from math import gcd

_PREC = 28  # digits of Decimal's default context: below it the Decimal product `rate * tokens` is exact
# A cost in 10^-12 USD must stay below this in magnitude, each class and a call's total (list_cost): the
# ledger stores them as SQLite / ClickHouse Int64. A call priced at or above it (2^63 pico, about 9.2M USD
# for one call) is invalid (contract.INVALID_COST): never priced, never stored with that cost.
PICO_LIMIT = 1 << 63


def pico_in_range(pico: Sequence[int]) -> bool:
    """Whether each of a call's class costs (10^-12 USD) and their sum are in -2^63 < x < 2^63."""
    total = sum(pico)
    return -PICO_LIMIT < total < PICO_LIMIT and max(pico) < PICO_LIMIT and min(pico) > -PICO_LIMIT


def pico_ratio(per_token: Decimal) -> tuple[int, int, int]:
    """`per_token` (USD per token, finite) as (numerator, denominator, token limit): the exact cost of
    n tokens is n * numerator / denominator in 10^-12 USD (`pico_cost`, for any n), and for n < limit
    the Decimal product `per_token * n` is exact too (the bulk tally takes only counts below it).
    Raises ValueError for NaN or an infinity (the override file and the catalog never give one)."""
    sign, digits, exponent = per_token.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"a price must be a finite number, got {per_token}")
    coefficient = int("".join(map(str, digits))) * (-1 if sign else 1)
    shift = exponent + 12
    if shift >= 0:
        return coefficient * 10**shift, 1, 10 ** max(0, _PREC - len(digits))
    return coefficient, 10**-shift, 10 ** max(0, _PREC - len(digits))


def pico_cost(tokens: int, numerator: int, denominator: int) -> int:
    """tokens * numerator / denominator rounded half-even to an integer (10^-12 USD)."""
    if denominator == 1:
        return tokens * numerator
    q, r = divmod(tokens * numerator, denominator)
    r += r
    if r > denominator or (r == denominator and q & 1):
        q += 1
    return q


def unit_ratio(price: Decimal, per: int) -> tuple[int, int]:
    """`price` USD per `per` units as (numerator, denominator) of 10^-12 USD per unit, in lowest terms:
    `pico_cost(n, *unit_ratio(price, per))` is n * price / per rounded half-even, exactly. Raises
    ValueError for NaN or an infinity."""
    numerator, denominator, _ = pico_ratio(price)
    denominator *= per
    common = gcd(numerator, denominator)
    return numerator // common, denominator // common
