"""Savings advice from the ledger's real volumes and the price book (last 30 days by default).

- cheaper models: for each (feature or service, provider, model, operation), what the same tokens
  would cost on a *comparable* model of the same provider: the same family's smaller models
  (`families.smaller_in_family`: gpt-4o -> gpt-4o-mini, claude-sonnet-4-5 -> claude-haiku-4-5) and
  the models `reports.advice.equivalents` names for it; never a model of another line or generation
  on price alone. Embedding models only from the config (their vectors are not interchangeable).
  Each class at the candidate's rate for the traffic's mean prompt size, plus its per-request fee;
  every item states the assumption it rests on;
- prompt cache: savings realised (cache reads x (input rate - cache-read rate)) and what a cache-hit
  ratio of `target` would save on top (same difference on the tokens moved to cache reads; cache
  write surcharges not counted), for traffic whose source reports cached tokens;
- unpriced models: calls no price matched, to add to the overrides file (no saving figure).
A saving is listed only when it reaches both `min_saving_usd` over the window and `min_saving_share`
of the traffic's cost (`reports.advice`). Each item carries its figures and the report query that
shows the traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import urlencode

from genai_meter.config import AdviceConfig
from genai_meter.ledger.model import LedgerReader, Totals
from genai_meter.money import to_pico, usd_text
from genai_meter.periods import NS
from genai_meter.pricing import PriceBook
from genai_meter.pricing.rates import Rates
from genai_meter.reports.insights.families import smaller_in_family
from genai_meter.reports.render.exactness import exactness
from genai_meter.reports.render.tables import ratio

CANDIDATES = 3  # cheaper models listed per item
SAME_FAMILY = "same_family"
CONFIGURED = "configured"
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


def _candidates(book: PriceBook, advice: AdviceConfig, provider: str, model: str,
                modality: str) -> Iterator[tuple[str, str, str]]:
    """(candidate, basis, assumption) for the comparable models of `model`, configured ones first."""
    seen = {model.lower()}
    for switch in advice.equivalents:
        if switch.provider.lower() == provider.lower() and switch.model.lower() == model.lower():
            for alternative in switch.alternatives:
                if alternative.lower() not in seen:
                    seen.add(alternative.lower())
                    yield alternative, CONFIGURED, switch.assumption or (
                        f"{alternative} is configured as comparable to {model} (reports.advice.equivalents)")
    found = book.catalog.find_provider(provider, model)
    if not advice.same_family or modality == "embedding" or found is None:
        return
    for info in found.models:
        if info.deprecated or _modality(info.id) != modality or info.id.lower() in seen:
            continue
        if smaller_in_family(model, info.id):
            seen.add(info.id.lower())
            yield info.id, SAME_FAMILY, (f"{info.id} is a smaller model of {model}'s family: assumes it is good "
                                         "enough for this traffic; check quality on a sample first")


def worth_it(saving: int, cost: int, advice: AdviceConfig) -> bool:
    """A saving reaches both thresholds (and is not zero)."""
    return saving > 0 and saving >= to_pico(advice.min_saving_usd) and ratio(saving, cost) >= advice.min_saving_share


def _query(**filters: str) -> str:
    """The report that shows the traffic behind an item (last 30 days)."""
    return "/api/v1/reports/detailed?" + urlencode({"range": "30d", **filters})


def cheaper_models(reader: LedgerReader, book: PriceBook, filters: dict[str, list[str]], start: int, end: int,
                   group_field: str, advice: AdviceConfig) -> list[dict[str, object]]:
    """Items advising comparable cheaper models, largest saving first."""
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
        for candidate, basis, assumption in _candidates(book, advice, provider, model, modality):
            quote = book.quote(provider, candidate, at, input_total=mean_prompt)
            if quote is None or (quote.rates.input == 0 and quote.rates.output == 0):
                continue
            would = _cost_at(quote.rates, t)
            if worth_it(actual - would, actual, advice):
                options.append((actual - would, candidate, would, quote.plan.entry, basis, assumption))
        options.sort(key=lambda o: (-o[0], o[1]))
        if not options:
            continue
        best = options[0]
        items.append({
            "kind": "cheaper_model", group_field: group, "provider": provider, "model": model,
            "operation": operation, "calls": t.calls, "tokens": dict(t.tokens), "cost_usd": usd_text(actual),
            "exactness": exactness(t), "saving_usd": usd_text(best[0]),
            "saving_pct": f"{ratio(best[0], actual) * 100:f}", "basis": best[4], "assumption": best[5],
            "alternatives": [{"model": c, "cost_usd": usd_text(w), "saving_usd": usd_text(s),
                              "saving_pct": f"{ratio(s, actual) * 100:f}", "price_entry": e, "basis": b,
                              "assumption": a}
                             for s, c, w, e, b, a in options[:CANDIDATES]],
            "query": _query(**{group_field: group, "provider": provider, "model": model}),
        })
    items.sort(key=lambda i: -Decimal(str(i["saving_usd"])))
    return items


def cache_savings(reader: LedgerReader, book: PriceBook, filters: dict[str, list[str]], start: int, end: int,
                  target: Decimal, advice: AdviceConfig) -> list[dict[str, object]]:
    """Per (provider, model): the saving a `target` cache-hit ratio would add to what caching saves already,
    where it reaches the thresholds and the source reports cached tokens."""
    at = datetime.fromtimestamp(end // NS, UTC).replace(tzinfo=None)
    items = []
    for t in reader.totals(start, end, filters, ["provider", "model"]):
        provider, model = t.key
        read, plain, write = t.tokens.get("cache_read", 0), t.tokens.get("input", 0), t.tokens.get("cache_write", 0)
        prompt = read + plain + write
        if prompt == 0 or t.calls == 0 or t.unmetered >= t.calls:  # no call says how much it read from the cache
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
        if not worth_it(potential, t.cost_total_pico, advice):
            continue
        items.append({
            "kind": "prompt_cache", "provider": provider, "model": model, "calls": t.calls,
            "cache_hit_ratio": f"{hit:f}", "target_hit_ratio": f"{target:f}",
            "input_rate_usd_per_mtok": f"{quote.rates.input:f}", "cache_read_rate_usd_per_mtok":
                f"{quote.rates.cache_read:f}", "realised_saving_usd": usd_text(realised),
            "saving_usd": usd_text(potential), "saving_pct": f"{ratio(potential, t.cost_total_pico) * 100:f}",
            "cost_usd": usd_text(t.cost_total_pico), "exactness": exactness(t),
            "assumption": f"assumes prompts share a cacheable prefix so that {target * 100:f} % of input tokens are "
                          "read from the cache; cache-write surcharges and cache lifetimes are not counted",
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
                        "tokens": dict(t.tokens), "fix": "add a price for this model to the pricing overrides file",
                        "query": _query(provider=t.key[0], model=t.key[1])})
    return out
