"""LangSmith OTel export: the run type decides; LangChain usage is cache- and reasoning-inclusive, and its
token details (cache reads and writes, 1-hour writes, audio in and out) are parts of the totals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.conventions.keys import (
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_INPUT_TOKEN_DETAILS,
    GEN_AI_USAGE_OUTPUT_TOKEN_DETAILS,
    LANGSMITH_LS_MODEL_NAME,
    LANGSMITH_LS_PROVIDER,
    LANGSMITH_SPAN_KIND,
)
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.semconv import read_gen_ai, read_gen_ai_tokens
from genai_meter.conventions.tables import (
    LANGSMITH_KINDS,
    SKIPS,
    SOURCE_LANGSMITH,
    normalize_provider,
)
from genai_meter.conventions.values import seconds, token_details
from genai_meter.records import SpanRecord


def read_langsmith(span: SpanRecord, a: Mapping[str, Any], source: str) -> Reading | str:
    """LangSmith OTel export: the run type decides; LangChain usage is cache- and reasoning-inclusive."""
    kind = a.get(LANGSMITH_SPAN_KIND)
    operation = LANGSMITH_KINDS.get(kind.lower(), contract.SKIP_NON_INFERENCE) if isinstance(kind, str) else ""
    if operation in SKIPS:
        return operation
    if not operation:
        return read_gen_ai(span, a, SOURCE_LANGSMITH)
    reading = Reading(SOURCE_LANGSMITH, operation)
    read_gen_ai_tokens(a, reading)
    details = token_details(a.get(GEN_AI_USAGE_INPUT_TOKEN_DETAILS))
    output_details = token_details(a.get(GEN_AI_USAGE_OUTPUT_TOKEN_DETAILS))
    units: dict[str, int] = {}
    if details:
        if reading.cache_read is None:
            reading.cache_read = details.get("cache_read")
        one_hour = details.get("ephemeral_1h_input_tokens", 0) or details.get("ephemeral_1hr_input_tokens", 0)
        if reading.cache_write is None:
            reading.cache_write = details.get("cache_creation")
            if reading.cache_write is None and ("ephemeral_5m_input_tokens" in details
                                                or "ephemeral_1h_input_tokens" in details):
                reading.cache_write = details.get("ephemeral_5m_input_tokens", 0) + one_hour
        if one_hour:
            units["cache_write_1h_tokens"] = one_hour  # a part of the cache writes, at the 1-hour rate
        if details.get("audio"):
            units["input_audio_tokens"] = details["audio"]
    if reading.reasoning is None:
        reading.reasoning = output_details.get("reasoning")
    if output_details.get("audio"):
        units["output_audio_tokens"] = output_details["audio"]
    if units:
        reading.details = units
    reading.provider = (normalize_provider(a.get(LANGSMITH_LS_PROVIDER))
                        or normalize_provider(a.get(GEN_AI_PROVIDER_NAME) or a.get(GEN_AI_SYSTEM)))
    reading.model = (a.get(GEN_AI_RESPONSE_MODEL) or a.get(GEN_AI_REQUEST_MODEL)
                     or a.get(LANGSMITH_LS_MODEL_NAME))
    reading.ttft_s = seconds(a.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK))
    return reading
