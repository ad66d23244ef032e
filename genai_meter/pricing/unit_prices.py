"""The prices of billed units (`LLMCall.units`) for one price entry, and their exact cost.

A `UnitTable` holds what one price entry (catalog model and period and price context, or override
entry) charges for units beyond the five token classes: genai-prices unit prices by usage key, each
per its unit's `per` (USD per million tokens, per thousand searches, per hour of audio ...), with
optional tiers by prompt length, and `custom.<name>` units priced per unit by the override file.

A call's unit is billed at its own price, else at its most specific priced ancestor's (units.priced_as),
else not at all: it is then listed as unpriced and the call is only partly priced. Each unit's cost
is rounded half-even to 10^-12 USD once, in integers, like the token classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from genai_meter.pricing.pico import pico_cost, unit_ratio
from genai_meter.pricing.units import CUSTOM_PREFIX, REQUESTS, UNITS, is_ancestor, priced_as

Ratio = tuple[int, int]  # 10^-12 USD per unit, numerator and denominator
# A unit price: USD per `per` units, and (start, price) tiers that apply when the call's input total > start.
UnitSteps = tuple[Decimal, tuple[tuple[int, Decimal], ...]]


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """What one of a call's units is billed at: the priced unit (itself or an ancestor) and its price."""

    unit: str  # the usage key whose price applies (or the custom unit itself)
    per: int  # the price is USD per this many units
    steps: UnitSteps
    _ratios: tuple[Ratio, tuple[tuple[int, Ratio], ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base, tiers = self.steps
        object.__setattr__(self, "_ratios", (unit_ratio(base, self.per),
                                             tuple((start, unit_ratio(price, self.per)) for start, price in tiers)))

    def price_at(self, input_total: int) -> Decimal:
        """USD per `per` units for a call with `input_total` input tokens (the highest tier below it)."""
        base, tiers = self.steps
        for start, price in reversed(tiers):
            if input_total > start:
                return price
        return base

    def cost(self, count: int, input_total: int) -> int:
        """The cost of `count` units in 10^-12 USD, rounded half-even once."""
        ratio, tiers = self._ratios
        for start, tier_ratio in reversed(tiers):
            if input_total > start:
                ratio = tier_ratio
                break
        return pico_cost(count, ratio[0], ratio[1])


@dataclass(frozen=True, slots=True)
class UnitTable:
    """The unit prices of one price entry. Immutable but for a cache of resolved units (shared by threads:
    a racing miss resolves twice, to the same value)."""

    prices: Mapping[str, UnitSteps] = field(default_factory=dict)  # priced registry usage keys, catalog order
    custom: Mapping[str, Decimal] = field(default_factory=dict)  # custom.<name> -> USD per unit
    # (usage key, least billed count): the units at or below that key are billed at least that many per
    # call when any is reported (Groq's Whisper bills at least 10 seconds: genai-prices' rule)
    minimum: tuple[str, int] | None = None
    _resolved: dict[str, UnitPrice | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    def price_of(self, unit: str) -> UnitPrice | None:
        """What `unit` (a usage key or custom.<name>) is billed at; None: it has no price here."""
        try:
            return self._resolved[unit]
        except KeyError:
            pass
        found: UnitPrice | None = None
        if unit.startswith(CUSTOM_PREFIX):
            price = self.custom.get(unit)
            if price is not None:
                found = UnitPrice(unit, 1, (price, ()))
        elif unit != REQUESTS:
            key = priced_as(unit, self.prices)
            if key is not None:
                found = UnitPrice(key, UNITS[key].per, self.prices[key])
        if len(self._resolved) < 4096:  # span-given names: bounded
            self._resolved[unit] = found
        return found

    def cost(self, units: Mapping[str, int], input_total: int) -> tuple[dict[str, int], tuple[str, ...]]:
        """({unit: cost in 10^-12 USD} for each priced unit of `units`, the sorted units without a price).
        Units with a zero count are in neither (they bill nothing, priced or not)."""
        billed = self._billed(units) if self.minimum is not None else units
        costs: dict[str, int] = {}
        unpriced: list[str] = []
        for unit, count in billed.items():
            if not count:
                continue
            price = self.price_of(unit)
            if price is None:
                unpriced.append(unit)
            else:
                costs[unit] = price.cost(count, input_total)
        return costs, tuple(sorted(unpriced))

    def _billed(self, units: Mapping[str, int]) -> Mapping[str, int]:
        assert self.minimum is not None
        family, least = self.minimum
        under = sorted(key for key, count in units.items() if count and key in UNITS and is_ancestor(family, key))
        total = sum(units[key] for key in under)
        if not under or total >= least:
            return units
        billed = dict(units)
        billed[under[0]] += least - total  # the shortfall, on the first such unit reported
        return billed

    def scaled(self, factor: Decimal, divisor: Decimal = Decimal(1)) -> UnitTable:
        """Every price times `factor` divided by `divisor` (discounts, currency conversion)."""
        def scale(value: Decimal) -> Decimal:
            return value * factor / divisor
        prices = {key: (scale(base), tuple((start, scale(price)) for start, price in tiers))
                  for key, (base, tiers) in self.prices.items()}
        return UnitTable(prices, {key: scale(value) for key, value in self.custom.items()}, self.minimum)

    def with_custom(self, custom: Mapping[str, Decimal]) -> UnitTable:
        """A copy whose custom units are `custom` added to (and replacing) this table's."""
        if not custom:
            return self
        return UnitTable(self.prices, {**self.custom, **custom}, self.minimum)


NO_UNITS = UnitTable()
