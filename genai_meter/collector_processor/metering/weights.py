"""OTel probability sampling read from a span's W3C `tracestate`.

The `ot` list member carries the sampling decision (OTel "TraceState: Probability Sampling"):
`ot=th:<hex>` is the rejection threshold T of 1 to 14 hex digits (right-padded with zeros to 56
bits); a span was kept with probability p = (2^56 - T) / 2^56 and stands for 1/p spans (its
*adjusted count*). The legacy form `ot=p:<n>` means p = 2^-n (n = 63: probability zero). When both
are present `th` wins. Anything malformed reads as "no sampling information".
"""

from __future__ import annotations

from functools import lru_cache

_MAX_THRESHOLD = 1 << 56
# The largest adjusted count a call is weighted by (a sampling probability of one in a million). A span can
# say far more (th: up to 2^56, p: up to 2^62), which would make its weighted figures and the ledger's
# integer millionths (weight_micro) overflow; weighted by more, a call is invalid (INVALID_SAMPLE_WEIGHT).
MAX_SAMPLE_WEIGHT = 1_000_000.0
INVALID_SAMPLE_WEIGHT = "sample_weight_out_of_range"  # LLMCall.invalid, and the rejected{reason} of such calls


def adjusted_count(trace_state: str) -> float | None:
    """1/p for a span sampled with probability p < 1; None when unsampled, p = 1 or unknown.

    A zero-probability span (`p:63`) has adjusted count 0.0 (it counts for nothing).
    Never raises; results are cached per distinct tracestate string.
    """
    if not trace_state or "ot=" not in trace_state:
        return None
    return _adjusted_count(trace_state)


@lru_cache(maxsize=1024)
def _adjusted_count(trace_state: str) -> float | None:
    for member in trace_state.split(","):
        key, sep, value = member.strip().partition("=")
        if sep and key == "ot":
            return _from_ot_value(value)
    return None


def _from_ot_value(value: str) -> float | None:
    fields: dict[str, str] = {}
    for item in value.split(";"):
        k, sep, v = item.partition(":")
        if sep and k not in fields:
            fields[k] = v
    th = fields.get("th")
    if th is not None:
        if not 1 <= len(th) <= 14 or any(c not in "0123456789abcdef" for c in th):
            return None
        threshold = int(th.ljust(14, "0"), 16)
        if threshold == 0:
            return None  # sampled at 100 %: nothing was dropped
        return _MAX_THRESHOLD / (_MAX_THRESHOLD - threshold)
    p = fields.get("p")
    if p is not None:
        if not p.isdigit() or len(p) > 2 or int(p) > 63:
            return None
        n = int(p)
        if n == 0:
            return None
        return 0.0 if n == 63 else float(1 << n)
    return None
