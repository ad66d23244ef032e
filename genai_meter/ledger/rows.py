"""One stored call as a plain tuple: what every backend writes, built once per call in `submit`.

Money is integer 10^-12 USD per cost class (`to_pico`, half-even, the value the metrics add);
durations are integer microseconds and sample weights integer millionths, so that every sum is an
exact integer and a rollup answer equals a raw-scan answer to the last digit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from genai_meter.config import Config
from genai_meter.ledger.model import Entry
from genai_meter.ledger.units import UnitAmount, context_dims, unit_amounts, units_cost
from genai_meter.money import to_pico
from genai_meter.records import Cost, LLMCall

TOKEN_CLASSES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")
COST_CLASSES: tuple[str, ...] = TOKEN_CLASSES + ("request",)
# The exact integer sums every aggregate carries, in this order (rollup columns, query results).
SUM_NAMES: tuple[str, ...] = (
    ("calls", "errors", "unpriced", "unmetered", "invalid")
    + tuple(f"t_{c}" for c in TOKEN_CLASSES)
    + tuple(f"c_{c}" for c in COST_CLASSES)
    + ("list_cost", "duration_us", "weight_micro")
)
MONEY_SUMS: tuple[str, ...] = tuple(f"c_{c}" for c in COST_CLASSES) + ("list_cost",)
HASH_HEX_CHARS = 16  # same length as the metric labels of hashed dimensions
LABEL_FIELDS: tuple[str, ...] = ("service", "environment", "provider", "model", "request_model", "operation",
                                 "status", "error_type")
TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8


def hash_value(value: str) -> str:
    """The stored form of a hashed value (the same short SHA-256 as hashed metric labels)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX_CHARS]


class Price(NamedTuple):
    """Which price entry priced a call; dictionary-encoded by the backends."""

    source: str
    version: str
    entry: str
    unit_prices: str  # canonical JSON: class -> USD per million tokens (decimal strings)


NO_PRICE = Price("", "", "", "{}")


class Row(NamedTuple):
    """One call as stored. `labels` are LABEL_FIELDS values; `dims` a sorted tuple of (name, value)
    (share both per label set: `RowBuilder.labelset`). (end_ns, trace_id, span_id) is the call's
    identity: the ids are `bytes` (16 and 8), never empty (`RowBuilder` draws random ones)."""

    end_ns: int
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    labels: tuple[str, ...]
    dims: tuple[tuple[str, str], ...]
    conversation: str
    user: str
    duration_us: int
    ttft_us: int | None
    tokens: tuple[int, int, int, int, int]
    costs: tuple[int, int, int, int, int, int]  # pico by COST_CLASSES
    list_cost: int
    price: Price
    unpriced: int
    unmetered: str
    invalid: str
    weight_micro: int
    cache_write_1h: int = 0
    units: tuple[UnitAmount, ...] = ()  # billed units and flags (`ledger.units`), sorted; () for most calls

    def sums(self) -> list[int]:
        """This call's contribution to every SUM_NAMES sum."""
        return [1, int(self.labels[6] != "ok"), self.unpriced, int(self.unmetered != ""), int(self.invalid != ""),
                *self.tokens, *self.costs, self.list_cost, self.duration_us, self.weight_micro]


_PRICES: dict[tuple[object, ...], Price] = {}
_PRICES_MAX = 10_000
_PRICES_BY_UNITS: dict[int, tuple[dict[str, Decimal], tuple[str, str, str], Price]] = {}
_USERS: dict[str, str] = {}
_USERS_MAX = 100_000
_LABELSETS_MAX = 100_000  # per RowBuilder: distinct raw (labels, dimension values)
_NO_COSTS = (0, 0, 0, 0, 0, 0)
_new_row = tuple.__new__  # Row(...) without the generated __new__'s Python frame


def price_of(cost: Cost) -> Price:
    """The call's price entry (cached: the same few entries price nearly every call; the pricer
    shares one `unit_prices` dict among the calls of one rate set, so that dict is a key first)."""
    units = cost.unit_prices
    hit = _PRICES_BY_UNITS.get(id(units))
    if hit is not None and hit[0] is units and hit[1] == (cost.price_source, cost.price_version, cost.price_entry):
        return hit[2]
    found = _price_of(cost)
    if len(_PRICES_BY_UNITS) >= _PRICES_MAX:
        _PRICES_BY_UNITS.clear()
    # the dict is held, so its id is not reused while the entry lives (read-only by contract)
    _PRICES_BY_UNITS[id(units)] = (units, (cost.price_source, cost.price_version, cost.price_entry), found)
    return found


def _price_of(cost: Cost) -> Price:
    key = (cost.price_source, cost.price_version, cost.price_entry, *cost.unit_prices.items())
    found = _PRICES.get(key)
    if found is None:
        units = json.dumps({k: f"{v:f}" for k, v in sorted(cost.unit_prices.items())}, separators=(",", ":"))
        found = Price(cost.price_source, cost.price_version, cost.price_entry, units)
        if len(_PRICES) >= _PRICES_MAX:
            _PRICES.clear()
        _PRICES[key] = found
    return found


def _pico(value: Decimal | None) -> int:
    return to_pico(value) if value else 0


def cost_pico(cost: Cost | None) -> tuple[int, int, int, int, int, int]:
    """The six cost classes in 10^-12 USD (COST_CLASSES order): the pricer's own `Cost.pico` when it
    set it (the same rounded values as `by_type`), else each `by_type` value through `to_pico`."""
    if cost is None:
        return (0, 0, 0, 0, 0, 0)
    if len(cost.pico) == 6:
        return cost.pico  # six ints, in records.COST_CLASSES order (= COST_CLASSES here)
    get = cost.by_type.get
    return (_pico(get("input")), _pico(get("cache_read")), _pico(get("cache_write")), _pico(get("output")),
            _pico(get("reasoning")), _pico(get("request")))


def hashed_user(user: str) -> str:
    found = _USERS.get(user)
    if found is None:
        found = hash_value(user)
        if len(_USERS) >= _USERS_MAX:
            _USERS.clear()
        _USERS[user] = found
    return found


class RowBuilder:
    """Turns `Entry`s into `Row`s under one config (hashing, the stored dimensions). Thread-safe.

    The label values and stored dimensions of a call are cached per distinct raw (labels,
    dimension values), so the calls of one label set share one `labels` and one `dims` tuple
    (the writers resolve a label set once per distinct pair; `labelset` gives the pair to a caller
    that builds `Row`s itself and hands them to `LedgerWriter.submit_rows`)."""

    def __init__(self, config: Config) -> None:
        self.dimensions = tuple(config.active_dimensions)
        self.hashed = frozenset(name for name, dim in config.active_dimensions.items() if dim.hash)
        self.hash_users = config.ledger.hash_user_ids
        self._sets: dict[tuple[object, ...], tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}

    def labelset(self, call: LLMCall) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """(labels, dims) of `call` as stored: LABEL_FIELDS values and the sorted configured dimensions
        present (hashed where configured); the same tuple objects for every call of one label set."""
        raw = call.dimensions
        key = (call.service, call.environment, call.provider, call.model, call.request_model, call.operation,
               call.status, call.error_type, call.service_tier, call.batch, *map(raw.get, self.dimensions)) if raw \
            else (call.service, call.environment, call.provider, call.model, call.request_model, call.operation,
                  call.status, call.error_type, call.service_tier, call.batch)
        found = self._sets.get(key)
        if found is None:
            dims = []
            for name in self.dimensions:
                value = raw.get(name)
                if value:
                    value = str(value)
                    dims.append((name, hash_value(value) if name in self.hashed else value))
            if call.service_tier or call.batch:
                dims = sorted(dims + list(context_dims(call)))
            found = ((call.service, call.environment, call.provider, call.model, call.request_model or call.model,
                      call.operation, call.status, call.error_type), tuple(dims))
            if len(self._sets) >= _LABELSETS_MAX:
                self._sets.clear()
            self._sets[key] = found
        return found

    def row(self, entry: Entry) -> Row:
        call, cost = entry.call, entry.cost
        raw = call.dimensions  # the cache lookup of `labelset`, inlined
        found = self._sets.get(
            (call.service, call.environment, call.provider, call.model, call.request_model, call.operation,
             call.status, call.error_type, call.service_tier, call.batch, *map(raw.get, self.dimensions)) if raw else
            (call.service, call.environment, call.provider, call.model, call.request_model, call.operation,
             call.status, call.error_type, call.service_tier, call.batch))
        labels, dims = found if found is not None else self.labelset(call)
        if cost is None:
            costs, price, unpriced = _NO_COSTS, NO_PRICE, int(not call.invalid)
        else:
            costs, price, unpriced = cost.pico if len(cost.pico) == 6 else cost_pico(cost), price_of(cost), 0
        units = unit_amounts(call, cost) if call.units or call.estimate or (cost is not None and cost.unpriced_units) \
            else ()
        if entry.catalog_cost is None:
            list_cost = sum(costs) + units_cost(units) if units else sum(costs)
        else:
            list_cost = sum(cost_pico(entry.catalog_cost)) + sum(entry.catalog_cost.unit_pico.values())
        user = call.user_id
        if user and self.hash_users:
            user = _USERS.get(user) or hashed_user(user)
        t = call.tokens
        ttft = call.ttft_s
        weight = call.sample_weight
        duration = round(call.duration_s * 1_000_000)
        return _new_row(Row, (
            call.end_ns,
            call.trace_id or os.urandom(TRACE_ID_BYTES),  # no identity: stored, but never deduplicated
            call.span_id or os.urandom(SPAN_ID_BYTES),
            call.parent_span_id or b"", labels, dims, call.conversation_id or "", user or "",
            duration if duration > 0 else 0, None if ttft is None else max(0, round(ttft * 1_000_000)),
            (t.input, t.cache_read, t.cache_write, t.output, t.reasoning),
            costs, list_cost, price, unpriced, call.unmetered, call.invalid,
            1_000_000 if weight == 1.0 else round(weight * 1_000_000), 1 if call.cache_write_1h else 0, units,
        ))

    def rows(self, entries: Sequence[Entry]) -> list[Row]:
        return list(map(self.row, entries))
