"""Source families (`LLMCall.source` values), their decisions, and the provider and operation
names they are normalized to. Pure lookups with small bounded caches."""

from __future__ import annotations

from collections.abc import Mapping

from genai_meter import contract
from genai_meter.conventions.keys import ADK_FRAMEWORK_SYSTEM, MARKER_KEYS

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

# Providers whose API reports input tokens *excluding* cache reads and writes.
CACHE_EXCLUSIVE_PROVIDERS = frozenset({"anthropic", "aws.bedrock"})
# Providers with prompt caching (a Vercel 4.x span without cache metadata hides it).
CACHING_PROVIDERS = frozenset({"openai", "azure.ai.openai", "anthropic", "aws.bedrock", "gcp.gemini",
                                "gcp.vertex_ai", "gcp.gen_ai", "deepseek", "x_ai"})

OPERATION_ALIASES: dict[str, str] = {
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
OPENLLMETRY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings",
                              "rerank": "rerank"}
TRACELOOP_KINDS = {"workflow": contract.SKIP_AGGREGATE, "task": contract.SKIP_AGGREGATE,
                    "agent": contract.SKIP_AGGREGATE, "tool": contract.SKIP_NON_INFERENCE}
OPENINFERENCE_KINDS: dict[str, str] = {
    "LLM": "chat", "EMBEDDING": "embeddings",
    "CHAIN": contract.SKIP_AGGREGATE, "AGENT": contract.SKIP_AGGREGATE,
}  # every other kind (TOOL, RETRIEVER, RERANKER, GUARDRAIL, EVALUATOR, PROMPT, ...) is non-inference
LANGSMITH_KINDS: dict[str, str] = {
    "llm": "chat", "embedding": "embeddings", "chain": contract.SKIP_AGGREGATE,
}  # tool, retriever, prompt, parser: non-inference
SKIPS = frozenset({contract.SKIP_AGGREGATE, contract.SKIP_NON_INFERENCE, contract.SKIP_NOT_LLM})

# Known semconv provider values, and aliases of older conventions and other instrumentations.
SEMCONV_PROVIDERS: frozenset[str] = frozenset({
    "openai", "anthropic", "aws.bedrock", "azure.ai.openai", "azure.ai.inference", "gcp.gemini",
    "gcp.vertex_ai", "gcp.gen_ai", "cohere", "deepseek", "groq", "ibm.watsonx.ai", "mistral_ai",
    "perplexity", "x_ai",
})
PROVIDER_ALIASES: dict[str, str] = {
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
VERCEL_API_SUFFIXES = frozenset({"chat", "responses", "completion", "embedding", "messages", "image",
                                  "transcription", "speech", "generative-ai", "converse"})

PROVIDER_CACHE: dict[str, str] = {}
OPERATION_OUTCOMES: dict[str, str] = {}  # raw gen_ai.operation.name -> canonical operation or skip reason
FAMILY_BY_SCOPE: dict[str, str | None] = {}
CACHE_LIMIT = 4096  # entries per lookup cache; beyond it results are computed, not stored


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
    hit = PROVIDER_CACHE.get(raw)
    if hit is not None:
        return hit
    key = raw.strip().lower()
    result = PROVIDER_ALIASES.get(key)
    if result is None:
        head, _, rest = key.partition(".")
        if head == "google":
            result = "gcp.vertex_ai" if rest.startswith("vertex") else "gcp.gemini"
        elif rest and head in PROVIDER_ALIASES:  # vercel style "<provider>.<api>"
            result = PROVIDER_ALIASES[head]
        elif rest.rsplit(".", 1)[-1] in VERCEL_API_SUFFIXES:  # e.g. "togetherai.chat"
            result = head
        else:
            result = key
    if len(PROVIDER_CACHE) < CACHE_LIMIT:
        PROVIDER_CACHE[raw] = result
    return result


def normalize_operation(raw: str) -> str:
    """An operation value in semconv form (``completion`` -> ``text_completion``, ...)."""
    key = raw.strip().lower()
    return OPERATION_ALIASES.get(key, key)
