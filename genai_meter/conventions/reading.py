"""What a source reader found on one inference span, and the arithmetic that splits it into the
five disjoint token classes of `records.TokenCounts`."""

from __future__ import annotations

from genai_meter import contract
from genai_meter.records import TokenCounts


class Reading:
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
    # counts beside the five (conventions.units): genai-prices usage keys (audio, image, 1-hour cache writes,
    # web searches ...) counted as genai-prices counts them (audio input is a part of the input), None: none
    details: dict[str, int] | None = None
    service_tier = ""  # a tier the source states outside the common keys (price_context.normal_tier form)
    batch = False  # the source says the call went through a batch API

    def __init__(self, source: str, operation: str) -> None:
        self.source = source
        self.operation = operation


def has_usage(reading: Reading) -> bool:
    return not (reading.inp is None and reading.out is None and reading.cache_read is None
                and reading.cache_write is None and reading.reasoning is None)


INVALID_TOKEN_COUNT = contract.INVALID_TOKEN_COUNT  # LLMCall.invalid: a count < 0, > the ceiling, or not a number


def out_of_range(reading: Reading, ceiling: int) -> bool:
    """True if any count the span reported is negative (or not a count at all, see
    values.count_value) or above `ceiling` (limits.max_tokens_per_call): the call is invalid."""
    # unrolled: this runs for every LLM span (an absent count is the class default, None)
    n = reading.inp
    if n is not None and not 0 <= n <= ceiling:
        return True
    n = reading.out
    if n is not None and not 0 <= n <= ceiling:
        return True
    n = reading.cache_read
    if n is not None and not 0 <= n <= ceiling:
        return True
    n = reading.cache_write
    if n is not None and not 0 <= n <= ceiling:
        return True
    n = reading.reasoning
    if n is not None and not 0 <= n <= ceiling:
        return True
    n = reading.total
    return n is not None and not 0 <= n <= ceiling


def split_tokens(reading: Reading) -> tuple[TokenCounts, bool]:
    """The five disjoint classes from a source's counts (`split_counts`); and whether the span
    reported any usage."""
    inp, out, cache_read, cache_write, reasoning = (reading.inp, reading.out, reading.cache_read,
                                                    reading.cache_write, reading.reasoning)
    if inp is None and out is None and cache_read is None and cache_write is None and reasoning is None:
        return TokenCounts(), False
    return split_counts(inp, out, cache_read, cache_write, reasoning, reading.total, reading.inclusive,
                        reading.reasoning_in_output), True


def split_counts(inp: int | None, out: int | None, cache_read: int | None, cache_write: int | None,
                 reasoning: int | None, total: int | None, inclusive: bool, reasoning_in_output: bool
                 ) -> TokenCounts:
    """The five disjoint classes from counts as a source reports them (None = not reported).

    Inclusive sources: uncached input = input - cache_read - cache_write. Cache counts larger than
    the input are clamped (cache_read first, then cache_write) so that the three input classes sum
    to the reported input. Exclusive sources: input is already uncached. A missing input with cache
    counts present is taken as cache only. Reasoning is a part of output (clamped to it) unless the
    source keeps it apart, or the span's total equals input + output + reasoning.
    """
    reported_input = inp
    cache_read = cache_read or 0
    cache_write = cache_write or 0
    reasoning = reasoning or 0
    out = out or 0
    if inclusive:
        if inp is None:
            inp = cache_read + cache_write
        if cache_read + cache_write > inp:
            cache_read = min(cache_read, inp)
            cache_write = min(cache_write, inp - cache_read)
        uncached = inp - cache_read - cache_write
    else:
        uncached = inp or 0
    if reasoning:
        if reasoning_in_output and not (total is not None and reported_input is not None
                                        and total == reported_input + out + reasoning):
            if reasoning > out:
                reasoning = out
            out -= reasoning
        # else: reasoning is counted beside output (the source says so, or its total does: Gemini style)
    return TokenCounts(uncached, cache_read, cache_write, out, reasoning)
