"""One call, two LLM spans: the outer one is skipped as `nested_llm`.

When two instrumentations wrap the same call (a LangChain span around the openai span, or two
openai instrumentations active at once), both spans carry the call's usage. The inner span ends
first; its parent is remembered, and when that parent ends as an LLM span too it does not count.
"""

from __future__ import annotations

from genai_meter.records import SpanRecord


class NestedCalls:
    """A bounded memory of the parents of recently counted LLM spans, keyed by trace + span id.

    Thread-safe for the pipeline's use: single dict operations only (atomic under the GIL).
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._parents: dict[bytes, None] = {}

    def check_and_note(self, span: SpanRecord) -> bool:
        """True if a child LLM span of `span` was already counted; then remember `span`'s parent,
        which must not count again. One call on the hot path. An entry stays until evicted, so a
        parent assessed again (a retry after a ledger error) is still recognised."""
        trace_id = span.trace_id
        if not trace_id:
            return False
        parents = self._parents
        nested = (trace_id + span.span_id) in parents
        if span.parent_span_id:
            parents[trace_id + span.parent_span_id] = None
            if len(parents) > self.max_entries:
                try:
                    del parents[next(iter(parents))]  # the oldest entry
                except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                    pass
        return nested
