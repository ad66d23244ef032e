"""genai-prices provider data written back in the JSON format genai-prices publishes (its data.json):
lets tests store the pinned catalog, or a changed copy of it, as a snapshot."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, time
from decimal import Decimal
from typing import Any

from genai_prices import types as gp

_FIELD_NAMES = {"or_": "or", "and_": "and"}


def raw(value: Any) -> Any:
    """`value` (providers, models, prices ...) as the published JSON structure."""
    if isinstance(value, gp.ModelPrice):
        return {key: raw(v) for key, v in value.__dict__.items() if v is not None and not key.startswith("_")}
    if isinstance(value, gp.TieredPrices):
        return {"base": raw(value.base), "tiers": [{"start": t.start, "price": raw(t.price)} for t in value.tiers]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None or f.name.startswith("_") or not f.init:
                continue
            out[_FIELD_NAMES.get(f.name, f.name)] = raw(item)
        return out
    if isinstance(value, list | tuple):
        return [raw(item) for item in value]
    if isinstance(value, dict):
        return {key: raw(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return float(value)  # published as JSON numbers; read back with parse_float=Decimal
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def snapshot_bytes(providers: list[gp.Provider]) -> bytes:
    return json.dumps(raw(providers)).encode()
