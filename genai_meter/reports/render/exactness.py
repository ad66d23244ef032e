"""Whether a money figure is exact, an upper bound or incomplete, and why: one vocabulary for every format.

- `incomplete`: some calls of the figure have no cost in it: no price matched them (`unpriced`) or
  their token counts were implausible (`invalid`, never priced). Wins over `upper_bound`.
- `upper_bound`: some calls are flagged unmetered by the ledger; for `cache_unknown` calls (a source
  that hides cached tokens) all input is priced at the uncached rate. The ledger's sums hold one
  unmetered count, so aggregates count `no_usage` calls here too (per call they are `incomplete`).
- `partial`: some calls are priced only in part: a billed unit without a price, or a service tier or
  batch variant the price list lacks (priced at the standard price); the reasons are counted
  (`caveats`). Below `incomplete`, above `upper_bound`.
- `exact`: none of these. Estimated calls (a split the span could not carry, assumed) are named in
  `caveats` (kind `estimate`) without changing the exactness.

JSON names (stable; the web page reads them): `calls_unpriced` (unpriced + invalid), `calls_upper_bound`,
`calls_partial`, `exactness`, and `caveats`, a list of `{"kind", "calls", "note"}` that can grow new kinds (partly
priced calls, estimates) without changing the other fields. Per call: `priced` and `cost_usd` null
when unpriced.
"""

from __future__ import annotations

from typing import Literal

from genai_meter.contract import UNMETERED_CACHE_UNKNOWN, UNMETERED_NO_USAGE
from genai_meter.ledger.model import CallRow, Totals

Exactness = Literal["exact", "upper_bound", "partial", "incomplete"]
EXACT: Exactness = "exact"
UPPER_BOUND: Exactness = "upper_bound"
PARTIAL: Exactness = "partial"
INCOMPLETE: Exactness = "incomplete"
WORDS: dict[str, str] = {EXACT: "exact", UPPER_BOUND: "upper bound", PARTIAL: "partial", INCOMPLETE: "incomplete"}


def calls_unpriced(totals: Totals) -> int:
    """Calls whose cost the sum leaves out: no price matched, or never priced (invalid token counts)."""
    return totals.unpriced + totals.invalid


def calls_upper_bound(totals: Totals) -> int:
    """Calls flagged unmetered (cache tokens unknown, or no usage reported)."""
    return totals.unmetered


def calls_partial(totals: Totals) -> int:
    """Calls priced only in part (a unit, tier or batch variant without a price)."""
    return totals.units.partial


def exactness_of(unpriced: int, upper_bound: int, partial: int = 0) -> Exactness:
    """`incomplete` when any call is unpriced, else `partial` when any is priced in part, else `upper_bound`
    when any is bounded, else `exact`."""
    if unpriced:
        return INCOMPLETE
    if partial:
        return PARTIAL
    return UPPER_BOUND if upper_bound else EXACT


def exactness(totals: Totals) -> Exactness:
    return exactness_of(calls_unpriced(totals), calls_upper_bound(totals), calls_partial(totals))


def cost_known(totals: Totals) -> bool:
    """False when every call of a non-empty set is unpriced: its cost is unknown, never shown as $0."""
    return not (totals.calls and calls_unpriced(totals) >= totals.calls)


def caveats(totals: Totals) -> list[dict[str, object]]:
    """Why the figure is not exact, one item per reason (empty when exact)."""
    items: list[dict[str, object]] = []
    if totals.unpriced:
        items.append({"kind": "unpriced", "calls": totals.unpriced,
                      "note": "no price matched these calls: their cost is not in the sum"})
    if totals.invalid:
        items.append({"kind": "invalid", "calls": totals.invalid,
                      "note": "implausible token counts: never priced, their cost is not in the sum"})
    if totals.unmetered:
        items.append({"kind": "unmetered", "calls": totals.unmetered,
                      "note": "cache tokens unknown (input priced as uncached: an upper bound) "
                              "or no usage reported"})
    units = totals.units
    if units.partial:
        items.append({"kind": "partial", "calls": units.partial, "reasons": dict(sorted(units.unpriced.items())),
                      "note": "priced in part: these units, tiers or batch variants have no price and are not "
                              "in the sum (tier:<tier> and batch: priced at the standard price)"})
    for assumption, calls in sorted(units.estimates.items()):
        items.append({"kind": "estimate", "calls": calls, "note": f"estimated: {assumption}"})
    return items


def exactness_json(totals: Totals) -> dict[str, object]:
    """The fields every report total and summary carries."""
    return {"calls_unpriced": calls_unpriced(totals), "calls_upper_bound": calls_upper_bound(totals),
            "calls_partial": calls_partial(totals), "exactness": exactness(totals), "caveats": caveats(totals)}


def sentence(totals: Totals) -> str:
    """One line for a document ("" when exact): what the figure leaves out or bounds."""
    parts = []
    unpriced = calls_unpriced(totals)
    if unpriced:
        parts.append(f"{unpriced:,} request{'s' if unpriced != 1 else ''} unpriced (not in the cost)")
    if totals.unmetered:
        parts.append(f"{totals.unmetered:,} request{'s' if totals.unmetered != 1 else ''} with unknown cache "
                     "tokens or no usage (cost an upper bound)")
    partial = calls_partial(totals)
    if partial:
        reasons = ", ".join(sorted(totals.units.unpriced))
        parts.append(f"{partial:,} request{'s' if partial != 1 else ''} priced in part ({reasons}: not in the cost)")
    if not parts:
        return ""
    return f"Cost is {WORDS[exactness(totals)]}: " + "; ".join(parts) + "."


def call_exactness(row: CallRow) -> Exactness:
    """One call: `incomplete` when unpriced, invalid or without usage; `upper_bound` when cache tokens are unknown."""
    if row.unpriced or row.invalid or row.unmetered == UNMETERED_NO_USAGE:
        return INCOMPLETE
    if row.units.partial:
        return PARTIAL
    return UPPER_BOUND if row.unmetered == UNMETERED_CACHE_UNKNOWN else EXACT


def call_priced(row: CallRow) -> bool:
    """A price matched the call (its `cost_usd` is a figure, not null)."""
    return not (row.unpriced or row.invalid)
