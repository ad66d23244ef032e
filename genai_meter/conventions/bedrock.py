"""AWS Bedrock: usage as the Vercel AI SDK's provider metadata carries it (botocore spans go through
the semconv reader and hide cached tokens)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.reading import Reading


def bedrock_usage(metadata: dict[str, Any]) -> dict[str, Any] | None:
    bedrock = metadata.get("bedrock")
    usage = bedrock.get("usage") if isinstance(bedrock, dict) else None
    return usage if isinstance(usage, dict) else None


def cache_blind_details(a: Mapping[str, Any], reading: Reading, provider_raw: object) -> None:
    """botocore (and OTel contrib) spans never carry cached tokens: the cost is an upper bound unless
    the span happens to say otherwise."""
    reading.cache_unknown = reading.cache_read is None and reading.cache_write is None
