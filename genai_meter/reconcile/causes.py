"""Why a reconciliation row differs: one cause per row, with a one-line explanation, and what each means.

The cause is decided in this order (docs/reconciliation.md, "Causes"):

1. `unmetered_service`: the ledger has no call of the row at all, the provider reports usage or cost;
2. `ledger_only`: the provider reports nothing of the row (or fewer requests than the ledger holds);
3. `unmetered_calls`: the provider counts more requests than the ledger holds (or, where it counts
   none, more tokens in every class);
4. `token_accounting`: same requests, tokens counted differently (compared as totals for the
   classes the provider folds together), or billed units (audio, images) the ledger does not keep;
5. `price`: same usage, a cost difference beyond `reconcile.tolerance_usd` (tier, batch, price version);
6. `exact`: none of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.money import from_pico
from genai_meter.reconcile.sides import LedgerSide, ProviderSide


@dataclass(frozen=True, slots=True)
class Cause:
    name: str
    title: str
    meaning: str
    action: str  # what to do about it

    def as_dict(self) -> dict[str, str]:
        return {"cause": self.name, "title": self.title, "meaning": self.meaning, "action": self.action}


CAUSES: dict[str, Cause] = {c.name: c for c in (
    Cause("exact", "Exact", "Requests, tokens and cost agree (a cost difference below reconcile.tolerance_usd).",
          "Nothing."),
    Cause("unmetered_calls", "Calls the meter never saw",
          "The provider counts more requests than the ledger holds: calls billed that never reached genai-meter "
          "(failed or timed-out calls billed without usage, a service or key not instrumented, spans sampled away "
          "or refused).",
          "Find the service: split by project or API key (reconcile.match_dimensions); check the LLMUnmeteredCalls "
          "and LLMSampledSpans alerts and the receiver's refusals; instrument what is missing."),
    Cause("price", "Different price",
          "Same usage, a different cost: a service tier (priority, flex, scale) or batch the spans did not carry, "
          "another price version, a negotiated discount, or the provider's own rounding.",
          "Make the calls carry the tier or batch they were billed at (docs/pricing.md, price context); add the "
          "tier, batch or discounted prices to the price overrides; then `genai-meter ledger reprice` those days."),
    Cause("token_accounting", "Tokens counted differently",
          "Same requests, different token counts: cache reads or writes, reasoning, or audio and image tokens "
          "the spans do not report the way the provider bills them.",
          "Check the instrumentation's cache and reasoning attributes (docs/conventions.md); a source that hides "
          "cached tokens makes the ledger an upper bound; audio and image units are not kept in the ledger."),
    Cause("unmetered_service", "Usage outside the metered services",
          "The provider reports usage (or costs) the ledger has no call of for that provider and model: a service, "
          "batch job or playground outside genai-meter, or costs the provider names no model for (credits, "
          "storage, tools).",
          "Send that service's spans to genai-meter (or instrument it); credits and fees without a model are "
          "expected here."),
    Cause("ledger_only", "Only in the ledger",
          "The ledger holds usage the provider does not report: calls through another organization's key, spans "
          "that name the wrong provider, or calls the provider did not bill.",
          "Check the provider the spans name and which key the service uses; import that organization's reports "
          "too."),
)}


def usd(pico: int) -> str:
    """A figure for a sentence: dollars to 6 places, zeros past the cents dropped ($0.0215, -$1.50)."""
    text = f"{abs(from_pico(pico)).quantize(Decimal('0.000001'), rounding=ROUND_HALF_EVEN):f}"
    whole, frac = text.split(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{'-' if pico < 0 else ''}${whole}.{frac}"


def _groups(folded: set[str]) -> list[tuple[str, ...]]:
    """The token classes compared together: a class the provider folds is compared inside its total."""
    inputs = ("input", *(c for c in ("cache_read", "cache_write") if c in folded))
    groups = [inputs, *((c,) for c in ("cache_read", "cache_write") if c not in folded)]
    groups.append(("output", "reasoning") if "reasoning" in folded else ("output",))
    if "reasoning" not in folded:
        groups.append(("reasoning",))
    return groups


def token_gaps(p: ProviderSide, led: LedgerSide) -> list[tuple[str, int, int]]:
    """(classes, provider's count, ledger's count) of every compared group that differs."""
    gaps = []
    for group in _groups(p.folded):
        mine, theirs = sum(p.tokens[c] for c in group), sum(led.tokens[c] for c in group)
        if mine != theirs:
            gaps.append(("+".join(group), mine, theirs))
    return gaps


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _tiers(p: ProviderSide) -> str:
    unit = "request" if p.requests is not None else "line"
    return ", ".join(f"{_plural(n, unit)} at {label}" for label, n in sorted(p.tiers.items()))


def _lacks(p: ProviderSide) -> str:
    return f" (no price for {', '.join(sorted(p.unpriced))}: priced at the standard rate)" if p.unpriced else ""


def decide(p: ProviderSide, led: LedgerSide, difference: int | None, tolerance: int) -> tuple[str, str]:
    """(cause, one-line explanation) of a row; `difference` is the provider's cost minus the ledger's in
    10^-12 USD (None when a side's cost is unknown), `tolerance` the largest difference still exact."""
    off = difference is not None and abs(difference) > tolerance
    gap = f" ({usd(difference)})" if difference is not None and off else ""
    if led.calls == 0:
        what = (f"{_plural(p.requests, 'request')}" if p.requests is not None else "usage") if p.usage_lines else \
            "costs without usage"
        return "unmetered_service", f"the ledger holds no call of this model that day; the provider reports {what}{gap}"
    if not p.present:
        return "ledger_only", f"the provider reports nothing of this model that day; the ledger holds " \
                              f"{_plural(led.calls, 'call')}{gap}"
    if p.usage_lines and p.requests is not None and p.requests != led.calls:
        if p.requests > led.calls:
            return "unmetered_calls", (f"the provider counts {_plural(p.requests, 'request')}, the ledger "
                                       f"{led.calls:,}: {_plural(p.requests - led.calls, 'call')} the meter never "
                                       f"saw{gap}")
        return "ledger_only", (f"the ledger holds {_plural(led.calls - p.requests, 'call')} more than the provider "
                               f"counts ({led.calls:,} against {p.requests:,}){gap}")
    gaps = token_gaps(p, led) if p.usage_lines else []
    if gaps:
        text = "; ".join(f"{name} {mine:,} (provider) against {theirs:,} (ledger)" for name, mine, theirs in gaps)
        if p.requests is None and all(mine >= theirs for _, mine, theirs in gaps):
            return "unmetered_calls", f"more tokens in every differing class and no request count: {text}{gap}"
        bounded = f"; {_plural(led.calls_upper_bound, 'ledger call')} without cached-token counts" \
            if led.calls_upper_bound else ""
        return "token_accounting", f"tokens counted differently: {text}{bounded}{gap}"
    if p.units and off:
        units = ", ".join(f"{n:,} {name}" for name, n in sorted(p.units.items()))
        return "token_accounting", f"the provider also bills {units}, which the ledger does not keep{gap}"
    if difference is None:
        side = "the ledger's calls have" if not led.cost_known else "the provider's usage has"
        return "price", f"same usage; the cost cannot be compared: {side} no price{_lacks(p)}"
    if off:
        higher = "higher" if difference > 0 else "lower"
        how = f"it billed {_tiers(p)}" if p.tiers else "another price version, a discount or the provider's rounding"
        if not p.usage_lines:
            how = "only a cost report covers the day: import its usage report to tell calls from prices"
        return "price", f"same usage, the provider's cost is {usd(abs(difference))} {higher}: {how}{_lacks(p)}"
    counted = "" if p.requests is not None or not p.usage_lines else " (the provider counts no requests)"
    return "exact", f"requests, tokens and cost agree{counted}"
