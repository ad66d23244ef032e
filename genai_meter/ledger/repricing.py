"""What re-pricing computes for one stored call, whatever the backend: the new cost from the stored
token counts with today's price book, and the run's totals (old, new, by model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from genai_meter.ledger.rows import NO_PRICE, Price, cost_pico, price_of
from genai_meter.ledger.units import ESTIMATE, FLAG, UnitAmount, split_context, unit_amounts, units_cost
from genai_meter.money import from_pico
from genai_meter.pricing import PriceBook
from genai_meter.pricing.rates import pico_in_range
from genai_meter.records import LLMCall, TokenCounts


@dataclass
class RepriceResult:
    """Old and new totals (pico USD) of the calls in scope, and by (provider, model)."""

    calls: int = 0  # calls examined (invalid calls are never priced and not counted)
    changed: int = 0  # calls whose cost or price entry changes
    out_of_range: int = 0  # calls kept at their old cost: the new one is beyond the ledger's Int64 (pico_in_range)
    old_total_pico: int = 0
    new_total_pico: int = 0
    by_model: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    reprice_id: int | None = None  # the run id when applied

    def lines(self) -> list[str]:
        """Human-readable summary: totals and the difference by model."""
        out = [f"calls {self.calls}, changed {self.changed}",
               f"old total USD {from_pico(self.old_total_pico):f}", f"new total USD {from_pico(self.new_total_pico):f}",
               f"difference USD {from_pico(self.new_total_pico - self.old_total_pico):f}"]
        if self.out_of_range:
            out.append(f"calls kept at their old cost, the new one being 2^63 * 10^-12 USD or more (check the "
                       f"prices): {self.out_of_range}")
        for (provider, model), (old, new) in sorted(self.by_model.items()):
            out.append(f"  {provider}/{model}: {from_pico(old):f} -> {from_pico(new):f} "
                       f"({from_pico(new - old):+f})")
        return out


class NewPrice(NamedTuple):
    costs: tuple[int, int, int, int, int, int]
    list_cost: int
    price: Price
    unpriced: int
    units: tuple[UnitAmount, ...] = ()  # the call's billed units with their new costs, and its flags


class Repricer:
    """Prices stored calls again and keeps the run's totals in `result`."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self.catalog = PriceBook(book.catalog)
        self.result = RepriceResult()

    def reprice(self, labels: tuple[str, ...], tokens: tuple[int, ...], end_ns: int, cache_write_1h: bool,
                old_costs: tuple[int, ...], old_price: Price | None, dims: Mapping[str, str] | None = None,
                old_units: Sequence[UnitAmount] = ()) -> NewPrice | None:
        """The call's new price, or None when neither its costs, its units' costs nor its price entry change,
        or when the new cost (a class, a unit, the total or the catalog's list cost) is 2^63 * 10^-12 USD or
        more: the call keeps its old cost and price, counted in `result.out_of_range` (the ledger's Int64
        cannot hold it). The call is priced in its stored context (`dims`: service tier, batch) with its
        stored units (`old_units`; its estimate flag is kept)."""
        _, tier, batch = split_context(dims or {})
        estimate = next((n[len(ESTIMATE):] for n, _, _ in old_units if n.startswith(ESTIMATE)), "")
        call = LLMCall(service=labels[0], environment=labels[1], provider=labels[2], model=labels[3],
                       operation=labels[5], status=labels[6], error_type=labels[7], duration_s=0.0, ttft_s=None,
                       tokens=TokenCounts(*tokens), end_ns=end_ns, cache_write_1h=cache_write_1h, service_tier=tier,
                       batch=batch, units={n: q for n, q, _ in old_units if not n.startswith(FLAG)}, estimate=estimate)
        cost = self.book.cost(call)
        new = cost_pico(cost)
        units = unit_amounts(call, cost)
        price = NO_PRICE if cost is None else price_of(cost)
        r = self.result
        old_total = sum(old_costs) + units_cost(old_units)
        changed = new != tuple(old_costs) or price != old_price or units != tuple(sorted(old_units))
        new_total = sum(new) + units_cost(units)
        list_cost = 0
        if changed:
            catalog_cost = self.catalog.cost(call) if cost is not None and cost.price_source != "genai-prices" else cost
            catalog = cost_pico(catalog_cost)
            catalog_units = tuple(catalog_cost.unit_pico.values()) if catalog_cost is not None else ()
            list_cost = sum(catalog) + sum(catalog_units)
            if not (pico_in_range((*new, *(c for _, _, c in units))) and pico_in_range((*catalog, *catalog_units))):
                r.out_of_range += 1  # the ledger's Int64 cannot hold it
                changed, new_total = False, old_total
        o, n = r.by_model.get((labels[2], labels[3]), (0, 0))
        r.by_model[(labels[2], labels[3])] = (o + old_total, n + new_total)
        r.calls += 1
        r.old_total_pico += old_total
        r.new_total_pico += new_total
        if not changed:
            return None
        r.changed += 1
        return NewPrice(new, list_cost, price, int(cost is None), units)
