"""Small readers of attribute values; they never raise on odd values (anything unusable reads as None)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from genai_meter.conventions.keys import FIRST_TOKEN_EVENTS
from genai_meter.conventions.times import MAX_CALL_NS, MAX_CALL_SECONDS
from genai_meter.records import SpanRecord

BAD_COUNT = -1  # a token count that is present but not a count ("²", "-5", NaN): the call is invalid
MAX_COUNT_DIGITS = 20  # a count as a string: ASCII digits only, at most this many (2**64 has 20)


def count_value(value: object) -> int | None:
    """A token count from an attribute value: the count; a negative number (BAD_COUNT for text or
    floats that are no count) when the value is present but cannot be a count, which makes the call
    invalid (`Conventions` checks every count against 0 and limits.max_tokens_per_call); None
    when there is no count (absent, empty text, a bool, a list). Never raises."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[return-value]  # negative ones are caught by the range check
    if kind is float:
        number: float = value  # type: ignore[assignment]
        return int(number) if math.isfinite(number) and number >= 0 else BAD_COUNT
    if kind is str:
        text = value.strip()  # type: ignore[attr-defined]
        if not text:
            return None
        if len(text) > MAX_COUNT_DIGITS or not text.isascii() or not text.isdigit():
            return BAD_COUNT  # "²" and "٣" pass isdigit(); 4,301 digits would make int() raise
        return int(text)
    return None


def first_int(a: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first of `keys` present in `a` with a usable token count (else a bad one, else None)."""
    return count(a.get, keys)


def count(get: Any, keys: tuple[str, ...]) -> int | None:
    """`first_int` with the mapping's bound ``get`` (the hot path: ints are taken as they are).

    A good count under any of the keys wins; a bad one (negative) is returned only when no key
    holds a good one."""
    bad: int | None = None
    for key in keys:
        value = get(key)
        if value is not None:
            number = value if type(value) is int else count_value(value)
            if number is not None:
                if number >= 0:
                    return number
                bad = number
    return bad


def first_present(a: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = a.get(key)
        if value is not None and value != "":
            return value
    return None


def seconds(value: object, per_second: int = 1) -> float | None:
    """A duration attribute given in 1/`per_second` seconds (1000: milliseconds), as seconds, when it is
    an int or a float within 0..MAX_CALL_SECONDS (times.py); else None (unknown: NaN, negative, a
    bool, text, 9.2e12 s, an int too large for a float). Never raises."""
    kind = type(value)
    if kind is not float and kind is not int:
        return None
    if not 0 <= value <= MAX_CALL_SECONDS * per_second:  # type: ignore[operator]  # NaN fails too
        return None
    return float(value) if per_second == 1 else float(value) / per_second  # type: ignore[arg-type]


def event_ttft(span: SpanRecord) -> float | None:
    """Seconds from span start to its first first-token/first-chunk event, if it has one and it is
    within 0..MAX_CALL_SECONDS of the start (else unknown: None)."""
    for name, time_ns in span.events:
        if name in FIRST_TOKEN_EVENTS:
            delta = time_ns - span.start_ns
            return delta / 1e9 if 0 <= delta <= MAX_CALL_NS else None
    return None


def error_type_text(value: object) -> str:
    """error.type as a short string (``<class 'openai.RateLimitError'>`` -> ``openai.RateLimitError``)."""
    text = value if isinstance(value, str) else str(value)
    if text.startswith("<class '") and text.endswith("'>"):
        return text[8:-2]
    return text


def says_1h(a: Mapping[str, Any]) -> bool:
    """Best effort: some attribute key mentions 1-hour cache writes with a positive count."""
    # keys only: values of other keys (message content among them) are never read
    return any("ephemeral_1h" in key and (count_value(a.get(key)) or 0) > 0 for key in a)


def token_details(value: object) -> dict[str, int]:
    """LangSmith's ``str(dict)`` token details (``{'cache_read': 4000, 'audio': 0}``) as a dict."""
    if not isinstance(value, str) or len(value) > 4096:
        return {}
    details: dict[str, int] = {}
    for part in value.strip().strip("{}").split(","):
        key, _, number = part.partition(":")
        count = count_value(number)
        if count is not None:
            details[key.strip().strip("'\"")] = count  # a bad (negative) detail makes the call invalid
    return details


class Invocation(NamedTuple):
    """What genai-meter reads of OpenInference's llm.invocation_parameters (request parameters, no content)."""

    model: object = None
    service_tier: object = None  # the tier asked for (OpenAI service_tier)
    size: object = None  # image generation: size, quality and image count
    quality: object = None
    n: object = None


NO_INVOCATION = Invocation()
_INVOCATIONS: dict[str, Invocation] = {}
INVOCATION_CACHE_LIMIT = 4096  # distinct parameter texts remembered; beyond it they are parsed each time
MAX_INVOCATION_TEXT = 65536


def invocation(value: object) -> Invocation:
    """The parts of OpenInference's llm.invocation_parameters JSON genai-meter reads (cached by text)."""
    if not isinstance(value, str) or len(value) > MAX_INVOCATION_TEXT:
        return NO_INVOCATION
    hit = _INVOCATIONS.get(value)
    if hit is not None:
        return hit
    try:
        params = json.loads(value)
    except (ValueError, RecursionError):
        params = None
    found = (Invocation(params.get("model"), params.get("service_tier"), params.get("size"), params.get("quality"),
                        params.get("n"))
             if isinstance(params, dict) else NO_INVOCATION)
    if len(_INVOCATIONS) < INVOCATION_CACHE_LIMIT and len(value) <= 1024:
        _INVOCATIONS[value] = found
    return found


def invocation_model(value: object) -> object:
    """The ``model`` of OpenInference's llm.invocation_parameters JSON (request parameters only)."""
    return invocation(value).model
