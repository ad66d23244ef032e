"""Resolved price tables and the cost arithmetic of the hot path.

A `Plan` is everything needed to price a call once the price entry is chosen (catalog model and
period, or override entry): the per-class rates of each prompt-length bracket, and where they came
from. `Plan.cost` is pure arithmetic on plain ints: each rate is resolved once, when its `Rates` is
built, into an integer numerator/denominator of 10^-12 USD per token, so a class's cost is one
multiplication and one half-even division (`pico_cost`): the exact product rounded half-even for any
count, equal to the Decimal product rounded wherever that is exact (tests/pricing/test_pico_pricing.py);
no Decimal arithmetic, no lookups, no locks, no I/O.

Rates are USD per million tokens (`per_request` is USD per request). Both the catalog and the
override file are reduced to the same shape by `build_plan`, so their fallbacks are identical:

- `cache_read` missing -> the input rate (what genai-prices does: the tokens stay in the input leaf);
- `cache_write` (5-minute) missing -> `cache_write_5m` if given, else `cache_write`, else the input rate;
- `cache_write_1h` missing -> the 5-minute cache-write rate chain above (without `cache_write_5m`);
- `reasoning` missing -> the output rate;
- `input` / `output` / `per_request` missing -> 0 (the model is matched, that class is free).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from genai_meter.money import PICO
from genai_meter.pricing.pico import PICO_LIMIT as PICO_LIMIT
from genai_meter.pricing.pico import pico_cost as pico_cost
from genai_meter.pricing.pico import pico_in_range as pico_in_range
from genai_meter.pricing.pico import pico_ratio as pico_ratio
from genai_meter.pricing.unit_prices import NO_UNITS, UnitTable
from genai_meter.records import ZERO, Cost, TokenCounts

# Raw price keys a plan is built from (a subset of genai-prices' price keys, renamed).
RAW_KEYS: tuple[str, ...] = (
    "input", "cache_read", "cache_write", "cache_write_5m", "cache_write_1h", "output", "reasoning",
    "per_request",
)
# The rate columns of a resolved bracket, in display order.
RATE_KEYS: tuple[str, ...] = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")

_PER_TOKEN = -6  # scaleb exponent: USD per million tokens -> USD per token, exact
# A raw price: a base value (None: use the class's fallback) and (start, value) steps that apply
# when the call's total input tokens > start.
Steps = tuple[Decimal | None, tuple[tuple[int, Decimal], ...]]


@dataclass(frozen=True, slots=True)
class Rates:
    """The rates of one prompt-length bracket: USD per million tokens per class, USD per request."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal  # 5-minute cache writes
    cache_write_1h: Decimal
    output: Decimal
    reasoning: Decimal
    per_request: Decimal  # USD per request (not per token)
    # USD per token, derived (exact: a power-of-ten shift), for the hot path
    _t: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)
    # the same per token as (numerator, denominator, token limit) of 10^-12 USD (`pico_ratio`)
    _p: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    _request: tuple[Decimal, int] = field(init=False, repr=False, compare=False)  # the fee rounded, and in pico
    # Cost.unit_prices dicts by which token classes a call used (at most 64), shared by every call
    # that used the same classes: no dict built per call, and the store's "prices unchanged?"
    # check becomes an identity test. Read-only by contract (Cost.unit_prices is never mutated).
    _units: dict[int, dict[str, Decimal]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_t", tuple(getattr(self, key).scaleb(_PER_TOKEN) for key in RATE_KEYS))
        object.__setattr__(self, "_p", tuple(pico_ratio(t) for t in self._t))
        numerator, denominator, _ = pico_ratio(self.per_request)  # USD, not per token: the same arithmetic
        fee = pico_cost(1, numerator, denominator)  # exact for any fee (round_usd raises beyond 28 digits)
        object.__setattr__(self, "_request", (PICO * fee, fee))
        object.__setattr__(self, "_units", {})

    def unit_prices(self, used: int) -> dict[str, Decimal]:
        """The per-million rates of the token classes flagged in `used` (bits: input, cache_read,
        cache_write, output, reasoning, and 32 for 1-hour cache writes). Cached, shared."""
        units = self._units.get(used)
        if units is None:
            units = {}
            if used & 1:
                units["input"] = self.input
            if used & 2:
                units["cache_read"] = self.cache_read
            if used & 4:
                units["cache_write"] = self.cache_write_1h if used & 32 else self.cache_write
            if used & 8:
                units["output"] = self.output
            if used & 16:
                units["reasoning"] = self.reasoning
            self._units[used] = units
        return units

    def as_dict(self) -> dict[str, Decimal]:
        """The per-million-token rates by column (RATE_KEYS), without the request fee."""
        return {key: getattr(self, key) for key in RATE_KEYS}

    def scaled(self, factor: Decimal, divisor: Decimal = Decimal(1)) -> Rates:
        """Every rate times `factor` divided by `divisor` (discounts, currency conversion)."""
        values = {key: getattr(self, key) * factor / divisor for key in RATE_KEYS}
        return Rates(**values, per_request=self.per_request * factor / divisor)


@dataclass(frozen=True, slots=True)
class Plan:
    """A chosen price entry: its rates by bracket and its provenance. Immutable, shared by threads."""

    source: str  # "genai-prices" or "overrides"
    version: str  # catalog version, or the override entry's date (else the override file's version)
    entry: str  # human-readable id of the entry, e.g. "openai/gpt-4o@2026-10-01"
    starts: tuple[int, ...]  # tier thresholds, ascending: bracket i applies when input total > starts[i-1]
    brackets: tuple[Rates, ...]  # len(starts) + 1
    note: str = ""  # provenance text from the override file (note / source)
    units: UnitTable = NO_UNITS  # prices of units beyond the five classes (audio, images, searches ...)

    def rates_for(self, input_total: int) -> Rates:
        """The rates that apply to a call with `input_total` input tokens (incl. cache reads/writes)."""
        return self.brackets[bisect_left(self.starts, input_total)]

    def cost(self, tokens: TokenCounts, cache_write_1h: bool = False, input_total: int = -1) -> Cost:
        """The cost of one call's six classes. Pure arithmetic; never raises for non-negative int counts,
        exact for any count and any (finite) rate. The result may be too large to store (`pico_in_range`):
        the Meter then flags the call invalid (contract.INVALID_COST). `input_total` is the input that
        prompt-length tiers key on when the call has input-token units too (default: the three input classes).

        Each class is rounded half-even to 10^-12 USD once, here, in integers (`pico_cost`); the
        metrics, the ledger and every report add these same values (`Cost.pico`), so they agree to
        the last digit. `by_type` holds the same values as Decimal."""
        n_input, n_read, n_write = tokens.input, tokens.cache_read, tokens.cache_write
        n_output, n_reasoning = tokens.output, tokens.reasoning
        if self.starts:
            total = n_input + n_read + n_write if input_total < 0 else input_total
            rates = self.brackets[bisect_left(self.starts, total)]
        else:
            rates = self.brackets[0]
        p_input, p_read, p_write, p_write_1h, p_output, p_reasoning = rates._p
        used = 0
        if n_input:
            used = 1
        if n_read:
            used |= 2
        if n_write:
            used |= 36 if cache_write_1h else 4
            if cache_write_1h:
                p_write = p_write_1h
        if n_output:
            used |= 8
        if n_reasoning:
            used |= 16
        fee, fee_pico = rates._request
        pico = (pico_cost(n_input, p_input[0], p_input[1]) if n_input else 0,
                pico_cost(n_read, p_read[0], p_read[1]) if n_read else 0,
                pico_cost(n_write, p_write[0], p_write[1]) if n_write else 0,
                pico_cost(n_output, p_output[0], p_output[1]) if n_output else 0,
                pico_cost(n_reasoning, p_reasoning[0], p_reasoning[1]) if n_reasoning else 0, fee_pico)
        by_type = {
            "input": PICO * pico[0] if n_input else ZERO,
            "cache_read": PICO * pico[1] if n_read else ZERO,
            "cache_write": PICO * pico[2] if n_write else ZERO,
            "output": PICO * pico[3] if n_output else ZERO,
            "reasoning": PICO * pico[4] if n_reasoning else ZERO,
            "request": fee,
        }
        units = rates._units.get(used)  # (the cached dict, without a method call)
        return Cost(by_type, self.source, self.version, self.entry,
                    units if units is not None else rates.unit_prices(used), pico)

    def with_custom(self, custom: Mapping[str, Decimal]) -> Plan:
        """A copy whose unit table also prices these custom units (USD per unit)."""
        return replace(self, units=self.units.with_custom(custom)) if custom else self

    def scaled(self, factor: Decimal, divisor: Decimal = Decimal(1), **changes: str) -> Plan:
        """A copy with every rate times `factor` / `divisor`, and new provenance fields."""
        return Plan(
            source=changes.get("source", self.source),
            version=changes.get("version", self.version),
            entry=changes.get("entry", self.entry),
            starts=self.starts,
            brackets=tuple(rates.scaled(factor, divisor) for rates in self.brackets),
            note=changes.get("note", self.note),
            units=self.units.scaled(factor, divisor),
        )


def _value_at(steps: Steps, x: int) -> Decimal | None:
    base, tiers = steps
    value: Decimal | None = base
    for start, price in tiers:  # ascending; the highest start below x wins (genai-prices' "cliff")
        if x > start:
            value = price
    return value


def _rates_from_raw(raw: Mapping[str, Decimal | None]) -> Rates:
    input_rate = raw.get("input")
    if input_rate is None:
        input_rate = ZERO
    cache_write = raw.get("cache_write")
    write_5m = raw.get("cache_write_5m")
    if write_5m is None:
        write_5m = cache_write if cache_write is not None else input_rate
    write_1h = raw.get("cache_write_1h")
    if write_1h is None:
        write_1h = cache_write if cache_write is not None else input_rate
    cache_read = raw.get("cache_read")
    output = raw.get("output")
    if output is None:
        output = ZERO
    reasoning = raw.get("reasoning")
    per_request = raw.get("per_request")
    return Rates(
        input=input_rate,
        cache_read=cache_read if cache_read is not None else input_rate,
        cache_write=write_5m,
        cache_write_1h=write_1h,
        output=output,
        reasoning=reasoning if reasoning is not None else output,
        per_request=per_request if per_request is not None else ZERO,
    )


def build_plan(prices: Mapping[str, Steps], *, source: str, version: str, entry: str, note: str = "",
               units: UnitTable = NO_UNITS) -> Plan:
    """Resolve raw prices (keys from RAW_KEYS, each with optional tiers) into a `Plan`.

    Tiers follow genai-prices: a tier starting at N applies to all tokens of a call whose total input
    (uncached + cache reads + cache writes) is greater than N. The brackets are the union of every
    key's thresholds; within a bracket each key's value is constant, and the fallbacks of the module
    docstring apply per bracket (so a missing cache-read price follows a tiered input price).
    """
    unknown = set(prices) - set(RAW_KEYS)
    if unknown:
        raise ValueError(f"unknown price keys: {', '.join(sorted(unknown))}")
    starts = tuple(sorted({start for _, tiers in prices.values() for start, _ in tiers}))
    representatives = (0,) + tuple(start + 1 for start in starts)  # one input total inside each bracket
    brackets = tuple(
        _rates_from_raw({key: _value_at(steps, x) for key, steps in prices.items()}) for x in representatives
    )
    return Plan(source=source, version=version, entry=entry, starts=starts, brackets=brackets, note=note, units=units)
