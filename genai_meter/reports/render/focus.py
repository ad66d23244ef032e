"""FinOps FOCUS 1.3 export: one charge row per (hour, SKU = provider/model/token kind, organization).

Token kinds are the ledger's five classes; a per-request fee is its own SKU (kind `request`, unit
Requests). ConsumedQuantity counts tokens, PricingQuantity/PricingUnit are per million tokens,
BilledCost = EffectiveCost = ContractedCost = what the calls cost (overrides applied), ListCost = the
catalog price of the same calls (split across an hour's SKUs in proportion to their cost when an
override priced them; the group's total is exact). Unpriced calls are left out and counted.

Every Decimal column is written with a decimal point (`253.0`, never `253`): readers that infer
types from the text (the FOCUS validator's) then read a Decimal, as the spec types it. The
PricingCurrency* columns repeat the USD figures (pricing and billing currency are both USD).
Custom columns (`x_` prefix) say whether each row's cost is exact or an upper bound (render.exactness).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Context, Decimal

from genai_meter.ledger.model import LedgerReader, Totals
from genai_meter.money import to_pico, usd_text
from genai_meter.periods import NS, period_of
from genai_meter.pricing.units import UNITS
from genai_meter.reports.render.exactness import calls_partial, calls_unpriced, calls_upper_bound, exactness
from genai_meter.reports.render.tables import COST_CLASSES, TOKEN_CLASSES
from genai_meter.reports.service.currency import CurrencyReader
from genai_meter.reports.service.ranges import iso, parse_time

FOCUS_VERSION = "1.3"
COLUMNS: tuple[str, ...] = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId",
    "CapacityReservationStatus", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice",
    "EffectiveCost", "HostProviderName", "InvoiceId", "InvoiceIssuerName", "ListCost", "ListUnitPrice",
    "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName",
    "ServiceProviderName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags", "x_CallsUnpriced", "x_CallsUpperBound",
    "x_CostExactness", "x_CallsPartial", "x_ExchangeRate",
)
# Columns the FOCUS spec types as Decimal (written with a decimal point, see the module docstring).
DECIMAL_COLUMNS = frozenset({"BilledCost", "CommitmentDiscountQuantity", "ConsumedQuantity", "ContractedCost",
                             "ContractedUnitPrice", "EffectiveCost", "ListCost", "ListUnitPrice",
                             "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
                             "PricingCurrencyListUnitPrice", "PricingQuantity"})
METERS = {"input": "Input Tokens", "cache_read": "Cache Read Tokens", "cache_write": "Cache Write Tokens",
          "output": "Output Tokens", "reasoning": "Reasoning Tokens", "request": "Requests"}
# The FOCUS applicability criteria that fit LLM API usage as this export describes it (docs/reports.md).
APPLICABILITY_CRITERIA: tuple[str, ...] = (
    "ACCOUNT_NAMING_SUPPORTED", "NEGOTIATED_PRICING_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED", "TAGGING_SUPPORTED",
    "UNIT_PRICING_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED")
SUB_ACCOUNT_CRITERION = "SUB_ACCOUNT_SUPPORTED"  # only when the ledger has the organization dimension
MILLION = Decimal(1_000_000)
_DIV = Context(prec=34)
ORG_FIELD = "organization"
Row = dict[str, str | None]


@dataclass(slots=True)
class FocusExport:
    rows: list[Row]
    unpriced_calls: int  # calls left out: no price
    billed_pico: int  # the sum of BilledCost, exact


def _split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, exact (largest remainder), all zero weights -> first gets all."""
    whole = sum(weights)
    if whole == 0:
        return [total] + [0] * (len(weights) - 1) if weights else []
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: -((total * weights[i]) % whole))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def decimal_text(value: Decimal) -> str:
    """Plain decimal text that always has a decimal point: 253 -> "253.0", 0.075 -> "0.075"."""
    text = f"{value:f}"
    return text if "." in text else text + ".0"


def _unit_price(pico: int, quantity: Decimal) -> str | None:
    if quantity == 0:
        return None
    return decimal_text(_DIV.divide(Decimal(pico).scaleb(-12), quantity).normalize(_DIV))


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge row's kind and quantities: a cost class or a billed unit."""

    kind: str  # the cost class or the unit name (the SKU's last part)
    meter: str
    cost: int
    consumed: Decimal
    unit: str  # ConsumedUnit
    pricing_quantity: Decimal
    pricing_unit: str


def _class_charge(kind: str, totals: Totals) -> Charge:
    cost = totals.cost_pico.get(kind, 0)
    if kind == "request":
        return Charge(kind, METERS[kind], cost, Decimal(totals.calls), "Requests", Decimal(totals.calls), "Requests")
    consumed = Decimal(totals.tokens.get(kind, 0))
    return Charge(kind, METERS[kind], cost, consumed, "Tokens", consumed / MILLION, "1000000 Tokens")


# ConsumedUnit of genai-prices' unit families (a custom unit counts "Units")
FAMILY_UNITS = {"tokens": "Tokens", "characters": "Characters", "messages": "Messages", "durations": "Seconds",
                "pixels": "Pixels", "document_pages": "Pages", "rerank": "Searches", "tool_calls": "Calls",
                "requests": "Requests"}


def unit_charge(name: str, quantity: int, cost: int) -> Charge:
    """A billed unit's charge: ConsumedQuantity in the unit itself, PricingQuantity per the price's block
    (genai-prices' `per`: 1,000,000 tokens, 1,000 searches, 3,600 seconds = hours)."""
    unit = UNITS.get(name)
    consumed = Decimal(quantity)
    meter = name.replace("_", " ").replace(".", " ").title()
    if unit is None:
        return Charge(name, meter, cost, consumed, "Units", consumed, "Units")
    counted = FAMILY_UNITS.get(str(unit.dimensions.get("family")), "Units")
    if unit.dimensions.get("family") == "tool_calls":
        counted = "Searches" if "search" in name else "Calls"
    if counted == "Seconds" and unit.per == 3600:
        return Charge(name, meter, cost, consumed, counted, consumed / unit.per, "Hours")
    return Charge(name, meter, cost, consumed, counted, consumed / unit.per, f"{unit.per} {counted}"
                  if unit.per != 1 else counted)


def _rows_of(hour: int, totals: Totals, key: tuple[str, ...], fields: Sequence[str], offset: timedelta,
             tags: dict[str, str]) -> list[Row]:
    provider, model = key[0], key[1]
    org = key[2] if len(key) > 2 else None
    billing = period_of("month", offset, hour)
    charges = [_class_charge(c, totals) for c in COST_CLASSES
               if (totals.tokens.get(c, 0) if c != "request" else 0) or totals.cost_pico.get(c, 0)]
    charges += [unit_charge(name, quantity, totals.units.cost_pico.get(name, 0))
                for name, quantity in sorted(totals.units.quantity.items())]
    costs = [charge.cost for charge in charges]
    lists = _split(totals.list_cost_pico or totals.cost_total_pico, costs)
    row_tags = {**tags, "provider": provider, "model": model}
    if org is not None:
        row_tags[fields[2]] = org
    flags = {"x_CallsUnpriced": str(calls_unpriced(totals)), "x_CallsUpperBound": str(calls_upper_bound(totals)),
             "x_CostExactness": exactness(totals), "x_CallsPartial": str(calls_partial(totals)),
             "x_ExchangeRate": None}
    rows = []
    for charge, list_cost in zip(charges, lists):
        kind, cost, consumed, unit = charge.kind, charge.cost, charge.consumed, charge.unit
        pricing_q, pricing_unit = charge.pricing_quantity, charge.pricing_unit
        sku = f"{provider}/{model}/{kind}"
        contracted, listed = _unit_price(cost, pricing_q), _unit_price(list_cost, pricing_q)
        rows.append({
            "AvailabilityZone": None, "BilledCost": usd_text(cost), "BillingAccountId": f"llm:{provider}",
            "BillingAccountName": f"{provider} (LLM API)", "BillingAccountType": "LLM API Account",
            "BillingCurrency": "USD", "BillingPeriodEnd": iso(billing.end_ns),
            "BillingPeriodStart": iso(billing.start_ns),
            "CapacityReservationId": None, "CapacityReservationStatus": None, "ChargeCategory": "Usage",
            "ChargeClass": None, "ChargeDescription": f"{model} {charge.meter}", "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": iso(hour + 3600 * NS), "ChargePeriodStart": iso(hour),
            "CommitmentDiscountCategory": None, "CommitmentDiscountId": None, "CommitmentDiscountName": None,
            "CommitmentDiscountQuantity": None, "CommitmentDiscountStatus": None, "CommitmentDiscountType": None,
            "CommitmentDiscountUnit": None, "ConsumedQuantity": decimal_text(consumed), "ConsumedUnit": unit,
            "ContractedCost": usd_text(cost), "ContractedUnitPrice": contracted,
            "EffectiveCost": usd_text(cost), "HostProviderName": provider, "InvoiceId": None,
            "InvoiceIssuerName": provider, "ListCost": usd_text(list_cost),
            "ListUnitPrice": listed, "PricingCategory": "Standard",
            "PricingCurrency": "USD", "PricingCurrencyContractedUnitPrice": contracted,
            "PricingCurrencyEffectiveCost": usd_text(cost), "PricingCurrencyListUnitPrice": listed,
            "PricingQuantity": decimal_text(pricing_q), "PricingUnit": pricing_unit,
            "ProviderName": provider, "PublisherName": provider, "RegionId": None, "RegionName": None,
            "ResourceId": None, "ResourceName": None, "ResourceType": None,
            "ServiceCategory": "AI and Machine Learning", "ServiceName": f"{provider} {model}",
            "ServiceProviderName": provider, "ServiceSubcategory": "Generative AI", "SkuId": sku,
            "SkuMeter": charge.meter,
            "SkuPriceDetails": json.dumps({"x_Model": model, "x_TokenKind": kind}, sort_keys=True),
            "SkuPriceId": sku, "SubAccountId": org, "SubAccountName": org,
            "SubAccountType": "Organization" if org is not None else None,
            "Tags": json.dumps(row_tags, sort_keys=True), **flags,
        })
    return rows


def focus_export(reader: LedgerReader, start_ns: int, end_ns: int, filters: dict[str, list[str]],
                 offset: timedelta, fx: CurrencyReader | None = None) -> FocusExport:
    """The FOCUS rows of [start, end), hours aligned to UTC hours; unpriced groups left out and counted.
    With `fx`, billed in its currency (`in_currency`)."""
    fields = ["provider", "model"] + ([ORG_FIELD] if ORG_FIELD in reader.fields() else [])
    series = reader.series(start_ns, end_ns, "1h", filters, fields)
    tags = {name: values[0] for name, values in filters.items() if len(values) == 1}
    rows: list[Row] = []
    unpriced = 0
    billed = 0
    for key, points in sorted(series.items()):
        for point in points:
            t = point.totals
            if t.unpriced and t.cost_total_pico == 0:
                unpriced += t.unpriced
                continue
            unpriced += t.unpriced
            billed += t.cost_total_pico
            rows.extend(_rows_of(point.start_ns, t, key, fields, offset, tags))
    rows.sort(key=lambda r: (r["ChargePeriodStart"] or "", r["SkuId"] or "", r["SubAccountId"] or ""))
    if fx is not None:
        billed = in_currency(rows, fx, start_ns, end_ns, filters)
    return FocusExport(rows, unpriced, billed)


def in_currency(rows: list[Row], fx: CurrencyReader, start_ns: int, end_ns: int, filters: dict[str, list[str]]) -> int:
    """The rows' billed figures in `fx.currency`, so that each UTC day's rows add up to that day's converted
    total (the reports' rule): a day's converted cost and list cost are split across its rows in proportion
    to their USD figures (exact, largest remainder). The PricingCurrency* columns stay USD. Returns the sum
    of BilledCost in 10^-12 of the currency."""
    days = {p.start_ns: p.totals for p in fx.days(start_ns, end_ns, filters, ()).get((), [])}
    by_day: dict[int, list[Row]] = {}
    for row in rows:
        hour = parse_time("ChargePeriodStart", row["ChargePeriodStart"] or "")
        by_day.setdefault(hour - hour % (86400 * NS), []).append(row)
    billed = 0
    for day, day_rows in by_day.items():
        total = days[day]
        costs = _split(total.cost_total_pico, [to_pico(Decimal(r["BilledCost"] or "0")) for r in day_rows])
        lists = _split(total.list_cost_pico or total.cost_total_pico,
                       [to_pico(Decimal(r["ListCost"] or "0")) for r in day_rows])
        rate = fx.rates[iso(day)[:10]]
        for row, cost, list_cost in zip(day_rows, costs, lists):
            quantity = Decimal(row["PricingQuantity"] or "0")
            row.update({"BilledCost": usd_text(cost), "EffectiveCost": usd_text(cost), "ContractedCost": usd_text(cost),
                        "ListCost": usd_text(list_cost), "ContractedUnitPrice": _unit_price(cost, quantity),
                        "ListUnitPrice": _unit_price(list_cost, quantity), "BillingCurrency": fx.currency,
                        "x_ExchangeRate": rate})
            billed += cost
    return billed


def focus_lines(export: FocusExport) -> Iterator[list[str]]:
    """Header then one list of cells per row (null as empty)."""
    yield list(COLUMNS)
    for row in export.rows:
        yield [row[c] or "" for c in COLUMNS]


TOKEN_KINDS = TOKEN_CLASSES
