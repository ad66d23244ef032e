"""The FOCUS export checked against the FOCUS 1.3 column rules (written here from the spec, not from the code).

Rules from the FinOps FOCUS specification's column definitions: presence of the mandatory columns,
nullability, allowed values, Date/Time format (ISO 8601 UTC with Z), numeric format, PascalCase
column ids, JSON key-value format for Tags/SkuPriceDetails (custom keys prefixed x_), and the
relations between columns (PricingUnit null iff PricingQuantity null, ChargePeriod inside the
BillingPeriod, ChargeFrequency not Usage-Based for purchases, one row per hour/SKU/organization).
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

from flask.testing import FlaskClient

from genai_meter.reports.render.focus import DECIMAL_COLUMNS
from tests.reports.conftest import auth

MANDATORY = ("BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
             "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
             "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
             "PricingQuantity", "PricingUnit", "ServiceCategory", "ServiceName", "ServiceProviderName",
             "HostProviderName")
NOT_NULL = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
            "ChargeCategory", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
            "ContractedCost", "EffectiveCost", "ListCost", "ServiceCategory", "ServiceName", "ServiceSubcategory",
            "SkuId", "SkuPriceId", "PricingCategory", "ConsumedQuantity", "ConsumedUnit")
ALLOWED = {
    "ChargeCategory": {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    "ChargeClass": {"", "Correction"},
    "ChargeFrequency": {"One-Time", "Recurring", "Usage-Based"},
    "PricingCategory": {"Standard", "Dynamic", "Committed", "Other"},
    "ServiceCategory": {"AI and Machine Learning"},
    "ServiceSubcategory": {"AI Platforms", "Bots", "Generative AI", "Machine Learning",
                           "Natural Language Processing", "Other (AI and Machine Learning)"},
    "BillingCurrency": {"USD"},
}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
PASCAL = re.compile(r"^(x_)?[A-Z][A-Za-z0-9]*$")  # custom columns carry the x_ prefix


def rows(client: FlaskClient) -> tuple[list[str], list[dict[str, str]]]:
    response = client.get("/api/v1/reports/cost?range=30d&format=focus", headers=auth())
    assert response.status_code == 200
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    data = list(reader)
    assert reader.fieldnames is not None
    return list(reader.fieldnames), data


def test_columns_present_and_named(client: FlaskClient) -> None:
    header, data = rows(client)
    assert data
    for column in MANDATORY:
        assert column in header, column
    for column in header:
        assert PASCAL.match(column) and len(column) <= 50, column


def test_values_follow_the_column_rules(client: FlaskClient) -> None:
    _, data = rows(client)
    for row in data:
        for column in NOT_NULL:
            assert row[column] != "", (column, row)
        for column, allowed in ALLOWED.items():
            assert row[column] in allowed, (column, row[column])
        for column in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert DATETIME.match(row[column]), (column, row[column])
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"] < row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]
        for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
                       "PricingQuantity"):
            assert DECIMAL.match(row[column]), (column, row[column])
        for column in DECIMAL_COLUMNS:  # typed Decimal: a decimal point even for whole numbers
            assert row[column] == "" or "." in row[column], (column, row[column])
        assert row["PricingCurrencyEffectiveCost"] == row["EffectiveCost"] and row["PricingCurrency"] == "USD"
        assert row["x_CostExactness"] in ("exact", "upper_bound", "incomplete")
        assert (row["PricingUnit"] == "") == (row["PricingQuantity"] == "")
        assert row["ChargeClass"] == ""  # no corrections
        assert not (row["ChargeCategory"] == "Purchase" and row["ChargeFrequency"] == "Usage-Based")
        assert row["BilledCost"] == row["EffectiveCost"] == row["ContractedCost"]
        if row["ConsumedUnit"] == "Tokens":
            assert row["PricingUnit"] == "1000000 Tokens"
            assert Decimal(row["PricingQuantity"]) * 1_000_000 == Decimal(row["ConsumedQuantity"])
        else:
            assert row["ConsumedUnit"] == row["PricingUnit"] == "Requests"
        if row["ListUnitPrice"]:
            product = Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"])
            assert abs(product - Decimal(row["ListCost"])) < Decimal("0.000000001")
        tags = json.loads(row["Tags"])
        assert isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())
        details = json.loads(row["SkuPriceDetails"])
        assert all(k.startswith("x_") for k in details)
        provider, model, kind = row["SkuId"].split("/")
        assert kind in ("input", "cache_read", "cache_write", "output", "reasoning", "request")
        assert row["ServiceProviderName"] == provider and details["x_Model"] == model
        assert row["SubAccountId"] in ("acme", "globex") and row["SubAccountType"] == "Organization"


def test_one_row_per_hour_sku_organization(client: FlaskClient) -> None:
    _, data = rows(client)
    keys = [(r["ChargePeriodStart"], r["SkuId"], r["SubAccountId"]) for r in data]
    assert len(keys) == len(set(keys))
    for r in data:
        assert r["ChargePeriodStart"].endswith(":00:00Z")
