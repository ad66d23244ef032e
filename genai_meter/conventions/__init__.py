"""Span attributes of every known instrumentation -> the canonical `LLMCall`.

`Conventions.classify` turns one finished span into an `LLMCall` (an inference call) or a skip reason
(`contract.SKIP_NOT_LLM`, `SKIP_AGGREGATE`, `SKIP_NON_INFERENCE`). It owns the per-source token
arithmetic: every source's counts end up in the five disjoint classes of `records.TokenCounts`.
The sources, the keys read and every decision are described in docs/conventions.md.

Rooms: `keys` (attribute names), `tables` (source families, provider and operation names),
`family` (which source made a span), one reader module per source family (`semconv`,
`openllmetry`, `openinference`, `vercel`, `pydantic_ai`, `openlit`, `langsmith`, `adk`,
`bedrock`), `reading` (the token split), `values` (attribute value parsing), `times` (which end times,
durations and times to first token a span may have) and `classifier`.

Contracts:
- Pure and thread-safe: no I/O, no locks, no state beyond small bounded lookup caches.
- May raise only on a broken record (the pipeline counts and drops such spans); attribute values of
  unexpected types are ignored, never trusted.
- Message content (prompts, completions, tool arguments) is never read.
- `is_candidate` is the cheap pre-filter (one C-level set scan, ~0.2 us for a 10-attribute span);
  `classify` returns `SKIP_NOT_LLM` for exactly the spans it rejects.
"""

from genai_meter.conventions.classifier import Conventions
from genai_meter.conventions.keys import MARKER_KEYS
from genai_meter.conventions.tables import is_candidate, normalize_operation, normalize_provider

__all__ = ["MARKER_KEYS", "Conventions", "is_candidate", "normalize_operation", "normalize_provider"]
