"""OpenInference (Arize): the span kind decides; prompt includes cache and audio, completion includes reasoning
and audio. The tier asked for and image generation's size and quality are in llm.invocation_parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.conventions.keys import (
    EMBEDDING_MODEL_NAME,
    LLM_INVOCATION_PARAMETERS,
    LLM_MODEL_NAME,
    LLM_PROVIDER,
    LLM_REQUEST_MODEL_NAME,
    LLM_RESPONSE_MODEL_NAME,
    LLM_SYSTEM,
    LLM_TOKEN_COUNT_COMPLETION,
    LLM_TOKEN_COUNT_COMPLETION_AUDIO,
    LLM_TOKEN_COUNT_COMPLETION_REASONING,
    LLM_TOKEN_COUNT_PROMPT,
    LLM_TOKEN_COUNT_PROMPT_AUDIO,
    LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
    LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
    LLM_TOKEN_COUNT_TOTAL,
    OPENINFERENCE_SPAN_KIND,
    OUTPUT_IMAGES_PREFIX,
)
from genai_meter.conventions.price_context import normal_tier
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.tables import (
    OPENINFERENCE_KINDS,
    SKIPS,
    SOURCE_OPENINFERENCE,
    normalize_provider,
)
from genai_meter.conventions.units import image_unit
from genai_meter.conventions.values import Invocation, count_value, invocation
from genai_meter.records import SpanRecord


def read_openinference(span: SpanRecord, a: Mapping[str, Any], source: str) -> Reading | str:
    """OpenInference: the span kind decides; prompt includes cache, completion includes reasoning."""
    kind = a.get(OPENINFERENCE_SPAN_KIND)
    if kind is None:  # usage keys without a span kind (manual instrumentation): a model call
        operation = contract.UNKNOWN
    else:
        operation = OPENINFERENCE_KINDS.get(kind.upper(), contract.SKIP_NON_INFERENCE) \
            if isinstance(kind, str) else contract.SKIP_NON_INFERENCE
    if operation in SKIPS:
        return operation
    reading = Reading(SOURCE_OPENINFERENCE, operation)
    reading.inp = count_value(a.get(LLM_TOKEN_COUNT_PROMPT))
    reading.out = count_value(a.get(LLM_TOKEN_COUNT_COMPLETION))
    reading.total = count_value(a.get(LLM_TOKEN_COUNT_TOTAL))
    reading.cache_read = count_value(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_READ))
    reading.cache_write = count_value(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE))
    reading.reasoning = count_value(a.get(LLM_TOKEN_COUNT_COMPLETION_REASONING))
    provider = normalize_provider(a.get(LLM_PROVIDER))
    system = normalize_provider(a.get(LLM_SYSTEM))
    if not provider or (provider == "gcp.gemini" and system == "gcp.vertex_ai"):
        provider = system  # llm.provider "google" is ambiguous; llm.system "vertexai" tells
    reading.provider = provider
    model = (a.get(LLM_MODEL_NAME) or a.get(EMBEDDING_MODEL_NAME) or a.get(LLM_RESPONSE_MODEL_NAME)
             or a.get(LLM_REQUEST_MODEL_NAME))
    params = invocation(a.get(LLM_INVOCATION_PARAMETERS))
    reading.model = model if model else params.model
    if params.service_tier is not None:
        reading.service_tier = normal_tier(params.service_tier)
    audio_in = count_value(a.get(LLM_TOKEN_COUNT_PROMPT_AUDIO))
    audio_out = count_value(a.get(LLM_TOKEN_COUNT_COMPLETION_AUDIO))
    images = generated_images(a, params)
    if audio_in or audio_out or images:
        details = reading.details = {}
        if audio_in:
            details["input_audio_tokens"] = audio_in
        if audio_out:
            details["output_audio_tokens"] = audio_out
        if images:
            details.update(images)
            reading.operation = IMAGE_GENERATION
    return reading


IMAGE_GENERATION = "image_generation"  # the operation of a span that generated images


def generated_images(a: Mapping[str, Any], params: Invocation) -> dict[str, int]:
    """Image generation (the images API: its parameters name a `size`): as a custom unit by the size and
    quality asked for, one per `output.images.<i>.image.url` key (keys only: values are content), else
    (outputs hidden) the `n` asked for, else one."""
    if params.size is None:
        return {}
    count = sum(1 for key in a if key.startswith(OUTPUT_IMAGES_PREFIX) and key.endswith(".image.url"))
    if not count:
        count = params.n if type(params.n) is int and params.n > 0 else 1
    return {image_unit(params.size, params.quality): count}
