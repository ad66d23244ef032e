"""Plain records passed between the stages: span -> LLMCall -> Cost -> metrics.

`SpanRecord` is the neutral view of one finished span, built either from an SDK `ReadableSpan`
(in-process) or from an OTLP protobuf span (the receiver), so conventions never see either type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from genai_meter.money import PICO, to_pico

AttrValue = str | bool | int | float | tuple[object, ...] | list[object]
# The cost classes of `Cost.by_type`, in the order of `Cost.pico`: the five token classes, then the request fee.
COST_CLASSES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning", "request")

ZERO = Decimal(0)


@dataclass(slots=True)
class SpanRecord:
    """One finished span. Attribute mappings are read-only views; values are OTel attribute values."""

    name: str
    attributes: Mapping[str, object]  # values are OTel attribute values (AttrValue), never trusted
    resource: Mapping[str, object]
    start_ns: int  # Unix epoch nanoseconds
    end_ns: int
    is_error: bool = False  # span status code is ERROR
    scope_name: str = ""  # instrumentation scope (library) name
    trace_id: bytes = b""  # 16 bytes, empty when unknown
    span_id: bytes = b""  # 8 bytes
    parent_span_id: bytes = b""  # 8 bytes, empty for a root span
    trace_state: str = ""  # W3C tracestate header value
    events: tuple[tuple[str, int], ...] = ()  # (event name, time ns), for time to first token


@dataclass(slots=True)
class TokenCounts:
    """Token counts in the five disjoint classes (docs/accuracy.md). All non-negative."""

    input: int = 0  # uncached input, billed at the input price
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0  # output that is not reasoning
    reasoning: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"input": self.input, "cache_read": self.cache_read, "cache_write": self.cache_write,
                "output": self.output, "reasoning": self.reasoning}

    @property
    def input_total(self) -> int:
        """Input as users read it: uncached + cache reads + cache writes."""
        return self.input + self.cache_read + self.cache_write

    @property
    def output_total(self) -> int:
        """Output as users read it: output + reasoning."""
        return self.output + self.reasoning

    @property
    def total(self) -> int:
        return self.input_total + self.output_total


@dataclass(slots=True)
class LLMCall:
    """The canonical record of one inference call, whatever instrumentation reported it."""

    service: str
    environment: str
    provider: str  # normalized (openai, anthropic, aws.bedrock, ...)
    model: str  # the billed model: response model, else request model
    operation: str  # chat, text_completion, embeddings, generate_content, ...
    status: str  # "ok" or "error"
    error_type: str  # "" when none
    duration_s: float
    ttft_s: float | None  # time to first token, when reported
    tokens: TokenCounts
    end_ns: int  # when the call happened: prices and budget periods follow it
    dimensions: dict[str, str] = field(default_factory=dict)  # raw attribution values by dimension name
    source: str = ""  # instrumentation family: semconv, openllmetry, openinference, vercel, ...
    unmetered: str = ""  # "", "no_usage" or "cache_unknown"
    cache_write_1h: bool = False  # cache writes were for 1 hour (priced at the 1h rate)
    sample_weight: float = 1.0  # 1/p for probability-sampled spans when weighting is on
    invalid: str = ""  # why the call cannot be counted at a price ("" = valid): implausible token counts, or a
    # cost past what the ledger stores (contract.INVALID_*); an invalid call is never priced
    request_model: str = ""  # the model asked for (the billed `model` is the response model when known)
    trace_id: bytes = b""  # 16 bytes; with span_id the call's identity in the ledger
    span_id: bytes = b""  # 8 bytes
    parent_span_id: bytes = b""  # 8 bytes, empty for a root span
    conversation_id: str = ""  # conversation / session / thread id, when the span carries one
    user_id: str = ""  # end-user id as reported (the ledger hashes it unless told otherwise)
    # The price context the provider bills the call under (docs/pricing.md):
    service_tier: str = ""  # normalised tier the provider answered with (else asked for): "default", "flex",
    # "priority", "scale", ...; "" = the span does not say
    batch: bool = False  # made through a batch API (billed at the batch price variant)
    # Billed quantities beyond the five text token classes, by unit: genai-prices usage keys (input_audio_tokens,
    # cache_audio_read_tokens, output_image_tokens, web_searches, audio_seconds, ...) or `custom.<name>` for
    # units priced only by the override file. Disjoint from `tokens`, which then holds text tokens only.
    units: dict[str, int] = field(default_factory=dict)
    estimate: str = ""  # the assumption made where the span cannot carry the split the model bills by ("" = none)


@dataclass(slots=True)
class Cost:
    """The exact cost of one call, in USD, split by cost class."""

    by_type: dict[str, Decimal]  # keys: the five token classes and "request"
    price_source: str  # "genai-prices" or "overrides"
    price_version: str  # catalog version, or the override entry's date
    price_entry: str  # human-readable id of the price entry used (provider/model[@from])
    unit_prices: dict[str, Decimal] = field(default_factory=dict)  # USD per million tokens by token class
    # by_type in 10^-12 USD, in COST_CLASSES order, set where the call is priced (() = not given: see `picos`)
    pico: tuple[int, ...] = ()
    unit_pico: dict[str, int] = field(default_factory=dict)  # cost of each of `LLMCall.units`, 10^-12 USD
    # what the call has no price for: "tier:<tier>" / "batch" for a price context priced at the standard price,
    # then its units without a price, sorted ("custom.<name>", "web_searches"); not empty: only partly priced
    unpriced_units: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal:
        """The six classes plus every priced unit (exact)."""
        classes = sum(self.by_type.values(), ZERO)
        return classes + sum(self.unit_pico.values()) * PICO if self.unit_pico else classes

    def picos(self) -> tuple[int, ...]:
        """The six classes in 10^-12 USD, COST_CLASSES order: `pico` when the pricer set it, else from
        `by_type` (each value rounded half-even, as `money.to_pico`)."""
        if self.pico:
            return self.pico
        get = self.by_type.get
        return tuple(to_pico(v) if (v := get(name)) else 0 for name in COST_CLASSES)


@dataclass(slots=True)
class ToolCall:
    """One tool execution span (no tokens, no cost): counted by tool name, never priced."""

    service: str
    environment: str
    tool: str  # the tool's name ("" when the span names none)
    status: str  # "ok" or "error"
    end_ns: int
