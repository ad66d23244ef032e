"""What a stored call carries beyond its six cost classes: its price context and its billed units.

- **Price context.** The service tier and the batch flag are part of the call's label set, as two
  reserved dimensions (`CONTEXT_FIELDS`: `service_tier`, `batch`; no configured dimension may take
  these names). So both are filters and group-bys of every query, and every rollup keeps them apart,
  with no column of their own. A call without a tier stores none (it groups as "").
- **Billed units.** Each of `LLMCall.units` is stored as (unit name, quantity, cost in 10^-12 USD):
  genai-prices usage keys (`input_audio_tokens`, `web_searches`, ...) and `custom.<name>`, by name, so
  a new unit needs no schema change. The call's flags ride along as units of quantity 1 and cost 0:
  `flag:partial` (priced only in part), `flag:unpriced:<reason>` (each reason of `Cost.unpriced_units`)
  and `flag:estimate:<assumption>` (`LLMCall.estimate`), so the rollups count them per group like any unit.

A call's units are `Row.units`, a sorted tuple of `UnitAmount` (empty for nearly every call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from genai_meter.pricing.units import CUSTOM_PREFIX, UNITS
from genai_meter.records import Cost, LLMCall

CONTEXT_FIELDS: tuple[str, ...] = ("service_tier", "batch")  # reserved dimensions of every label set
BATCH_VALUE = "true"  # the `batch` dimension of a batch call (absent otherwise)
FLAG = "flag:"
PARTIAL = "flag:partial"
UNPRICED = "flag:unpriced:"
ESTIMATE = "flag:estimate:"
UnitAmount = tuple[str, int, int]  # (unit name, quantity, cost in 10^-12 USD)
# Report classes of the billed units, in display order (`unit_class`).
UNIT_CLASSES: tuple[str, ...] = ("audio", "image", "video", "other_tokens", "per_call", "custom", "other")
_PER_CALL_FAMILIES = frozenset({"tool_calls", "rerank", "requests", "messages", "document_pages", "characters"})


def context_dims(call: LLMCall) -> tuple[tuple[str, str], ...]:
    """The call's price context as (dimension, value) pairs, those present only."""
    tier = call.service_tier
    if tier:
        return (("batch", BATCH_VALUE), ("service_tier", tier)) if call.batch else (("service_tier", tier),)
    return (("batch", BATCH_VALUE),) if call.batch else ()


def unit_amounts(call: LLMCall, cost: Cost | None) -> tuple[UnitAmount, ...]:
    """The call's stored units: every billed unit with its cost (0 when it has no price), then its flags."""
    units = call.units
    if not units and (cost is None or not cost.unpriced_units) and not call.estimate:
        return ()
    priced = cost.unit_pico if cost is not None else {}
    out = [(name, int(quantity), int(priced.get(name, 0))) for name, quantity in units.items() if quantity]
    if cost is not None and cost.unpriced_units:
        out.append((PARTIAL, 1, 0))
        out.extend((UNPRICED + reason, 1, 0) for reason in dict.fromkeys(cost.unpriced_units))
    if call.estimate:
        out.append((ESTIMATE + call.estimate, 1, 0))
    return tuple(sorted(out))


def units_cost(units: Iterable[UnitAmount]) -> int:
    """The cost of the billed units (flags cost nothing)."""
    return sum(cost for _, _, cost in units)


def unit_class(name: str) -> str:
    """The report class of a billed unit: its modality (audio, image, video), other token units, per-call
    units (tool calls, searches, requests, pages, characters, messages), custom units, or other."""
    if name.startswith(CUSTOM_PREFIX):
        return "custom"
    unit = UNITS.get(name)
    if unit is None:
        return "other"
    dims = unit.dimensions
    modality = dims.get("modality")
    if modality in ("audio", "image", "video"):
        return str(modality)
    family = dims.get("family")
    if family == "pixels":
        return "image"
    if family == "tokens":
        return "other_tokens"
    return "per_call" if family in _PER_CALL_FAMILIES else "other"


@dataclass(slots=True)
class UnitSums:
    """The units of a set of calls: quantity and cost by unit, and the counts of flagged calls."""

    quantity: dict[str, int] = field(default_factory=dict)  # billed units (no flags)
    cost_pico: dict[str, int] = field(default_factory=dict)
    partial: int = 0  # calls priced only in part
    unpriced: dict[str, int] = field(default_factory=dict)  # reason -> calls
    estimates: dict[str, int] = field(default_factory=dict)  # assumption -> calls

    def add(self, name: str, quantity: int, cost: int) -> None:
        if name.startswith(FLAG):
            if name == PARTIAL:
                self.partial += quantity
            elif name.startswith(UNPRICED):
                reason = name[len(UNPRICED):]
                self.unpriced[reason] = self.unpriced.get(reason, 0) + quantity
            elif name.startswith(ESTIMATE):
                text = name[len(ESTIMATE):]
                self.estimates[text] = self.estimates.get(text, 0) + quantity
            return
        self.quantity[name] = self.quantity.get(name, 0) + quantity
        self.cost_pico[name] = self.cost_pico.get(name, 0) + cost

    def merge(self, other: UnitSums) -> None:
        for name, quantity in other.quantity.items():
            self.add(name, quantity, other.cost_pico.get(name, 0))
        self.partial += other.partial
        for reason, n in other.unpriced.items():
            self.unpriced[reason] = self.unpriced.get(reason, 0) + n
        for text, n in other.estimates.items():
            self.estimates[text] = self.estimates.get(text, 0) + n

    @property
    def cost_total_pico(self) -> int:
        return sum(self.cost_pico.values())

    def by_class(self) -> dict[str, int]:
        """Cost by unit class (`UNIT_CLASSES`), the classes present only."""
        return _by_class(self.cost_pico)

    def quantity_by_class(self) -> dict[str, int]:
        return _by_class(self.quantity)


def _by_class(values: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in values.items():
        cls = unit_class(name)
        out[cls] = out.get(cls, 0) + value
    return {c: out[c] for c in UNIT_CLASSES if c in out}


def sums_of(units: Iterable[UnitAmount]) -> UnitSums:
    out = UnitSums()
    for name, quantity, cost in units:
        out.add(name, quantity, cost)
    return out


def split_context(dims: Mapping[str, str]) -> tuple[dict[str, str], str, bool]:
    """(the configured dimensions, the service tier, batch) of a stored label set's dimensions."""
    if "service_tier" not in dims and "batch" not in dims:
        return dict(dims), "", False
    rest = {k: v for k, v in dims.items() if k not in CONTEXT_FIELDS}
    return rest, dims.get("service_tier", ""), dims.get("batch") == BATCH_VALUE


_INT64 = 2**63


def units_problem(units: Iterable[UnitAmount]) -> str | None:
    """Why the ledger cannot store these units (a name that is not valid Unicode, a number past 64 bits), or None."""
    for name, quantity, cost in units:
        if not isinstance(name, str) or not name:
            return f"unit name {name!r} is not a name"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return f"unit name {name!r} is not valid Unicode"
        for what, value in (("quantity", quantity), ("cost", cost)):
            if not isinstance(value, int) or not -_INT64 <= value < _INT64:
                return f"unit {name}: {what} {value!r} is not a 64-bit integer"
    return None
