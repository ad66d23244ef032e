"""What re-pricing computes for one stored call, whatever the backend: the new cost from the stored
token counts with today's price book, and the run's totals (old, new, by model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from genai_meter.ledger.rows import NO_PRICE, Price, cost_pico, price_of
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


class Repricer:
    """Prices stored calls again and keeps the run's totals in `result`."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self.catalog = PriceBook(book.catalog)
        self.result = RepriceResult()

    def reprice(self, labels: tuple[str, ...], tokens: tuple[int, ...], end_ns: int, cache_write_1h: bool,
                old_costs: tuple[int, ...], old_price: Price | None) -> NewPrice | None:
        """The call's new price, or None when neither its costs nor its price entry change, or when the new
        cost (a class, the total or the catalog's list cost) is 2^63 * 10^-12 USD or more: the call keeps
        its old cost and price, counted in `result.out_of_range` (the ledger's Int64 cannot hold it)."""
        call = LLMCall(service=labels[0], environment=labels[1], provider=labels[2], model=labels[3],
                       operation=labels[5], status=labels[6], error_type=labels[7], duration_s=0.0, ttft_s=None,
                       tokens=TokenCounts(*tokens), end_ns=end_ns, cache_write_1h=cache_write_1h)
        cost = self.book.cost(call)
        new = cost_pico(cost)
        price = NO_PRICE if cost is None else price_of(cost)
        r = self.result
        changed = new != tuple(old_costs) or price != old_price
        new_total = sum(new)
        list_cost = 0
        if changed:
            catalog_cost = self.catalog.cost(call) if cost is not None and cost.price_source != "genai-prices" else cost
            catalog = cost_pico(catalog_cost)
            list_cost = sum(catalog)
            if not (pico_in_range(new) and pico_in_range(catalog)):  # the ledger's Int64 cannot hold it
                r.out_of_range += 1
                changed, new_total = False, sum(old_costs)
        o, n = r.by_model.get((labels[2], labels[3]), (0, 0))
        r.by_model[(labels[2], labels[3])] = (o + sum(old_costs), n + new_total)
        r.calls += 1
        r.old_total_pico += sum(old_costs)
        r.new_total_pico += new_total
        if not changed:
            return None
        r.changed += 1
        return NewPrice(new, list_cost, price, int(cost is None))
