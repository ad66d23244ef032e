"""Savings advice from the ledger's real volumes and the price book (last 30 days by default).

- cheaper models: for each (feature or service, provider, model), what the same tokens would cost
  on the cheaper catalog models of the same provider and modality (chat vs embeddings), each class
  at the candidate's rate for the traffic's mean prompt size, plus its per-request fee;
- prompt cache: savings realised (cache reads x (input rate - cache-read rate)) and what a cache-hit
  ratio of `target` would save on top (same difference on the tokens moved to cache reads; cache
  write surcharges not counted);
- unpriced models: calls no price matched, to add to the overrides file.
Each item carries its figures and the report query that shows the traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import urlencode

from genai_meter.ledger.model import LedgerReader, Totals
from genai_meter.money import to_pico, usd_text
from genai_meter.periods import NS
from genai_meter.pricing import PriceBook
from genai_meter.pricing.rates import Rates
from genai_meter.reports.render.tables import ratio

MIN_SAVING_SHARE = Decimal("0.10")  # candidates cheaper by less than this are not advised
CANDIDATES = 3  # cheaper models listed per item
EMBEDDING_OPS = frozenset({"embeddings", "embedding"})


def _modality(model_id: str, operation: str = "") -> str:
    text = model_id.lower()
    if operation in EMBEDDING_OPS or "embed" in text:
        return "embedding"
    if any(word in text for word in ("image", "dall-e", "tts", "whisper", "audio", "realtime", "transcribe",
                                     "moderation", "search", "sora")):
        return "other"
    return "text"


def _cost_at(rates: Rates, t: Totals) -> int:
    """Pico-dollars of `t`'s tokens at `rates` (per class, half-even once per class)."""
    total = 0
    for cls in ("input", "cache_read", "cache_write", "output", "reasoning"):
        n = t.tokens.get(cls, 0)
        if n:
            total += to_pico(getattr(rates, cls) * n / Decimal(1_000_000))
    return total + to_pico(rates.per_request * t.calls)


def _candidates(book: PriceBook, provider: str, model: str, modality: str) -> Iterator[str]:
    found = book.catalog.find_provider(provider, model)
    if found is None:
        return
    for info in found.models:
        if info.deprecated or _modality(info.id) != modality or info.id.lower() == model.lower():
            continue
        yield info.id


def _query(**filters: str) -> str:
    """The report that shows the traffic behind an item (last 30 days)."""
    return "/api/v1/reports/detailed?" + urlencode({"range": "30d", **filters})


def cheaper_models(reader: LedgerReader, book: PriceBook, filters: dict[str, list[str]], start: int, end: int,
                   group_field: str) -> list[dict[str, object]]:
    """Items advising cheaper models, largest saving first."""
    at = datetime.fromtimestamp(end // NS, UTC).replace(tzinfo=None)
    rows = reader.totals(start, end, filters, [group_field, "provider", "model", "operation"])
    items = []
    for t in rows:
        group, provider, model, operation = t.key
        actual = t.cost_total_pico
        if actual <= 0 or t.calls == 0:
            continue
        modality = _modality(model, operation)
        if modality == "other":
            continue
        mean_prompt = (t.tokens.get("input", 0) + t.tokens.get("cache_read", 0) + t.tokens.get("cache_write", 0)) \
            // t.calls
        options = []
        for candidate in _candidates(book, provider, model, modality):
            quote = book.quote(provider, candidate, at, input_total=mean_prompt)
            if quote is None or (quote.rates.input == 0 and quote.rates.output == 0):
                continue
            would = _cost_at(quote.rates, t)
            saving = actual - would
            if saving > 0 and ratio(saving, actual) >= MIN_SAVING_SHARE:
                options.append((saving, candidate, would, quote.plan.entry))
        options.sort(key=lambda o: (-o[0], o[1]))
        if not options:
            continue
        best = options[0]
        items.append({
            "kind": "cheaper_model", group_field: group, "provider": provider, "model": model,
            "operation": operation, "calls": t.calls, "tokens": dict(t.tokens), "cost_usd": usd_text(actual),
            "saving_usd": usd_text(best[0]), "saving_pct": f"{ratio(best[0], actual) * 100:f}",
            "alternatives": [{"model": c, "cost_usd": usd_text(w), "saving_usd": usd_text(s),
                              "saving_pct": f"{ratio(s, actual) * 100:f}", "price_entry": e}
                             for s, c, w, e in options[:CANDIDATES]],
            "query": _query(**{group_field: group, "provider": provider, "model": model}),
        })
    items.sort(key=lambda i: -Decimal(str(i["saving_usd"])))
    return items


def cache_savings(reader: LedgerReader, book: PriceBook, filters: dict[str, list[str]], start: int, end: int,
                  target: Decimal) -> list[dict[str, object]]:
    """Per (provider, model): cache savings realised and possible at a `target` hit ratio."""
    at = datetime.fromtimestamp(end // NS, UTC).replace(tzinfo=None)
    items = []
    for t in reader.totals(start, end, filters, ["provider", "model"]):
        provider, model = t.key
        read, plain, write = t.tokens.get("cache_read", 0), t.tokens.get("input", 0), t.tokens.get("cache_write", 0)
        prompt = read + plain + write
        if prompt == 0 or t.calls == 0:
            continue
        quote = book.quote(provider, model, at, input_total=prompt // t.calls)
        if quote is None or quote.rates.cache_read >= quote.rates.input:
            continue
        diff = quote.rates.input - quote.rates.cache_read
        realised = to_pico(diff * read / Decimal(1_000_000))
        hit = ratio(read, prompt)
        more = int((target * prompt).to_integral_value(rounding=ROUND_HALF_EVEN)) - read
        moved = max(0, min(more, plain))
        potential = to_pico(diff * moved / Decimal(1_000_000))
        if realised == 0 and potential == 0:
            continue
        items.append({
            "kind": "prompt_cache", "provider": provider, "model": model, "calls": t.calls,
            "cache_hit_ratio": f"{hit:f}", "target_hit_ratio": f"{target:f}",
            "input_rate_usd_per_mtok": f"{quote.rates.input:f}", "cache_read_rate_usd_per_mtok":
                f"{quote.rates.cache_read:f}", "realised_saving_usd": usd_text(realised),
            "saving_usd": usd_text(potential), "saving_pct": f"{ratio(potential, t.cost_total_pico) * 100:f}",
            "cost_usd": usd_text(t.cost_total_pico),
            "query": _query(provider=provider, model=model),
        })
    items.sort(key=lambda i: -Decimal(str(i["saving_usd"])))
    return items


def unpriced_models(reader: LedgerReader, filters: dict[str, list[str]], start: int,
                    end: int) -> list[dict[str, object]]:
    """Models with calls that no price matched."""
    out = []
    for t in reader.totals(start, end, filters, ["provider", "model"]):
        if t.unpriced:
            out.append({"kind": "unpriced_model", "provider": t.key[0], "model": t.key[1], "calls": t.unpriced,
                        "tokens": dict(t.tokens), "saving_usd": "0", "saving_pct": "0",
                        "fix": "add a price for this model to the pricing overrides file",
                        "query": _query(provider=t.key[0], model=t.key[1])})
    return out
