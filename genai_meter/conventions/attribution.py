"""Who and what a call belongs to beyond the configured dimensions: the conversation (session,
thread) id, the end-user id and the requested model, read from each source's keys.

Values are strings cut to `max_len`; absent keys read as "". Message content is never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import AI_MODEL_ID, GEN_AI_REQUEST_MODEL, LLM_REQUEST_MODEL_NAME

# Conversation / session / thread ids, in preference order.
CONVERSATION_KEYS: tuple[str, ...] = (
    "gen_ai.conversation.id",  # OTel GenAI semconv
    "session.id",  # OpenInference, OTel session conventions
    "langfuse.session.id",  # Langfuse SDKs
    "langsmith.trace.session_id",  # LangSmith
    "traceloop.association.properties.session_id",  # OpenLLMetry association properties
    "traceloop.association.properties.conversation_id",
    "traceloop.association.properties.thread_id",
    "ai.telemetry.metadata.sessionId",  # Vercel AI SDK experimental_telemetry metadata
    "ai.telemetry.metadata.conversationId",
    "ai.telemetry.metadata.threadId",
    "thread.id",
)
# End-user ids, in preference order.
USER_KEYS: tuple[str, ...] = (
    "enduser.id",  # OTel
    "user.id",  # OTel user conventions, OpenInference
    "langfuse.user.id",
    "traceloop.association.properties.user_id",
    "ai.telemetry.metadata.userId",
)
# Tool names of tool-execution spans, in preference order.
TOOL_NAME_KEYS: tuple[str, ...] = (
    "gen_ai.tool.name",  # OTel GenAI semconv, pydantic-ai, ADK, OpenLIT
    "tool.name",  # OpenInference TOOL spans
    "ai.toolCall.name",  # Vercel AI SDK ai.toolCall spans
    "traceloop.entity.name",  # OpenLLMetry @tool spans (traceloop.span.kind = tool)
)
REQUEST_MODEL_KEYS: tuple[str, ...] = (GEN_AI_REQUEST_MODEL, AI_MODEL_ID, LLM_REQUEST_MODEL_NAME)


def first_text(a: Mapping[str, Any], keys: tuple[str, ...], max_len: int) -> str:
    """The first present, non-empty value of `keys` as a string of at most `max_len` characters."""
    for key in keys:
        value = a.get(key)
        if value is not None and value != "":
            text = value if type(value) is str else str(value)
            return text[:max_len]
    return ""


def conversation_of(attributes: Mapping[str, Any], resource: Mapping[str, Any], max_len: int) -> str:
    """The conversation id: span keys first, then the resource's."""
    return first_text(attributes, CONVERSATION_KEYS, max_len) or first_text(resource, CONVERSATION_KEYS, max_len)


def user_of(attributes: Mapping[str, Any], resource: Mapping[str, Any], max_len: int) -> str:
    """The end-user id as reported (hashing is the ledger's job): span keys first, then the resource's."""
    return first_text(attributes, USER_KEYS, max_len) or first_text(resource, USER_KEYS, max_len)


def tool_name_of(attributes: Mapping[str, Any], max_len: int) -> str:
    """The name of the tool a tool span executed ("" when it names none)."""
    return first_text(attributes, TOOL_NAME_KEYS, max_len)


def request_model_of(attributes: Mapping[str, Any], max_len: int) -> str:
    """The model the call asked for ("" when the span names none)."""
    return first_text(attributes, REQUEST_MODEL_KEYS, max_len)
