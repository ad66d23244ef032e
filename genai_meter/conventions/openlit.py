"""OpenLIT: input excludes cache for Anthropic and Bedrock (as their APIs report it); its own TTFT key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import GEN_AI_SERVER_TIME_TO_FIRST_TOKEN
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.tables import CACHE_EXCLUSIVE_PROVIDERS
from genai_meter.conventions.values import seconds


def details(a: Mapping[str, Any], reading: Reading, provider_raw: object) -> None:
    """Fix up a gen_ai.* reading of an OpenLIT span."""
    reading.inclusive = reading.provider not in CACHE_EXCLUSIVE_PROVIDERS
    reading.ttft_s = seconds(a.get(GEN_AI_SERVER_TIME_TO_FIRST_TOKEN))
