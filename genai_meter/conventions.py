"""Span attributes of every known instrumentation -> the canonical `LLMCall`.

`Conventions.classify` turns one finished span into an `LLMCall` (an inference call) or a skip reason
(`contract.SKIP_NOT_LLM`, `SKIP_AGGREGATE`, `SKIP_NON_INFERENCE`). It owns the per-source token
arithmetic: every source's counts end up in the five disjoint classes of `records.TokenCounts`.
The sources, the keys read and every decision are described in docs/conventions.md.

Contracts:
- Pure and thread-safe: no I/O, no locks, no state beyond small bounded lookup caches.
- May raise only on a broken record (the pipeline counts and drops such spans); attribute values of
  unexpected types are ignored, never trusted.
- Message content (prompts, completions, tool arguments) is never read.
- `is_candidate` is the cheap pre-filter (one C-level set scan, ~0.2 us for a 10-attribute span);
  `classify` returns `SKIP_NOT_LLM` for exactly the spans it rejects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.records import LLMCall, SpanRecord, TokenCounts

# ---------------------------------------------------------------------------------------------
# Attribute keys. Current names first, older names beside them (reference/genai-attributes.md).
# ---------------------------------------------------------------------------------------------

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

# LangSmith OTel export
LANGSMITH_SPAN_KIND = "langsmith.span.kind"  # llm, chain, tool, retriever, embedding, prompt, parser
LANGSMITH_LS_PROVIDER = "langsmith.metadata.ls_provider"
LANGSMITH_LS_MODEL_NAME = "langsmith.metadata.ls_model_name"
GEN_AI_USAGE_INPUT_TOKEN_DETAILS = "gen_ai.usage.input_token_details"  # str(dict): cache_read, ...
GEN_AI_USAGE_OUTPUT_TOKEN_DETAILS = "gen_ai.usage.output_token_details"  # str(dict): reasoning, ...

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
})

# Token keys of the gen_ai.* families, in preference order.
_INPUT_KEYS = (GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS)
_OUTPUT_KEYS = (GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_COMPLETION_TOKENS)
_TOTAL_KEYS = (GEN_AI_USAGE_TOTAL_TOKENS, LLM_USAGE_TOTAL_TOKENS)
_CACHE_READ_KEYS = (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY,
                    OPENLIT_CACHE_READ_TOKENS, PYDANTIC_AI_CACHE_READ_TOKENS)
_CACHE_WRITE_KEYS = (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
                     GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY, OPENLIT_CACHE_WRITE_TOKENS,
                     PYDANTIC_AI_CACHE_WRITE_TOKENS)
_REASONING_KEYS = (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, GEN_AI_USAGE_REASONING_TOKENS, LLM_USAGE_REASONING_TOKENS,
                   OPENLIT_REASONING_TOKENS, PYDANTIC_AI_REASONING_TOKENS)
# Every token key but the first (current) one of each class: when a span has none of these, each
# class is read from its first key alone (_read_gen_ai_tokens).
_ALTERNATE_TOKEN_KEYS: frozenset[str] = frozenset(
    key for keys in (_INPUT_KEYS, _OUTPUT_KEYS, _CACHE_READ_KEYS, _CACHE_WRITE_KEYS, _REASONING_KEYS)
    for key in keys[1:]) | frozenset(_TOTAL_KEYS)

# Span events that mark the first streamed token/chunk (time to first token = event - span start).
FIRST_TOKEN_EVENTS: frozenset[str] = frozenset({
    "ai.stream.firstChunk",  # Vercel AI SDK
    "First Token Stream Event",  # OpenInference
    "gen_ai.content.completion.chunk",  # OpenLLMetry (one per chunk; the first one counts)
    "gen_ai.first_token", "first_token", "llm.first_token",
})

# ---------------------------------------------------------------------------------------------
# Source families (LLMCall.source values) and their decisions
# ---------------------------------------------------------------------------------------------

SOURCE_SEMCONV = "semconv"  # any span following the OTel GenAI conventions, not recognised below
SOURCE_OTEL_CONTRIB = "otel_contrib"  # opentelemetry-instrumentation-openai-v2 / opentelemetry-util-genai
SOURCE_BOTOCORE = "botocore"  # opentelemetry-instrumentation-botocore (Bedrock)
SOURCE_OPENLLMETRY = "openllmetry"
SOURCE_OPENINFERENCE = "openinference"
SOURCE_VERCEL = "vercel"
SOURCE_OPENLIT = "openlit"
SOURCE_PYDANTIC_AI = "pydantic_ai"
SOURCE_LANGSMITH = "langsmith"
SOURCE_ADK = "adk"

# Sources that never report cached tokens: without a cache attribute the cost is not exact.
_CACHE_BLIND_SOURCES = frozenset({SOURCE_OTEL_CONTRIB, SOURCE_BOTOCORE, SOURCE_ADK})
# Providers whose API reports input tokens *excluding* cache reads and writes.
_CACHE_EXCLUSIVE_PROVIDERS = frozenset({"anthropic", "aws.bedrock"})
# Providers with prompt caching (a Vercel 4.x span without cache metadata hides it).
_CACHING_PROVIDERS = frozenset({"openai", "azure.ai.openai", "anthropic", "aws.bedrock", "gcp.gemini",
                                "gcp.vertex_ai", "gcp.gen_ai", "deepseek", "x_ai"})

_OPERATION_ALIASES: dict[str, str] = {
    "completion": "text_completion", "completions": "text_completion", "text_completion": "text_completion",
    "embedding": "embeddings", "embeddings": "embeddings", "embed": "embeddings",
    "chat": "chat", "generate_content": "generate_content", "rerank": "rerank",
    "response": "chat", "responses": "chat", "converse": "chat", "messages": "chat",
}
AGGREGATE_OPERATIONS: frozenset[str] = frozenset({
    "invoke_agent", "create_agent", "invoke_workflow",  # SC
    "agent", "workflow", "chain", "task", "framework", "execute_task",  # OpenLIT, OpenLLMetry, LangSmith
})
NON_INFERENCE_OPERATIONS: frozenset[str] = frozenset({
    "execute_tool", "retrieval",  # SC
    "retrieve", "retriever", "tool", "vectordb", "prompt", "parser", "guardrail", "evaluator",
})
_OPENLLMETRY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings",
                              "rerank": "rerank"}
_TRACELOOP_KINDS = {"workflow": contract.SKIP_AGGREGATE, "task": contract.SKIP_AGGREGATE,
                    "agent": contract.SKIP_AGGREGATE, "tool": contract.SKIP_NON_INFERENCE}
_OPENINFERENCE_KINDS: dict[str, str] = {
    "LLM": "chat", "EMBEDDING": "embeddings",
    "CHAIN": contract.SKIP_AGGREGATE, "AGENT": contract.SKIP_AGGREGATE,
}  # every other kind (TOOL, RETRIEVER, RERANKER, GUARDRAIL, EVALUATOR, PROMPT, ...) is non-inference
_LANGSMITH_KINDS: dict[str, str] = {
    "llm": "chat", "embedding": "embeddings", "chain": contract.SKIP_AGGREGATE,
}  # tool, retriever, prompt, parser: non-inference
_SKIPS = frozenset({contract.SKIP_AGGREGATE, contract.SKIP_NON_INFERENCE, contract.SKIP_NOT_LLM})

# Known semconv provider values, and aliases of older conventions and other instrumentations.
SEMCONV_PROVIDERS: frozenset[str] = frozenset({
    "openai", "anthropic", "aws.bedrock", "azure.ai.openai", "azure.ai.inference", "gcp.gemini",
    "gcp.vertex_ai", "gcp.gen_ai", "cohere", "deepseek", "groq", "ibm.watsonx.ai", "mistral_ai",
    "perplexity", "x_ai",
})
_PROVIDER_ALIASES: dict[str, str] = {
    **{p: p for p in SEMCONV_PROVIDERS},
    "az.ai.openai": "azure.ai.openai", "azure": "azure.ai.openai", "azure_openai": "azure.ai.openai",
    "azure-openai": "azure.ai.openai", "azureopenai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference", "azure_ai_inference": "azure.ai.inference",
    "aws": "aws.bedrock", "bedrock": "aws.bedrock", "amazon-bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock", "aws_bedrock": "aws.bedrock", "bedrock_converse": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai", "vertexai": "gcp.vertex_ai", "vertex": "gcp.vertex_ai",
    "google_vertexai": "gcp.vertex_ai", "google-vertex": "gcp.vertex_ai", "google_anthropic_vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini", "google": "gcp.gemini", "google_genai": "gcp.gemini", "google-gla": "gcp.gemini",
    "google.ai.studio": "gcp.gemini", "google.generative-ai": "gcp.gemini", "google_ai": "gcp.gemini",
    "mistralai": "mistral_ai", "mistral": "mistral_ai",
    "xai": "x_ai", "grok": "x_ai",
    "ibm.watson.ai": "ibm.watsonx.ai", "watsonx": "ibm.watsonx.ai", "ibm": "ibm.watsonx.ai",
    # framework names that some sources put where the provider belongs: not a provider
    ADK_FRAMEWORK_SYSTEM: "", "langchain": "", "llama_index": "", "pydantic_ai": "", "crewai": "",
    "litellm": "", "haystack": "", "gateway": "",
}

# The "<api>" part of Vercel provider ids ("openai.chat", "anthropic.messages", ...).
_VERCEL_API_SUFFIXES = frozenset({"chat", "responses", "completion", "embedding", "messages", "image",
                                  "transcription", "speech", "generative-ai", "converse"})

_PROVIDER_CACHE: dict[str, str] = {}
_OPERATION_OUTCOMES: dict[str, str] = {}  # raw gen_ai.operation.name -> canonical operation or skip reason
_FAMILY_BY_SCOPE: dict[str, str | None] = {}
_CACHE_LIMIT = 4096  # entries per lookup cache; beyond it results are computed, not stored


# ---------------------------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------------------------

def is_candidate(attributes: Mapping[str, object]) -> bool:
    """True if any GenAI marker key is present. Cheap: one scan of the span's keys, no values read."""
    return not MARKER_KEYS.isdisjoint(attributes)


def normalize_provider(raw: object) -> str:
    """A provider value in semconv form (``openai``, ``aws.bedrock``, ...); "" when it names no provider.

    Accepts semconv values, legacy ``gen_ai.system`` values (``az.ai.openai``, ``vertex_ai``,
    ``AWS``...), OpenInference ``llm.provider``/``llm.system`` and Vercel ``ai.model.provider``
    values (``openai.chat``, ``anthropic.messages``, ``google.vertex.chat``, ``amazon-bedrock``).
    Unknown values are returned lower-cased.
    """
    if not isinstance(raw, str):
        return ""
    hit = _PROVIDER_CACHE.get(raw)
    if hit is not None:
        return hit
    key = raw.strip().lower()
    result = _PROVIDER_ALIASES.get(key)
    if result is None:
        head, _, rest = key.partition(".")
        if head == "google":
            result = "gcp.vertex_ai" if rest.startswith("vertex") else "gcp.gemini"
        elif rest and head in _PROVIDER_ALIASES:  # vercel style "<provider>.<api>"
            result = _PROVIDER_ALIASES[head]
        elif rest.rsplit(".", 1)[-1] in _VERCEL_API_SUFFIXES:  # e.g. "togetherai.chat"
            result = head
        else:
            result = key
    if len(_PROVIDER_CACHE) < _CACHE_LIMIT:
        _PROVIDER_CACHE[raw] = result
    return result


def normalize_operation(raw: str) -> str:
    """An operation value in semconv form (``completion`` -> ``text_completion``, ...)."""
    key = raw.strip().lower()
    return _OPERATION_ALIASES.get(key, key)


# ---------------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------------

class _Reading:
    """What a source-specific reader found on one inference span (raw counts, before the token split).

    Class attributes are the defaults; readers set only what they found (cheaper than __slots__).
    """

    provider = ""  # normalized, "" = unknown
    model: object = None
    inp: int | None = None  # input as the source reports it
    out: int | None = None  # output as the source reports it
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    total: int | None = None
    inclusive = True  # input includes cache reads and writes
    reasoning_in_output = True  # reasoning is a part of output
    cache_unknown = False  # the source hides cached tokens
    ttft_s: float | None = None
    cache_1h = False  # cache writes were for 1 hour

    def __init__(self, source: str, operation: str) -> None:
        self.source = source
        self.operation = operation


class Conventions:
    """Classifies spans into `LLMCall`s for one config. Thread-safe; build once, share.

    Resource mappings are read-only (records.SpanRecord): the labels read from the last resource
    seen are kept, keyed by the mapping's identity (in-process spans share one resource object).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._cap = config.limits.max_label_value_length
        self._service_keys = tuple(config.resource_keys.service)
        self._environment_keys = tuple(config.resource_keys.environment)
        self._dimensions = tuple((name, tuple(dim.attributes), dim.resource)
                                 for name, dim in config.active_dimensions.items())
        # (resource mapping, service, environment, dimension values read from it); replaced atomically
        self._last_resource: tuple[object, str, str, dict[str, str]] = (None, "", "", {})

    def classify(self, span: SpanRecord) -> LLMCall | str:
        """An `LLMCall` for an inference span, else the skip reason (a `contract.SKIP_*` string)."""
        attributes = span.attributes
        if MARKER_KEYS.isdisjoint(attributes):
            return contract.SKIP_NOT_LLM
        family = _family(span, attributes)
        reading = _READERS[family](span, attributes, family)
        if isinstance(reading, str):
            return reading
        return self._call(span, attributes, reading)

    def _call(self, span: SpanRecord, attributes: Mapping[str, Any], reading: _Reading) -> LLMCall:
        tokens, has_usage = _split_tokens(reading)
        error_type = attributes.get(ERROR_TYPE)
        is_error = span.is_error or error_type is not None
        if not has_usage:
            unmetered = "" if is_error else contract.UNMETERED_NO_USAGE
        elif reading.cache_unknown and reading.operation != "embeddings":
            unmetered = contract.UNMETERED_CACHE_UNKNOWN
        else:
            unmetered = ""
        provider, model = reading.provider, reading.model
        if not provider and isinstance(model, str) and "/" in model:  # "openai/gpt-4o" (gateways, LiteLLM)
            head, _, rest = model.partition("/")
            provider = normalize_provider(head)
            model = rest if provider else model
        cache_1h = reading.cache_1h or (tokens.cache_write > 0 and _says_1h(attributes))
        _, service, environment, resource_dimensions = self._resource_labels(span.resource)
        duration_ns = span.end_ns - span.start_ns
        ttft_s = reading.ttft_s
        if ttft_s is None and span.events:
            ttft_s = _event_ttft(span)
        cap = self._cap
        operation = reading.operation
        # positional: LLMCall's field order (records.py); a third of the cost of keywords
        return LLMCall(
            service,
            environment,
            (provider if len(provider) <= cap else provider[:cap]) if provider else contract.UNKNOWN,
            (model if type(model) is str and len(model) <= cap else self._label(model))
            if model is not None and model != "" else contract.UNKNOWN,
            operation if len(operation) <= cap else self._label(operation),
            contract.STATUS_ERROR if is_error else contract.STATUS_OK,
            self._label(_error_type(error_type)) if error_type is not None else "",
            duration_ns / 1e9 if duration_ns > 0 else 0.0,
            ttft_s,
            tokens,
            span.end_ns,
            self._dimension_values(attributes, resource_dimensions),
            reading.source,
            unmetered,
            cache_1h,
        )

    def _label(self, value: object) -> str:
        """`value` as a label value: a string of at most limits.max_label_value_length characters."""
        text = value if type(value) is str else str(value)
        return text if len(text) <= self._cap else text[: self._cap]

    def _resource_labels(self, resource: Mapping[str, Any]) -> tuple[object, str, str, dict[str, str]]:
        """Service, environment and resource-side dimension values of `resource` (cached by identity)."""
        last = self._last_resource
        if last[0] is resource:
            return last
        dimensions: dict[str, str] = {}
        for name, keys, use_resource in self._dimensions:
            value = _first_present(resource, keys) if use_resource else None
            if value is not None:
                dimensions[name] = self._label(value)
        service = _first_present(resource, self._service_keys)
        environment = _first_present(resource, self._environment_keys)
        last = (resource,
                self._label(service) if service is not None else contract.UNKNOWN,
                self._label(environment) if environment is not None else contract.UNKNOWN,
                dimensions)
        self._last_resource = last
        return last

    def _dimension_values(self, attributes: Mapping[str, Any], from_resource: dict[str, str]) -> dict[str, str]:
        """Raw values of the active dimensions: span keys first, then resource keys; absent -> omitted."""
        values: dict[str, str] = {}
        get = attributes.get
        cap = self._cap
        for name, keys, _ in self._dimensions:
            for key in keys:
                value = get(key)
                if value is not None and value != "":
                    values[name] = value if type(value) is str and len(value) <= cap else self._label(value)
                    break
            else:
                if name in from_resource:
                    values[name] = from_resource[name]
        return values


# ---------------------------------------------------------------------------------------------
# Family detection
# ---------------------------------------------------------------------------------------------

def _family(span: SpanRecord, a: Mapping[str, Any]) -> str:
    """The instrumentation family that produced `span`."""
    if AI_OPERATION_ID in a:
        return SOURCE_VERCEL
    if OPENINFERENCE_SPAN_KIND in a:
        return SOURCE_OPENINFERENCE
    if LANGSMITH_SPAN_KIND in a:
        return SOURCE_LANGSMITH
    scope = span.scope_name
    if scope:
        family = _FAMILY_BY_SCOPE.get(scope, "")
        if family == "":
            family = _family_of_scope(scope)
            if len(_FAMILY_BY_SCOPE) < _CACHE_LIMIT:
                _FAMILY_BY_SCOPE[scope] = family
        if family is not None and (family != SOURCE_OPENLLMETRY or " " not in span.name):
            return family  # (contrib instrumentations share the scope prefix but name spans "chat gpt-4o")
    if a.get(GEN_AI_SYSTEM) == ADK_FRAMEWORK_SYSTEM:
        return SOURCE_ADK
    if (LLM_REQUEST_TYPE in a or TRACELOOP_SPAN_KIND in a or GEN_AI_IS_STREAMING in a
            or LLM_IS_STREAMING in a or LLM_USAGE_TOTAL_TOKENS in a):
        return SOURCE_OPENLLMETRY
    if GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS in a or GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS in a:
        return SOURCE_PYDANTIC_AI
    if a.get(TELEMETRY_SDK_NAME) == "openlit" or span.resource.get(TELEMETRY_SDK_NAME) == "openlit":
        return SOURCE_OPENLIT
    return SOURCE_SEMCONV


def _family_of_scope(scope: str) -> str | None:
    """The family an instrumentation scope name belongs to; None when the scope does not tell."""
    if scope.startswith(("opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai")):
        return SOURCE_OTEL_CONTRIB
    if scope.startswith("opentelemetry.instrumentation.botocore"):
        return SOURCE_BOTOCORE
    if scope.startswith("openlit"):
        return SOURCE_OPENLIT
    if scope.startswith(("pydantic-ai", "pydantic_ai")):
        return SOURCE_PYDANTIC_AI
    if scope == ADK_FRAMEWORK_SYSTEM:
        return SOURCE_ADK
    if scope == "langsmith":
        return SOURCE_LANGSMITH
    if scope.startswith("openinference."):
        return SOURCE_OPENINFERENCE
    if scope.startswith("opentelemetry.instrumentation."):  # OpenLLMetry packages (and contrib look-alikes)
        return SOURCE_OPENLLMETRY
    return None


# ---------------------------------------------------------------------------------------------
# Readers: one per family; each returns a _Reading for an inference span, else a skip reason
# ---------------------------------------------------------------------------------------------

def _read_gen_ai(span: SpanRecord, a: Mapping[str, Any], source: str) -> _Reading | str:
    """Spans that use gen_ai.* keys: semconv, OTel contrib, botocore, OpenLLMetry, OpenLIT, pydantic-ai, ADK."""
    if GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS in a or GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS in a:
        return contract.SKIP_AGGREGATE  # pydantic-ai agent run: totals of its model requests
    operation = _gen_ai_operation(span, a, source)
    if operation in _SKIPS:
        return operation
    reading = _Reading(source, operation)
    _read_gen_ai_tokens(a, reading)
    provider_raw = a.get(GEN_AI_PROVIDER_NAME) or a.get(GEN_AI_SYSTEM)
    reading.provider = normalize_provider(provider_raw)
    reading.model = a.get(GEN_AI_RESPONSE_MODEL) or a.get(GEN_AI_REQUEST_MODEL)
    if operation == "" and not _has_usage(reading) and not (reading.provider and reading.model):
        return contract.SKIP_NON_INFERENCE
    if operation == "":
        reading.operation = contract.UNKNOWN
    if source == SOURCE_ADK:
        _adk_details(a, reading, provider_raw)
    elif source == SOURCE_OPENLIT:
        reading.inclusive = reading.provider not in _CACHE_EXCLUSIVE_PROVIDERS
        reading.ttft_s = _seconds(a.get(GEN_AI_SERVER_TIME_TO_FIRST_TOKEN))
    elif source in _CACHE_BLIND_SOURCES:
        reading.cache_unknown = reading.cache_read is None and reading.cache_write is None
    if reading.ttft_s is None:
        ttft = a.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttft is not None:
            reading.ttft_s = _seconds(ttft)
    return reading


def _gen_ai_operation(span: SpanRecord, a: Mapping[str, Any], source: str) -> str:
    """The canonical operation, a skip reason, or "" when the span names none."""
    if source == SOURCE_OPENLLMETRY:
        kind = a.get(TRACELOOP_SPAN_KIND)
        if isinstance(kind, str) and kind.lower() in _TRACELOOP_KINDS:
            return _TRACELOOP_KINDS[kind.lower()]
    raw = a.get(GEN_AI_OPERATION_NAME)
    if not isinstance(raw, str) or not raw:
        raw = _fallback_operation(span, a, source)
        if raw is None:
            return ""
    outcome = _OPERATION_OUTCOMES.get(raw)
    if outcome is None:
        operation = normalize_operation(raw)
        outcome = (contract.SKIP_AGGREGATE if operation in AGGREGATE_OPERATIONS
                   else contract.SKIP_NON_INFERENCE if operation in NON_INFERENCE_OPERATIONS else operation)
        if len(_OPERATION_OUTCOMES) < _CACHE_LIMIT:
            _OPERATION_OUTCOMES[raw] = outcome
    return outcome


def _fallback_operation(span: SpanRecord, a: Mapping[str, Any], source: str) -> str | None:
    """The operation of spans without gen_ai.operation.name (OpenLLMetry, pydantic-ai, ADK)."""
    if source == SOURCE_OPENLLMETRY:
        request_type = a.get(LLM_REQUEST_TYPE)
        if isinstance(request_type, str) and request_type.lower() in _OPENLLMETRY_REQUEST_TYPES:
            return _OPENLLMETRY_REQUEST_TYPES[request_type.lower()]
        _, dot, suffix = span.name.partition(".")  # "openai.chat", "anthropic.completion", ...
        if dot and suffix in _OPERATION_ALIASES:
            return suffix
        return None
    if source in (SOURCE_SEMCONV, SOURCE_OTEL_CONTRIB, SOURCE_BOTOCORE):
        first_word = span.name.partition(" ")[0]  # pre-1.27 semconv spans: "chat gpt-4", no operation key
        return first_word if first_word in _OPERATION_ALIASES else None
    if source == SOURCE_PYDANTIC_AI and (span.name == "agent run" or PYDANTIC_AI_AGENT_NAME in a):
        return "invoke_agent"  # legacy agent run span, carrying its requests' totals in gen_ai.usage.*
    if source == SOURCE_PYDANTIC_AI and GEN_AI_TOOL_NAME in a:
        return "execute_tool"
    if source == SOURCE_ADK and (span.name == "call_llm" or GEN_AI_REQUEST_MODEL in a):
        return "generate_content"  # ADK's model-call span names no operation
    return None


def _read_gen_ai_tokens(a: Mapping[str, Any], reading: _Reading) -> None:
    get = a.get
    if _ALTERNATE_TOKEN_KEYS.isdisjoint(a):
        # Only the current semconv keys, if any (nearly every span): each class is its one key,
        # read directly (one C-level scan of the keys instead of ~15 lookups of absent keys).
        # (an absent key or a non-negative int is taken as it is; anything else goes through _int)
        value = get(GEN_AI_USAGE_INPUT_TOKENS)
        reading.inp = value if value is None or (type(value) is int and value >= 0) else _int(value)
        value = get(GEN_AI_USAGE_OUTPUT_TOKENS)
        reading.out = value if value is None or (type(value) is int and value >= 0) else _int(value)
        value = get(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        reading.cache_read = value if value is None or (type(value) is int and value >= 0) else _int(value)
        value = get(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
        reading.cache_write = value if value is None or (type(value) is int and value >= 0) else _int(value)
        value = get(GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
        reading.reasoning = value if value is None or (type(value) is int and value >= 0) else _int(value)
        return  # reading.total stays None: both total keys are alternates
    reading.inp = _count(get, _INPUT_KEYS)
    reading.out = _count(get, _OUTPUT_KEYS)
    reading.total = _count(get, _TOTAL_KEYS)
    reading.cache_read = _count(get, _CACHE_READ_KEYS)
    reading.cache_write = _count(get, _CACHE_WRITE_KEYS)
    reading.reasoning = _count(get, _REASONING_KEYS)


def _adk_details(a: Mapping[str, Any], reading: _Reading, provider_raw: object) -> None:
    """Google ADK: the provider hides behind the framework name; older ADK keeps thinking out of output."""
    if provider_raw == ADK_FRAMEWORK_SYSTEM or not reading.provider:
        reading.provider = _adk_provider(reading.model)
    if reading.reasoning is None:
        thinking = _int(a.get(ADK_REASONING_TOKENS))
        if thinking is not None:
            reading.reasoning = thinking
            reading.reasoning_in_output = False
    reading.cache_unknown = reading.cache_read is None and reading.cache_write is None


def _adk_provider(model: object) -> str:
    if not isinstance(model, str):
        return ""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(("gemini", "gemma")):
        return "gcp.gemini"
    if name.startswith("claude"):
        return "gcp.vertex_ai"  # ADK's Claude runs on Vertex AI
    return ""  # LiteLLM "provider/model" ids are split later


def _read_langsmith(span: SpanRecord, a: Mapping[str, Any], source: str) -> _Reading | str:
    """LangSmith OTel export: the run type decides; LangChain usage is cache- and reasoning-inclusive."""
    kind = a.get(LANGSMITH_SPAN_KIND)
    operation = _LANGSMITH_KINDS.get(kind.lower(), contract.SKIP_NON_INFERENCE) if isinstance(kind, str) else ""
    if operation in _SKIPS:
        return operation
    if not operation:
        return _read_gen_ai(span, a, SOURCE_LANGSMITH)
    reading = _Reading(SOURCE_LANGSMITH, operation)
    _read_gen_ai_tokens(a, reading)
    details = _token_details(a.get(GEN_AI_USAGE_INPUT_TOKEN_DETAILS))
    if details:
        if reading.cache_read is None:
            reading.cache_read = details.get("cache_read")
        if reading.cache_write is None:
            reading.cache_write = details.get("cache_creation")
            if reading.cache_write is None and ("ephemeral_5m_input_tokens" in details
                                                or "ephemeral_1h_input_tokens" in details):
                reading.cache_write = (details.get("ephemeral_5m_input_tokens", 0)
                                       + details.get("ephemeral_1h_input_tokens", 0))
        reading.cache_1h = (details.get("ephemeral_1h_input_tokens", 0)
                            or details.get("ephemeral_1hr_input_tokens", 0)) > 0
    if reading.reasoning is None:
        reading.reasoning = _token_details(a.get(GEN_AI_USAGE_OUTPUT_TOKEN_DETAILS)).get("reasoning")
    reading.provider = (normalize_provider(a.get(LANGSMITH_LS_PROVIDER))
                        or normalize_provider(a.get(GEN_AI_PROVIDER_NAME) or a.get(GEN_AI_SYSTEM)))
    reading.model = (a.get(GEN_AI_RESPONSE_MODEL) or a.get(GEN_AI_REQUEST_MODEL)
                     or a.get(LANGSMITH_LS_MODEL_NAME))
    reading.ttft_s = _seconds(a.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK))
    return reading


def _read_openinference(span: SpanRecord, a: Mapping[str, Any], source: str) -> _Reading | str:
    """OpenInference: the span kind decides; prompt includes cache, completion includes reasoning."""
    kind = a.get(OPENINFERENCE_SPAN_KIND)
    operation = _OPENINFERENCE_KINDS.get(kind.upper(), contract.SKIP_NON_INFERENCE) \
        if isinstance(kind, str) else contract.SKIP_NON_INFERENCE
    if operation in _SKIPS:
        return operation
    reading = _Reading(SOURCE_OPENINFERENCE, operation)
    reading.inp = _int(a.get(LLM_TOKEN_COUNT_PROMPT))
    reading.out = _int(a.get(LLM_TOKEN_COUNT_COMPLETION))
    reading.total = _int(a.get(LLM_TOKEN_COUNT_TOTAL))
    reading.cache_read = _int(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_READ))
    reading.cache_write = _int(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE))
    reading.reasoning = _int(a.get(LLM_TOKEN_COUNT_COMPLETION_REASONING))
    provider = normalize_provider(a.get(LLM_PROVIDER))
    system = normalize_provider(a.get(LLM_SYSTEM))
    if not provider or (provider == "gcp.gemini" and system == "gcp.vertex_ai"):
        provider = system  # llm.provider "google" is ambiguous; llm.system "vertexai" tells
    reading.provider = provider
    model = (a.get(LLM_MODEL_NAME) or a.get(EMBEDDING_MODEL_NAME) or a.get(LLM_RESPONSE_MODEL_NAME)
             or a.get(LLM_REQUEST_MODEL_NAME))
    reading.model = model if model else _invocation_model(a.get(LLM_INVOCATION_PARAMETERS))
    return reading


def _read_vercel(span: SpanRecord, a: Mapping[str, Any], source: str) -> _Reading | str:
    """Vercel AI SDK: ``*.doGenerate``/``*.doStream``/``*.doEmbed`` are model calls; wrappers repeat them."""
    operation_id = a.get(AI_OPERATION_ID)
    step = operation_id.rsplit(".", 1)[-1] if isinstance(operation_id, str) else ""
    if len(step) > 2 and step.startswith("do") and step[2].isupper():
        operation = {"Embed": "embeddings", "Rerank": "rerank"}.get(step[2:], "chat")
    elif step == "toolCall":
        return contract.SKIP_NON_INFERENCE
    else:
        return contract.SKIP_AGGREGATE  # ai.generateText, ai.streamText, ai.embed, ...: repeat their do* spans
    reading = _Reading(SOURCE_VERCEL, operation)
    provider_raw = a.get(AI_MODEL_PROVIDER) or a.get(GEN_AI_SYSTEM)
    reading.provider = normalize_provider(provider_raw)
    reading.model = (a.get(AI_RESPONSE_MODEL) or a.get(GEN_AI_RESPONSE_MODEL) or a.get(AI_MODEL_ID)
                     or a.get(GEN_AI_REQUEST_MODEL))
    exclusive_api = reading.provider in _CACHE_EXCLUSIVE_PROVIDERS or (
        isinstance(provider_raw, str) and "anthropic" in provider_raw.lower())
    if AI_USAGE_INPUT_CACHE_READ_TOKENS in a or AI_USAGE_INPUT_CACHE_WRITE_TOKENS in a \
            or AI_USAGE_INPUT_NO_CACHE_TOKENS in a:
        _vercel_v6_tokens(a, reading)
    elif AI_USAGE_INPUT_TOKENS in a or AI_USAGE_OUTPUT_TOKENS in a:
        _vercel_v5_tokens(a, reading, exclusive_api)
    else:
        _vercel_v4_tokens(a, reading, exclusive_api)
    if operation == "embeddings" and reading.inp is None:
        reading.inp = _first_int(a, (AI_USAGE_TOKENS, AI_USAGE_TOTAL_TOKENS))
    ms = _seconds(a.get(AI_RESPONSE_MS_TO_FIRST_CHUNK))
    if ms is None:
        ms = _seconds(a.get(AI_STREAM_MS_TO_FIRST_CHUNK))
    reading.ttft_s = ms / 1000.0 if ms is not None else None
    return reading


def _vercel_v6_tokens(a: Mapping[str, Any], reading: _Reading) -> None:
    """AI SDK 6: inputTokens is the cache-inclusive total, with an explicit breakdown."""
    reading.inp = _first_int(a, (AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS))
    reading.out = _first_int(a, (AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS))
    reading.total = _int(a.get(AI_USAGE_TOTAL_TOKENS))
    reading.cache_read = _int(a.get(AI_USAGE_INPUT_CACHE_READ_TOKENS))
    reading.cache_write = _int(a.get(AI_USAGE_INPUT_CACHE_WRITE_TOKENS))
    reading.reasoning = _first_int(a, (AI_USAGE_OUTPUT_REASONING_TOKENS, AI_USAGE_REASONING_TOKENS))
    if reading.inp is None:
        no_cache = _int(a.get(AI_USAGE_INPUT_NO_CACHE_TOKENS))
        if no_cache is not None:
            reading.inp = no_cache + (reading.cache_read or 0) + (reading.cache_write or 0)
    metadata = _vercel_metadata(a) if reading.cache_write else None
    reading.cache_1h = _anthropic_1h(metadata)


def _vercel_v5_tokens(a: Mapping[str, Any], reading: _Reading, exclusive_api: bool) -> None:
    """AI SDK 5: inputTokens is what the provider API reports: cache-inclusive for OpenAI and Google,
    cache-exclusive for Anthropic and Bedrock (whose cache writes are only in providerMetadata)."""
    reading.inp = _first_int(a, (AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS))
    reading.out = _first_int(a, (AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS))
    reading.total = _int(a.get(AI_USAGE_TOTAL_TOKENS))
    reading.cache_read = _int(a.get(AI_USAGE_CACHED_INPUT_TOKENS))
    reading.reasoning = _int(a.get(AI_USAGE_REASONING_TOKENS))
    if exclusive_api:
        reading.inclusive = False
        metadata = _vercel_metadata(a)
        reading.cache_write = _metadata_cache_write(metadata)
        reading.cache_1h = _anthropic_1h(metadata)


def _vercel_v4_tokens(a: Mapping[str, Any], reading: _Reading, exclusive_api: bool) -> None:
    """AI SDK 4: prompt/completion tokens only; cache counts only in providerMetadata."""
    reading.inp = _first_int(a, (AI_USAGE_PROMPT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS))
    reading.out = _first_int(a, (AI_USAGE_COMPLETION_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS,
                                 GEN_AI_USAGE_COMPLETION_TOKENS))
    reading.total = _int(a.get(AI_USAGE_TOTAL_TOKENS))
    metadata = _vercel_metadata(a)
    if metadata is not None:
        openai = metadata.get("openai") or metadata.get("azure")
        if isinstance(openai, dict):  # cachedPromptTokens is a part of promptTokens
            reading.cache_read = _int(openai.get("cachedPromptTokens"))
            reading.reasoning = _int(openai.get("reasoningTokens"))
        anthropic = metadata.get("anthropic")
        if isinstance(anthropic, dict):  # Anthropic's promptTokens exclude both cache counts
            reading.cache_read = _int(anthropic.get("cacheReadInputTokens"))
            reading.cache_write = _int(anthropic.get("cacheCreationInputTokens"))
            reading.cache_1h = _anthropic_1h(metadata)
        bedrock = _bedrock_usage(metadata)
        if bedrock is not None:
            reading.cache_read = _int(bedrock.get("cacheReadInputTokens"))
            reading.cache_write = _int(bedrock.get("cacheWriteInputTokens"))
    reading.inclusive = not exclusive_api
    reading.cache_unknown = (reading.cache_read is None and reading.cache_write is None
                             and reading.provider in _CACHING_PROVIDERS)


def _vercel_metadata(a: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parsed ai.response.providerMetadata (usage counters only are read), or None."""
    raw = a.get(AI_RESPONSE_PROVIDER_METADATA)
    if not isinstance(raw, str) or not raw or len(raw) > 65536:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _metadata_cache_write(metadata: dict[str, Any] | None) -> int | None:
    if metadata is None:
        return None
    anthropic = metadata.get("anthropic")
    if isinstance(anthropic, dict):
        value = _int(anthropic.get("cacheCreationInputTokens"))
        if value is None and isinstance(anthropic.get("usage"), dict):
            value = _int(anthropic["usage"].get("cache_creation_input_tokens"))
        return value
    bedrock = _bedrock_usage(metadata)
    return _int(bedrock.get("cacheWriteInputTokens")) if bedrock is not None else None


def _bedrock_usage(metadata: dict[str, Any]) -> dict[str, Any] | None:
    bedrock = metadata.get("bedrock")
    usage = bedrock.get("usage") if isinstance(bedrock, dict) else None
    return usage if isinstance(usage, dict) else None


def _anthropic_1h(metadata: dict[str, Any] | None) -> bool:
    """True if Anthropic's raw usage in providerMetadata reports 1-hour cache writes."""
    if metadata is None:
        return False
    anthropic = metadata.get("anthropic")
    usage = anthropic.get("usage") if isinstance(anthropic, dict) else None
    creation = usage.get("cache_creation") if isinstance(usage, dict) else None
    return isinstance(creation, dict) and (_int(creation.get("ephemeral_1h_input_tokens")) or 0) > 0


# family -> reader(span, attributes, family)
_READERS = {
    SOURCE_SEMCONV: _read_gen_ai,
    SOURCE_OTEL_CONTRIB: _read_gen_ai,
    SOURCE_BOTOCORE: _read_gen_ai,
    SOURCE_OPENLLMETRY: _read_gen_ai,
    SOURCE_OPENLIT: _read_gen_ai,
    SOURCE_PYDANTIC_AI: _read_gen_ai,
    SOURCE_ADK: _read_gen_ai,
    SOURCE_OPENINFERENCE: _read_openinference,
    SOURCE_VERCEL: _read_vercel,
    SOURCE_LANGSMITH: _read_langsmith,
}


# ---------------------------------------------------------------------------------------------
# Token arithmetic
# ---------------------------------------------------------------------------------------------

def _has_usage(reading: _Reading) -> bool:
    return not (reading.inp is None and reading.out is None and reading.cache_read is None
                and reading.cache_write is None and reading.reasoning is None)


def _split_tokens(reading: _Reading) -> tuple[TokenCounts, bool]:
    """The five disjoint classes from a source's counts; and whether the span reported any usage.

    Inclusive sources: uncached input = input - cache_read - cache_write. Cache counts larger than
    the input are clamped (cache_read first, then cache_write) so that the three input classes sum
    to the reported input. Exclusive sources: input is already uncached. A missing input with cache
    counts present is taken as cache only. Reasoning is a part of output (clamped to it) unless the
    source keeps it apart, or the span's total equals input + output + reasoning.
    """
    inp, out, cache_read, cache_write, reasoning = (reading.inp, reading.out, reading.cache_read,
                                                    reading.cache_write, reading.reasoning)
    if inp is None and out is None and cache_read is None and cache_write is None and reasoning is None:
        return TokenCounts(), False
    cache_read = cache_read or 0
    cache_write = cache_write or 0
    reasoning = reasoning or 0
    out = out or 0
    if reading.inclusive:
        if inp is None:
            inp = cache_read + cache_write
        if cache_read + cache_write > inp:
            cache_read = min(cache_read, inp)
            cache_write = min(cache_write, inp - cache_read)
        uncached = inp - cache_read - cache_write
    else:
        uncached = inp or 0
    if reasoning:
        total = reading.total
        if reading.reasoning_in_output and not (total is not None and reading.inp is not None
                                                and total == reading.inp + out + reasoning):
            if reasoning > out:
                reasoning = out
            out -= reasoning
        # else: reasoning is counted beside output (the source says so, or its total does: Gemini style)
    return TokenCounts(uncached, cache_read, cache_write, out, reasoning), True


# ---------------------------------------------------------------------------------------------
# Small value helpers (never raise on odd attribute values)
# ---------------------------------------------------------------------------------------------

def _int(value: object) -> int | None:
    """A non-negative token count from an attribute value; None for anything else."""
    kind = type(value)
    if kind is int:
        return value if value >= 0 else None  # type: ignore[operator,return-value]
    if kind is float:
        return int(value) if math.isfinite(value) and value >= 0 else None  # type: ignore[arg-type,operator]
    if kind is str:
        text = value.strip()  # type: ignore[attr-defined]
        return int(text) if text.isdigit() else None
    return None


def _first_int(a: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first of `keys` present in `a` with a usable token count."""
    return _count(a.get, keys)


def _count(get: Any, keys: tuple[str, ...]) -> int | None:
    """`_first_int` with the mapping's bound ``get`` (the hot path: ints are taken as they are)."""
    for key in keys:
        value = get(key)
        if value is not None:
            if type(value) is int:
                if value >= 0:
                    return value
            else:
                number = _int(value)
                if number is not None:
                    return number
    return None


def _first_present(a: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = a.get(key)
        if value is not None and value != "":
            return value
    return None


def _seconds(value: object) -> float | None:
    """A non-negative finite number, else None."""
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return None


def _event_ttft(span: SpanRecord) -> float | None:
    """Seconds from span start to its first first-token/first-chunk event, if it has one."""
    for name, time_ns in span.events:
        if name in FIRST_TOKEN_EVENTS:
            delta = time_ns - span.start_ns
            return delta / 1e9 if delta >= 0 else None
    return None


def _error_type(value: object) -> str:
    """error.type as a short string (``<class 'openai.RateLimitError'>`` -> ``openai.RateLimitError``)."""
    text = value if isinstance(value, str) else str(value)
    if text.startswith("<class '") and text.endswith("'>"):
        return text[8:-2]
    return text


def _says_1h(a: Mapping[str, Any]) -> bool:
    """Best effort: some attribute key mentions 1-hour cache writes with a positive count."""
    for key in a:  # keys only: values of other keys (message content among them) are never read
        if "ephemeral_1h" in key and (_int(a.get(key)) or 0) > 0:
            return True
    return False


def _token_details(value: object) -> dict[str, int]:
    """LangSmith's ``str(dict)`` token details (``{'cache_read': 4000, 'audio': 0}``) as a dict."""
    if not isinstance(value, str) or len(value) > 4096:
        return {}
    details: dict[str, int] = {}
    for part in value.strip().strip("{}").split(","):
        key, _, number = part.partition(":")
        count = _int(number)
        if count is not None:
            details[key.strip().strip("'\"")] = count
    return details


def _invocation_model(value: object) -> object:
    """The ``model`` of OpenInference's llm.invocation_parameters JSON (request parameters only)."""
    if not isinstance(value, str) or len(value) > 65536:
        return None
    try:
        params = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return params.get("model") if isinstance(params, dict) else None
