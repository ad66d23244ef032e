"""What re-pricing computes for one stored call, whatever the backend: the new cost from the stored
token counts with today's price book, and the run's totals (old, new, by model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from genai_meter.ledger.rows import NO_PRICE, Price, cost_pico, price_of
from genai_meter.money import from_pico
from genai_meter.pricing import PriceBook
from genai_meter.records import LLMCall, TokenCounts


@dataclass
class RepriceResult:
    """Old and new totals (pico USD) of the calls in scope, and by (provider, model)."""

    calls: int = 0  # calls examined (invalid calls are never priced and not counted)
    changed: int = 0  # calls whose cost or price entry changes
    old_total_pico: int = 0
    new_total_pico: int = 0
    by_model: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    reprice_id: int | None = None  # the run id when applied

    def lines(self) -> list[str]:
        """Human-readable summary: totals and the difference by model."""
        out = [f"calls {self.calls}, changed {self.changed}",
               f"old total USD {from_pico(self.old_total_pico):f}", f"new total USD {from_pico(self.new_total_pico):f}",
               f"difference USD {from_pico(self.new_total_pico - self.old_total_pico):f}"]
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
        """The call's new price, or None when neither its costs nor its price entry change."""
        call = LLMCall(service=labels[0], environment=labels[1], provider=labels[2], model=labels[3],
                       operation=labels[5], status=labels[6], error_type=labels[7], duration_s=0.0, ttft_s=None,
                       tokens=TokenCounts(*tokens), end_ns=end_ns, cache_write_1h=cache_write_1h)
        cost = self.book.cost(call)
        new = cost_pico(cost)
        r = self.result
        o, n = r.by_model.get((labels[2], labels[3]), (0, 0))
        r.by_model[(labels[2], labels[3])] = (o + sum(old_costs), n + sum(new))
        r.calls += 1
        r.old_total_pico += sum(old_costs)
        r.new_total_pico += sum(new)
        price = NO_PRICE if cost is None else price_of(cost)
        if new == tuple(old_costs) and price == old_price:
            return None
        r.changed += 1
        catalog_cost = self.catalog.cost(call) if cost is not None and cost.price_source != "genai-prices" else cost
        return NewPrice(new, sum(cost_pico(catalog_cost)), price, int(cost is None))
