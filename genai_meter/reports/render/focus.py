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
from genai_meter.money import usd_text
from genai_meter.periods import NS, period_of
from genai_meter.reports.render.exactness import calls_unpriced, calls_upper_bound, exactness
from genai_meter.reports.render.tables import COST_CLASSES, TOKEN_CLASSES
from genai_meter.reports.service.ranges import iso

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
    "x_CostExactness",
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


def _rows_of(hour: int, totals: Totals, key: tuple[str, ...], fields: Sequence[str], offset: timedelta,
             tags: dict[str, str]) -> list[Row]:
    provider, model = key[0], key[1]
    org = key[2] if len(key) > 2 else None
    billing = period_of("month", offset, hour)
    kinds = [c for c in COST_CLASSES
             if (totals.tokens.get(c, 0) if c != "request" else 0) or totals.cost_pico.get(c, 0)]
    costs = [totals.cost_pico.get(c, 0) for c in kinds]
    lists = _split(totals.list_cost_pico or totals.cost_total_pico, costs)
    row_tags = {**tags, "provider": provider, "model": model}
    if org is not None:
        row_tags[fields[2]] = org
    flags = {"x_CallsUnpriced": str(calls_unpriced(totals)), "x_CallsUpperBound": str(calls_upper_bound(totals)),
             "x_CostExactness": exactness(totals)}
    rows = []
    for kind, cost, list_cost in zip(kinds, costs, lists):
        if kind == "request":
            consumed, unit, pricing_q, pricing_unit = Decimal(totals.calls), "Requests", Decimal(totals.calls), \
                "Requests"
        else:
            consumed = Decimal(totals.tokens.get(kind, 0))
            unit, pricing_q, pricing_unit = "Tokens", consumed / MILLION, "1000000 Tokens"
        sku = f"{provider}/{model}/{kind}"
        contracted, listed = _unit_price(cost, pricing_q), _unit_price(list_cost, pricing_q)
        rows.append({
            "AvailabilityZone": None, "BilledCost": usd_text(cost), "BillingAccountId": f"llm:{provider}",
            "BillingAccountName": f"{provider} (LLM API)", "BillingAccountType": "LLM API Account",
            "BillingCurrency": "USD", "BillingPeriodEnd": iso(billing.end_ns),
            "BillingPeriodStart": iso(billing.start_ns),
            "CapacityReservationId": None, "CapacityReservationStatus": None, "ChargeCategory": "Usage",
            "ChargeClass": None, "ChargeDescription": f"{model} {METERS[kind]}", "ChargeFrequency": "Usage-Based",
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
            "SkuMeter": METERS[kind],
            "SkuPriceDetails": json.dumps({"x_Model": model, "x_TokenKind": kind}, sort_keys=True),
            "SkuPriceId": sku, "SubAccountId": org, "SubAccountName": org,
            "SubAccountType": "Organization" if org is not None else None,
            "Tags": json.dumps(row_tags, sort_keys=True), **flags,
        })
    return rows


def focus_export(reader: LedgerReader, start_ns: int, end_ns: int, filters: dict[str, list[str]],
                 offset: timedelta) -> FocusExport:
    """The FOCUS rows of [start, end), hours aligned to UTC hours; unpriced groups left out and counted."""
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
    return FocusExport(rows, unpriced, billed)


def focus_lines(export: FocusExport) -> Iterator[list[str]]:
    """Header then one list of cells per row (null as empty)."""
    yield list(COLUMNS)
    for row in export.rows:
        yield [row[c] or "" for c in COLUMNS]


TOKEN_KINDS = TOKEN_CLASSES
