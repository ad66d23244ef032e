"""Prices: the genai-prices catalog (pinned, or a newer stored snapshot) plus a YAML override file, the
price context of a call (service tier, batch), billed units, and exact cost arithmetic.

`PriceBook.from_config(config).cost(call)` is what the pipeline uses; docs/pricing.md describes how
prices are found, overridden, versioned and kept current.
"""

from genai_meter.pricing.book import PriceBook, Quote
from genai_meter.pricing.catalog import PROVIDER_MAP, Catalog
from genai_meter.pricing.context import PriceContext, context_of
from genai_meter.pricing.overrides import OverrideEntry, load_overrides, parse_overrides
from genai_meter.pricing.rates import Plan, Rates
from genai_meter.pricing.units import to_genai_usage, usage_counts

__all__ = ["PROVIDER_MAP", "Catalog", "OverrideEntry", "Plan", "PriceBook", "PriceContext", "Quote", "Rates",
           "context_of", "load_overrides", "parse_overrides", "to_genai_usage", "usage_counts"]
