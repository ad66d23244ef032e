"""`PriceBook`: the price of one call, from the override file first and then the genai-prices catalog.

Hot path (`cost`): one dict lookup of the resolved (provider, model) -> a few integer comparisons to
pick the price period -> integer arithmetic in `Plan.cost` (10^-12 USD, each class rounded half-even).
Resolution (catalog match, override match, plan building, each rate as an integer ratio) runs once
per distinct (provider, model) and price period and is cached; the cache is bounded
and dropped when genai-prices' auto-update swaps its data. Thread-safe without locks: the cache holds
immutable values and a racing miss only resolves twice.

A call with a price context (a service tier other than the standard one, or batch) or with billed
units takes a second path: its (provider, model, context) is resolved once into an `InContext`
(in_context.py), cached alike, and its units are priced by the plan's unit table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from genai_meter.config import Config
from genai_meter.pricing.catalog import Catalog
from genai_meter.pricing.catalog_prices import CatalogModel, PlanFlags
from genai_meter.pricing.context import STANDARD, STANDARD_TIERS, PriceContext, context_of
from genai_meter.pricing.in_context import ContextCandidate, InContext, cost_of
from genai_meter.pricing.overrides import ALWAYS, NO_OVERRIDES, OverrideEntry, load_overrides
from genai_meter.pricing.rates import Plan, Rates
from genai_meter.pricing.snapshots import stored_source
from genai_meter.records import Cost, LLMCall, TokenCounts

CACHE_MAX = 10_000  # distinct (provider, model) pairs kept resolved; past it the cache starts over
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSEEN = object()
_STANDARD = object()  # a call's tier is a spelling of the standard one: the standard resolution applies


@dataclass(frozen=True, slots=True)
class _Candidate:
    effective_ns: int
    plan: Plan | None  # the entry's own prices
    on_catalog: tuple[Plan, ...] | None  # a discount entry applied to each catalog period's plan


@dataclass(frozen=True, slots=True)
class _Resolved:
    """Every price that can apply to one (provider, model), newest override first."""

    candidates: tuple[_Candidate, ...]
    catalog: CatalogModel | None

    def plan_at(self, end_ns: int) -> Plan | None:
        for candidate in self.candidates:
            if end_ns >= candidate.effective_ns:
                if candidate.plan is not None:
                    return candidate.plan
                assert candidate.on_catalog is not None and self.catalog is not None
                return candidate.on_catalog[self.catalog.index_at(end_ns)]
        if self.catalog is None:
            return None
        return self.catalog.plan_at(end_ns)


@dataclass(frozen=True, slots=True)
class Quote:
    """The price entry that applies to a call, with every class rate (for display)."""

    plan: Plan
    rates: Rates  # the bracket for the call's input total
    flags: tuple[str, ...] = ()  # the context's tier / batch without a price of its own (standard price used)


def to_ns(at: datetime) -> int:
    """A datetime as Unix epoch nanoseconds (naive = UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


class PriceBook:
    """Prices calls: override file entries first, then the genai-prices catalog; None when neither matches.

    `cost` and `price` never return a silent $0 for an unknown model: no match is None (unpriced);
    a matched model whose price is zero is priced $0.
    """

    def __init__(self, catalog: Catalog | None = None, overrides: Sequence[OverrideEntry] = (), *,
                 overrides_version: str = NO_OVERRIDES, updater: Any = None) -> None:
        self.catalog = catalog or Catalog()
        self.overrides = tuple(overrides)
        self.overrides_version = overrides_version  # sha256 prefix of the override file, or "none"
        self._updater = updater  # genai-prices UpdatePrices when auto-update is on
        self._follow = updater is not None
        self._snapshot = self.catalog.snapshot
        self._cache: dict[tuple[str, str], _Resolved | Plan | None] = {}
        # (provider, model, service_tier, batch) as the call gives them -> InContext, None (unpriced) or
        # _STANDARD (the tier is a spelling of the standard one)
        self._in_context: dict[tuple[str, str, str, bool], object] = {}

    @classmethod
    def from_config(cls, config: Config) -> PriceBook:
        """The catalog plus `config.pricing.overrides` (relative to the config file); raises `ConfigError`.

        The catalog is the newest snapshot stored by `genai-meter prices update` (pricing.snapshots),
        else the pinned genai-prices data. Starts genai-prices' background auto-update (which then
        supersedes both) only when `config.pricing.auto_update` is true.
        """
        entries: list[OverrideEntry] = []
        version = NO_OVERRIDES
        if config.pricing.overrides is not None:
            entries, version = load_overrides(config.resolve_path(config.pricing.overrides), config.pricing.currency)
        if config.pricing.auto_update:
            from genai_prices import UpdatePrices

            updater = UpdatePrices()
            updater.start()
            return cls(Catalog(pinned=False), entries, overrides_version=version, updater=updater)
        return cls(Catalog(source=stored_source(config)), entries, overrides_version=version)

    def close(self) -> None:
        """Stop genai-prices' auto-update if this book started it. Idempotent."""
        if self._updater is not None:
            self._updater.stop()
            self._updater = None

    @property
    def catalog_version(self) -> str:
        """The genai-prices package version (+ fetch time when auto-updated data is in use), or the
        label of the stored snapshot in use."""
        return self.catalog.version

    @property
    def catalog_date(self) -> date:
        """The day the catalog's prices date from (its age starts there)."""
        return self.catalog.data_date

    # -- hot path ---------------------------------------------------------------------------------

    def cost(self, call: LLMCall) -> Cost | None:
        """The cost of `call` at its end time in its price context (service tier, batch), units included;
        None when no price matches (unpriced). Never raises for a well-formed call (non-negative int
        counts). A context or unit without a price is listed in `Cost.unpriced_units` (partly priced)."""
        if call.service_tier in STANDARD_TIERS and not call.batch and not call.units:
            resolved = self._cache.get((call.provider, call.model)) if not self._follow else None
            if type(resolved) is Plan:  # the common case, one lookup: a model whose price never changed
                return resolved.cost(call.tokens, call.cache_write_1h)
            return self._cost(call.provider, call.model, call.tokens, call.end_ns, call.cache_write_1h)
        found = self._plan_in(call.provider, call.model, call.service_tier, call.batch, call.end_ns)
        return None if found is None else cost_of(found[0], call.tokens, call.cache_write_1h, call.units, found[1])

    def price(self, provider: str, model: str, tokens: TokenCounts, at: datetime, *, cache_write_1h: bool = False,
              service_tier: str = "", batch: bool = False, units: Mapping[str, int] | None = None) -> Cost | None:
        """The cost of `tokens` (five disjoint classes) and `units` for `model` of `provider` at time `at`
        (naive = UTC) in the price context (`service_tier`, `batch`)."""
        found = self._plan_in(provider, model, service_tier, batch, to_ns(at))
        return None if found is None else cost_of(found[0], tokens, cache_write_1h, units or {}, found[1])

    def _cost(self, provider: str, model: str, tokens: TokenCounts, end_ns: int, cache_write_1h: bool) -> Cost | None:
        plan = self._plan(provider, model, end_ns)
        if plan is None:
            return None
        return plan.cost(tokens, cache_write_1h)

    def _follow_snapshot(self) -> None:
        """With auto-update: drop every resolution when genai-prices swapped its data."""
        if self.catalog.snapshot is not self._snapshot:
            self._snapshot = self.catalog.snapshot
            self._cache = {}
            self._in_context = {}

    def _plan(self, provider: str, model: str, end_ns: int) -> Plan | None:
        if self._follow:
            self._follow_snapshot()
        key = (provider, model)
        resolved = self._cache.get(key, _UNSEEN)
        if resolved is _UNSEEN:
            resolved = self._resolve(provider, model)
            if len(self._cache) >= CACHE_MAX:
                self._cache = {}
            self._cache[key] = resolved
        if resolved is None or isinstance(resolved, Plan):
            return resolved
        assert isinstance(resolved, _Resolved)
        return resolved.plan_at(end_ns)

    def _plan_in(self, provider: str, model: str, service_tier: str, batch: bool, end_ns: int) -> PlanFlags | None:
        """The plan and context flags for a call in any price context; None when no price matches."""
        if self._follow:
            self._follow_snapshot()
        key = (provider, model, service_tier, batch)
        resolved = self._in_context.get(key, _UNSEEN)
        if resolved is _UNSEEN:
            context = context_of(service_tier, batch)
            resolved = _STANDARD if context is STANDARD else self._resolve_in(provider, model, context)
            if len(self._in_context) >= CACHE_MAX:
                self._in_context = {}
            self._in_context[key] = resolved
        if resolved is _STANDARD:
            plan = self._plan(provider, model, end_ns)
            return None if plan is None else (plan, ())
        if resolved is None:
            return None
        assert isinstance(resolved, InContext)
        return resolved.plan_at(end_ns)

    # -- resolution (once per provider, model[, context]) -----------------------------------------

    def _matching(self, provider: str, model: str, catalog: CatalogModel | None) -> list[OverrideEntry]:
        """The override entries for (provider, model), newest `from` first; at equal `from` the later
        entry in the file first."""
        refs = (model.lower(),) if catalog is None else tuple(dict.fromkeys((model.lower(), catalog.model_id.lower())))
        matching = [entry for entry in self.overrides if entry.matches(provider.lower(), refs)]
        return sorted(matching, key=lambda e: (e.effective_ns, e.index), reverse=True)

    def _resolve_in(self, provider: str, model: str, context: PriceContext) -> InContext | None:
        catalog = self.catalog.find(provider, model)
        candidates = []
        for entry in self._matching(provider, model, catalog):
            own = entry.plan_in(context)
            if own is not None or catalog is not None:  # a discount with no catalog price has nothing to discount
                candidates.append(ContextCandidate(entry.effective_ns, own, entry))
        if not candidates and catalog is None:
            return None
        return InContext(context, tuple(candidates), catalog, catalog.matching(context) if catalog is not None else ())

    def _resolve(self, provider: str, model: str) -> _Resolved | Plan | None:
        catalog = self.catalog.find(provider, model)
        candidates: list[_Candidate] = []
        for entry in self._matching(provider, model, catalog):
            if entry.plan is not None:
                candidates.append(_Candidate(entry.effective_ns, entry.plan, None))
            elif catalog is not None:  # a discount with no catalog price has nothing to discount
                candidates.append(_Candidate(entry.effective_ns, None,
                                             tuple(entry.on_catalog(period.plan) for period in catalog.periods)))
        if not candidates:
            if catalog is None:
                return None
            return catalog.fixed or _Resolved((), catalog)
        if candidates[0].plan is not None and candidates[0].effective_ns == ALWAYS:
            return candidates[0].plan  # an entry without `from` that always wins
        return _Resolved(tuple(candidates), catalog)

    def fixed_price(self, provider: str, model: str, *, service_tier: str = "", batch: bool = False,
                    units: bool = False) -> tuple[bool, Plan | None]:
        """(True, plan) when every call of (provider, model) is priced by `plan` whatever its time or
        size (one untiered bracket; no auto-update), (True, None) when none ever is (unpriced), else
        (False, None). Resolves the pair if it was not yet. A call with a price context other than the
        standard one is fixed when its context plan never changes and carries no flag; a call with units
        (`units=True`) never is: it takes `cost`'s context path."""
        if self._follow or units:
            return False, None
        if context_of(service_tier, batch) is not STANDARD:
            return self._fixed_in(provider, model, service_tier, batch)
        resolved = self._cache.get((provider, model), _UNSEEN)
        if resolved is _UNSEEN:
            self._plan(provider, model, 0)
            resolved = self._cache.get((provider, model))
        if resolved is None:
            return True, None
        if type(resolved) is Plan and not resolved.starts:
            return True, resolved
        return False, None

    def _fixed_in(self, provider: str, model: str, service_tier: str, batch: bool) -> tuple[bool, Plan | None]:
        """`fixed_price` in a context other than the standard one."""
        self._plan_in(provider, model, service_tier, batch, 0)  # resolves the context once
        resolved = self._in_context.get((provider, model, service_tier, batch), _UNSEEN)
        if resolved is None:
            return True, None  # unpriced in this context whatever the time
        if not isinstance(resolved, InContext):
            return False, None  # the cache started over meanwhile
        found = resolved.fixed()
        if found is None or found[1] or found[0].starts:
            return False, None
        return True, found[0]

    def quote(self, provider: str, model: str, at: datetime, *, input_total: int = 0, service_tier: str = "",
              batch: bool = False) -> Quote | None:
        """The entry and all class rates that apply at `at` to a call with `input_total` input tokens
        (units included) in the price context (`service_tier`, `batch`)."""
        found = self._plan_in(provider, model, service_tier, batch, to_ns(at))
        if found is None:
            return None
        plan, flags = found
        return Quote(plan, plan.rates_for(input_total), flags)

