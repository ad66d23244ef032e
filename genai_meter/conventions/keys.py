"""Attribute keys of every known instrumentation, current names first and older names beside them
(reference/genai-attributes.md). A data table: constants only."""

from __future__ import annotations

# OTel GenAI semantic conventions (SC), also used by OpenLLMetry, OpenLIT, pydantic-ai, ADK, ...
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"  # SC >= 1.37
GEN_AI_SYSTEM = "gen_ai.system"  # SC < 1.37, OpenLLMetry legacy, LangSmith, ADK, Vercel
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # SC >= 1.27
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # SC < 1.27, OpenLLMetry legacy, Vercel 3
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # SC < 1.27, OpenLLMetry legacy
GEN_AI_USAGE_TOTAL_TOKENS = "gen_ai.usage.total_tokens"  # OpenLLMetry, OpenLIT, LangSmith
LLM_USAGE_TOTAL_TOKENS = "llm.usage.total_tokens"  # OpenLLMetry legacy
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"  # SC >= 1.40
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY = "gen_ai.usage.cache_read_input_tokens"  # OpenLLMetry legacy
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # SC >= 1.40
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # semconv-genai rename
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY = "gen_ai.usage.cache_creation_input_tokens"  # OL legacy
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"  # SC >= 1.41
GEN_AI_USAGE_REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"  # OpenLLMetry, OpenLIT
LLM_USAGE_REASONING_TOKENS = "llm.usage.reasoning_tokens"  # OpenLLMetry legacy
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"  # SC >= 1.41, seconds
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
ERROR_TYPE = "error.type"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"

# OpenLLMetry (traceloop)
LLM_REQUEST_TYPE = "llm.request.type"  # chat, completion, embedding, rerank
TRACELOOP_SPAN_KIND = "traceloop.span.kind"  # workflow, task, agent, tool
GEN_AI_IS_STREAMING = "gen_ai.is_streaming"
LLM_IS_STREAMING = "llm.is_streaming"

# OpenInference (Arize)
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
LLM_PROVIDER = "llm.provider"
LLM_SYSTEM = "llm.system"
LLM_MODEL_NAME = "llm.model_name"
LLM_RESPONSE_MODEL_NAME = "llm.response.model_name"
LLM_REQUEST_MODEL_NAME = "llm.request.model_name"
EMBEDDING_MODEL_NAME = "embedding.model_name"
LLM_INVOCATION_PARAMETERS = "llm.invocation_parameters"  # JSON of request parameters (no content)
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_TOKEN_COUNT_PROMPT_CACHE_READ = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_COMPLETION_REASONING = "llm.token_count.completion_details.reasoning"
LLM_TOKEN_COUNT_PROMPT_AUDIO = "llm.token_count.prompt_details.audio"  # a part of prompt (OpenAI, Gemini, LiteLLM)
LLM_TOKEN_COUNT_COMPLETION_AUDIO = "llm.token_count.completion_details.audio"  # a part of completion
OUTPUT_IMAGES_PREFIX = "output.images."  # image generation: one `output.images.<i>.image.url` per image

# Vercel AI SDK (4.x: promptTokens/completionTokens; 5.x: inputTokens/outputTokens; 6.x: + details)
AI_OPERATION_ID = "ai.operationId"
AI_MODEL_ID = "ai.model.id"
AI_MODEL_PROVIDER = "ai.model.provider"  # e.g. openai.chat, anthropic.messages, amazon-bedrock
AI_RESPONSE_MODEL = "ai.response.model"
AI_RESPONSE_PROVIDER_METADATA = "ai.response.providerMetadata"  # JSON; cache counts in 4.x/5.x
AI_USAGE_PROMPT_TOKENS = "ai.usage.promptTokens"  # 4.x
AI_USAGE_COMPLETION_TOKENS = "ai.usage.completionTokens"  # 4.x
AI_USAGE_INPUT_TOKENS = "ai.usage.inputTokens"  # 5.x+
AI_USAGE_OUTPUT_TOKENS = "ai.usage.outputTokens"  # 5.x+
AI_USAGE_TOTAL_TOKENS = "ai.usage.totalTokens"
AI_USAGE_TOKENS = "ai.usage.tokens"  # embeddings
AI_USAGE_CACHED_INPUT_TOKENS = "ai.usage.cachedInputTokens"  # 5.x+
AI_USAGE_REASONING_TOKENS = "ai.usage.reasoningTokens"  # 5.x+
AI_USAGE_INPUT_NO_CACHE_TOKENS = "ai.usage.inputTokenDetails.noCacheTokens"  # 6.x
AI_USAGE_INPUT_CACHE_READ_TOKENS = "ai.usage.inputTokenDetails.cacheReadTokens"  # 6.x
AI_USAGE_INPUT_CACHE_WRITE_TOKENS = "ai.usage.inputTokenDetails.cacheWriteTokens"  # 6.x
AI_USAGE_OUTPUT_REASONING_TOKENS = "ai.usage.outputTokenDetails.reasoningTokens"  # 6.x
AI_RESPONSE_MS_TO_FIRST_CHUNK = "ai.response.msToFirstChunk"  # 4.x+, milliseconds
AI_STREAM_MS_TO_FIRST_CHUNK = "ai.stream.msToFirstChunk"  # 3.x, milliseconds

# OpenLIT (OpenAI-style detail keys beside the semconv ones)
OPENLIT_CACHE_READ_TOKENS = "gen_ai.usage.prompt_tokens_details.cached_tokens"
OPENLIT_CACHE_WRITE_TOKENS = "gen_ai.usage.prompt_tokens_details.cache_creation_tokens"
OPENLIT_REASONING_TOKENS = "gen_ai.usage.completion_tokens_details.reasoning_tokens"
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"  # OpenLIT, seconds

# pydantic-ai / Logfire
GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS = "gen_ai.aggregated_usage.input_tokens"  # agent run totals
GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS = "gen_ai.aggregated_usage.output_tokens"
PYDANTIC_AI_CACHE_READ_TOKENS = "gen_ai.usage.details.cache_read_tokens"
PYDANTIC_AI_CACHE_WRITE_TOKENS = "gen_ai.usage.details.cache_write_tokens"
PYDANTIC_AI_REASONING_TOKENS = "gen_ai.usage.details.reasoning_tokens"
PYDANTIC_AI_AGENT_NAME = "agent_name"  # legacy "agent run" span
PYDANTIC_AI_DETAILS_PREFIX = "gen_ai.usage.details."  # RequestUsage.details and its audio fields

# LangSmith OTel export
LANGSMITH_SPAN_KIND = "langsmith.span.kind"  # llm, chain, tool, retriever, embedding, prompt, parser
LANGSMITH_LS_PROVIDER = "langsmith.metadata.ls_provider"
LANGSMITH_LS_MODEL_NAME = "langsmith.metadata.ls_model_name"
GEN_AI_USAGE_INPUT_TOKEN_DETAILS = "gen_ai.usage.input_token_details"  # str(dict): cache_read, ...
GEN_AI_USAGE_OUTPUT_TOKEN_DETAILS = "gen_ai.usage.output_token_details"  # str(dict): reasoning, ...

# Price context: the service tier the provider answered with (response) or was asked for (request)
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"  # SC >= 1.37 (openai-v2 latest, OpenLLMetry)
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER = "gen_ai.openai.response.service_tier"  # SC < 1.37 (openai-v2 default)
GEN_AI_OPENAI_REQUEST_SERVICE_TIER = "gen_ai.openai.request.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"  # OpenLLMetry: Anthropic usage.service_tier
ANTHROPIC_REQUEST_SERVICE_TIER = "anthropic.request.service_tier"  # auto / standard_only: no tier
# Anthropic's 5-minute / 1-hour cache-write split (OpenLLMetry anthropic), parts of the cache writes
ANTHROPIC_CACHE_WRITE_5M = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"
ANTHROPIC_CACHE_WRITE_1H = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
# Image generation parameters (OpenLIT; OpenInference has them in llm.invocation_parameters)
GEN_AI_REQUEST_IMAGE_SIZE = "gen_ai.request.image_size"
GEN_AI_REQUEST_IMAGE_QUALITY = "gen_ai.request.image_quality"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"

# genai-meter's own keys: any app can state what no convention carries (docs/conventions.md)
GENAI_METER_SERVICE_TIER = "genai_meter.service_tier"
GENAI_METER_BATCH = "genai_meter.batch"  # true: the call went through a batch API
GENAI_METER_USAGE_PREFIX = "genai_meter.usage."  # genai_meter.usage.<unit> = quantity

# Google ADK
ADK_FRAMEWORK_SYSTEM = "gcp.vertex.agent"  # gen_ai.system value naming the framework, not a provider
ADK_REASONING_TOKENS = "gen_ai.usage.experimental.reasoning_tokens"  # older ADK: NOT part of output

# Keys whose presence marks a span as GenAI (is_candidate). Presence only, values unread.
MARKER_KEYS: frozenset[str] = frozenset({
    GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS,
    GEN_AI_USAGE_COMPLETION_TOKENS, GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS, GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS,
    GEN_AI_AGENT_NAME, GEN_AI_TOOL_NAME, LLM_REQUEST_TYPE, LLM_USAGE_TOTAL_TOKENS, TRACELOOP_SPAN_KIND,
    OPENINFERENCE_SPAN_KIND, AI_OPERATION_ID, AI_MODEL_ID, AI_MODEL_PROVIDER, LANGSMITH_SPAN_KIND,
    # a span carrying OpenInference usage without a span kind (manual instrumentation) is still a call
    LLM_TOKEN_COUNT_PROMPT, LLM_TOKEN_COUNT_COMPLETION, LLM_TOKEN_COUNT_TOTAL,
})

# Token keys of the gen_ai.* families, in preference order.
INPUT_KEYS = (GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS)
OUTPUT_KEYS = (GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_COMPLETION_TOKENS)
TOTAL_KEYS = (GEN_AI_USAGE_TOTAL_TOKENS, LLM_USAGE_TOTAL_TOKENS)
CACHE_READ_KEYS = (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY,
                    OPENLIT_CACHE_READ_TOKENS, PYDANTIC_AI_CACHE_READ_TOKENS)
CACHE_WRITE_KEYS = (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
                     GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY, OPENLIT_CACHE_WRITE_TOKENS,
                     PYDANTIC_AI_CACHE_WRITE_TOKENS)
REASONING_KEYS = (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, GEN_AI_USAGE_REASONING_TOKENS, LLM_USAGE_REASONING_TOKENS,
                   OPENLIT_REASONING_TOKENS, PYDANTIC_AI_REASONING_TOKENS)
# Every token key but the first (current) one of each class: when a span has none of these, each
# class is read from its first key alone (read_gen_ai_tokens).
ALTERNATE_TOKEN_KEYS: frozenset[str] = frozenset(
    key for keys in (INPUT_KEYS, OUTPUT_KEYS, CACHE_READ_KEYS, CACHE_WRITE_KEYS, REASONING_KEYS)
    for key in keys[1:]) | frozenset(TOTAL_KEYS)

# Service-tier keys, response values first: the first present wins (values.normal_tier decides what it means).
TIER_KEYS: tuple[str, ...] = (
    GENAI_METER_SERVICE_TIER, OPENAI_RESPONSE_SERVICE_TIER, GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
    ANTHROPIC_RESPONSE_SERVICE_TIER, OPENAI_REQUEST_SERVICE_TIER, GEN_AI_OPENAI_REQUEST_SERVICE_TIER,
    ANTHROPIC_REQUEST_SERVICE_TIER,
)
# Keys that carry billed quantities beyond the five classes (units), besides the prefixes below: a shape
# with one of them is read in full (its units are per call, never a template's).
UNIT_KEYS: frozenset[str] = frozenset({
    LLM_TOKEN_COUNT_PROMPT_AUDIO, LLM_TOKEN_COUNT_COMPLETION_AUDIO, ANTHROPIC_CACHE_WRITE_5M,
    ANTHROPIC_CACHE_WRITE_1H, GEN_AI_REQUEST_IMAGE_SIZE, GEN_AI_REQUEST_IMAGE_QUALITY,
})
UNIT_KEY_PREFIXES: tuple[str, ...] = (GENAI_METER_USAGE_PREFIX, PYDANTIC_AI_DETAILS_PREFIX, OUTPUT_IMAGES_PREFIX)

# Span events that mark the first streamed token/chunk (time to first token = event - span start).
FIRST_TOKEN_EVENTS: frozenset[str] = frozenset({
    "ai.stream.firstChunk",  # Vercel AI SDK
    "First Token Stream Event",  # OpenInference
    "gen_ai.content.completion.chunk",  # OpenLLMetry (one per chunk; the first one counts)
    "gen_ai.first_token", "first_token", "llm.first_token",
})
