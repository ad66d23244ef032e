"""What a call counts beyond its five token classes: its billed units, and the flags of a cost that is not
exact (docs/metrics.md).

- Token units (`input_audio_tokens`, `cache_write_1h_tokens`, `output_image_tokens` ...) count in the
  tokens family with `token_type` = the unit; every other unit (`web_searches`, `audio_seconds`,
  `custom.<name>`) in the units family with `unit` = the unit; each unit's cost in the cost family with
  `cost_type` = the unit. So the cost family sums to every call's `Cost.total`.
- Unit label values are bounded: genai-prices' usage keys, and the custom units the override file
  prices (`UnitLabels.admit`); any other custom unit is counted under `__overflow__`.
- The price gauge shows list prices: only a call priced in the standard context (`at_list_price`) sets it,
  so tiered and batch calls, in any order, never change it.
- A priced call whose `Cost.unpriced_units` is not empty counts once per reason in the partially-priced
  family (`service_tier`, `batch`, `unit`); a call with `LLMCall.estimate` in the estimated family.

Not thread-safe: called by `CallCounter._count` under its owner's lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from genai_meter import contract
from genai_meter.exporters.series import CounterTable
from genai_meter.pricing.context import BATCH_FLAG, STANDARD_TIERS, TIER_FLAG
from genai_meter.records import LLMCall


class UnitLabels:
    """The bounded label value of each unit: registry usage keys and the admitted custom units as they are,
    any other unit `__overflow__`."""

    def __init__(self) -> None:
        self._custom: frozenset[str] = frozenset()

    def admit(self, custom: Iterable[str]) -> None:
        """The custom units that keep their own label (the override file's)."""
        self._custom = frozenset(custom)

    def label(self, unit: str) -> str:
        if unit in contract.REGISTRY_UNITS or unit in self._custom:
            return unit
        return contract.OVERFLOW


def count_units(labels: tuple[str, ...], units: Mapping[str, int], names: UnitLabels, tokens: CounterTable,
                quantities: CounterTable, weight: float | None) -> int:
    """Add a call's unit quantities (token units to `tokens`, the others to `quantities`); returns the
    tokens among them (for token budgets)."""
    token_total = 0
    for unit, count in units.items():
        if count <= 0:
            continue
        amount = count if weight is None else count * weight
        if unit in contract.TOKEN_UNITS:
            tokens.add(labels + (unit,), amount)
            token_total += count
        else:
            quantities.add(labels + (names.label(unit),), amount)
    return token_total


def count_unit_costs(labels: tuple[str, ...], unit_pico: Mapping[str, int], names: UnitLabels, cost: CounterTable,
                     weight: Decimal | None) -> None:
    """Add the cost of each of a call's units (10^-12 USD) to the cost family."""
    for unit, pico in unit_pico.items():
        if pico > 0:
            cost.add(labels + (names.label(unit),), pico if weight is None else pico * weight)


def partial_reasons(unpriced: tuple[str, ...]) -> tuple[str, ...]:
    """The partly-priced reasons of `Cost.unpriced_units`, each once, in contract.PARTIAL_REASONS order."""
    found = set()
    for entry in unpriced:
        found.add(contract.PARTIAL_TIER if entry.startswith(TIER_FLAG)
                  else contract.PARTIAL_BATCH if entry == BATCH_FLAG else contract.PARTIAL_UNIT)
    return tuple(reason for reason in contract.PARTIAL_REASONS if reason in found)


def at_list_price(call: LLMCall) -> bool:
    """Whether `call` was priced in the standard context (no tier of its own, no batch)."""
    return not call.batch and call.service_tier in STANDARD_TIERS
