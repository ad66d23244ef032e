"""Prices: the genai-prices catalog plus a YAML override file, and exact (Decimal) cost arithmetic.

`PriceBook.from_config(config).cost(call)` is what the pipeline uses; docs/pricing.md describes how
prices are found, overridden and versioned.
"""

from genai_meter.pricing.book import PriceBook, Quote
from genai_meter.pricing.catalog import PROVIDER_MAP, Catalog, to_genai_usage
from genai_meter.pricing.overrides import OverrideEntry, load_overrides, parse_overrides
from genai_meter.pricing.rates import Plan, Rates

__all__ = ["PROVIDER_MAP", "Catalog", "OverrideEntry", "Plan", "PriceBook", "Quote", "Rates", "load_overrides",
           "parse_overrides", "to_genai_usage"]
