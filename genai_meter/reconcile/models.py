"""The normalized model name a provider line and a ledger call are matched on.

Providers name a model by its dated snapshot in their reports (gpt-4o-2024-08-06,
claude-sonnet-4-20250514) where a span may carry the alias (gpt-4o, claude-sonnet-4-0), or the other
way round. `model_key(provider, model)` gives both the same key: the pricing catalog's model id when
genai-prices knows the model (its own matching: dated snapshots, compact dates, fallback providers),
else the lower-cased name with a trailing date stripped. Apply it to both sides of a comparison.
"""

from __future__ import annotations

import re
from functools import lru_cache

from genai_meter.pricing import Catalog

# Trailing snapshot dates: -2024-08-06, -20250514, @20240620 (Vertex), -0613 (an MMDD), then -v1:0 (Bedrock).
_DATE_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|(?:0[1-9]|1[0-2])[0-3]\d))(?:-v\d+(?::\d+)?)?$")
_CATALOG: list[Catalog] = []  # built on first use (genai-prices data takes a moment to load)


def _catalog() -> Catalog:
    if not _CATALOG:
        _CATALOG.append(Catalog(pinned=True))
    return _CATALOG[0]


def strip_date(model: str) -> str:
    """`model` lower-cased without a trailing snapshot date."""
    return _DATE_SUFFIX.sub("", model.strip().lower())


@lru_cache(maxsize=4096)
def model_key(provider: str, model: str) -> str:
    """The key dated and undated names of one model share ("" for no model)."""
    if not model.strip():
        return ""
    found = _catalog().find(provider, model.strip())
    if found is not None:
        return found.model_id.lower()
    return strip_date(model)
