"""Prices in a price context (a service tier, batch) and the cost of a call's units.

`InContext` is what `PriceBook` resolves once per (provider, model, context) for calls that carry a
context: the override entries that match (newest first, each with its own plan in that context, or a
discount on the catalog's) and the catalog model, whose context plans depend on the call's time.
`cost_of` prices a call with a plan: the six classes as `Plan.cost`, each unit with the plan's unit
table, the flags of a context without its own price and the units without a price in
`Cost.unpriced_units`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from genai_meter.pricing.catalog_prices import CatalogModel, PlanFlags, Variant
from genai_meter.pricing.context import PriceContext
from genai_meter.pricing.overrides import ALWAYS, OverrideEntry
from genai_meter.pricing.rates import Plan
from genai_meter.pricing.units import input_tokens_of
from genai_meter.records import Cost, TokenCounts


@dataclass(frozen=True, slots=True)
class ContextCandidate:
    """One matching override entry: its own plan in the context, or (discount-only) None."""

    effective_ns: int
    own: PlanFlags | None
    entry: OverrideEntry


@dataclass(slots=True)
class InContext:
    """Every price that can apply to one (provider, model) in one context, newest override first."""

    context: PriceContext
    candidates: tuple[ContextCandidate, ...]
    catalog: CatalogModel | None
    matching: tuple[Variant, ...] = ()  # the catalog model's variants that the context selects
    # id(catalog plan) -> (that plan, the discount-only entry's plan on it), per candidate index
    _discounted: dict[tuple[int, int], tuple[Plan, Plan]] = field(default_factory=dict)

    def plan_at(self, end_ns: int) -> PlanFlags | None:
        """The plan and flags in force at `end_ns`; None when no price matches."""
        for index, candidate in enumerate(self.candidates):
            if end_ns >= candidate.effective_ns:
                if candidate.own is not None:
                    return candidate.own
                assert self.catalog is not None  # a discount-only candidate exists only with a catalog model
                plan, flags = self.catalog.context_plan(end_ns, self.context, self.matching)
                return self._discount(index, candidate.entry, plan), flags
        if self.catalog is None:
            return None
        return self.catalog.context_plan(end_ns, self.context, self.matching)

    def fixed(self) -> PlanFlags | None:
        """The plan and flags of every call whatever its time (no override entry, or the newest one without
        `from` with a plan of its own, and a catalog whose context prices never change), else None."""
        if self.candidates:
            first = self.candidates[0]
            return first.own if first.effective_ns == ALWAYS and first.own is not None else None
        return None if self.catalog is None else self.catalog.fixed_in(self.context, self.matching)

    def _discount(self, index: int, entry: OverrideEntry, plan: Plan) -> Plan:
        key = (index, id(plan))
        hit = self._discounted.get(key)
        if hit is not None and hit[0] is plan:
            return hit[1]
        discounted = entry.on_catalog(plan)
        if len(self._discounted) < 1024:
            self._discounted[key] = (plan, discounted)
        return discounted


def cost_of(plan: Plan, tokens: TokenCounts, cache_write_1h: bool, units: Mapping[str, int],
            flags: tuple[str, ...] = ()) -> Cost:
    """The cost of a call with `plan`: its classes, each of its `units` (`Cost.unit_pico`), and the flags
    and unpriced units (`Cost.unpriced_units`: the call is partly priced). Prompt-length tiers key on
    the whole input: the three input classes plus the input-token units (audio, image ...)."""
    if not units:
        cost = plan.cost(tokens, cache_write_1h)
        if flags:
            cost.unpriced_units = flags
        return cost
    input_total = tokens.input + tokens.cache_read + tokens.cache_write + input_tokens_of(units)
    cost = plan.cost(tokens, cache_write_1h, input_total)
    cost.unit_pico, unpriced = plan.units.cost(units, input_total)
    cost.unpriced_units = flags + unpriced
    return cost
