"""The Meter's call templates: classification worked out once per template key, not per span.

`Conventions.template_key` names, for the spans of templated shapes (conventions.templates), the
values that decide every field of a call but its per-call numbers. The first span of a key is
classified in full; its call becomes the key's template only if `Conventions.from_template`
rebuilds that same call from it exactly (a run-time check of the templates' contract). Later spans
of the key take the template and their own token counts, times and ids.

Bounded (`MAX_TEMPLATES`, then the cache starts over); thread-safe without locks (single dict
operations; a racing miss learns twice; templates are never changed).
"""

from __future__ import annotations

from typing import Any

from genai_meter.collector_processor.metering.tally import TallyEntry
from genai_meter.conventions import Conventions
from genai_meter.conventions.templates import token_counts
from genai_meter.pricing import PriceBook
from genai_meter.records import LLMCall, SpanRecord

MAX_TEMPLATES = 8192  # distinct (shape, resource labels, status, deciding values) remembered
_REFUSED = False  # a key whose first call did not rebuild exactly: always the full classifier


class CallTemplates:
    """Template calls by key, for one `Conventions`."""

    def __init__(self, conventions: Conventions, prices: PriceBook, max_tokens: int) -> None:
        self.conventions = conventions
        self.prices = prices
        self.max_tokens = max_tokens
        self._templates: dict[tuple[Any, ...], LLMCall | bool] = {}
        # the same keys, for templates whose price is fixed (metering.tally counts their calls in bulk)
        self.entries: dict[tuple[Any, ...], TallyEntry] = {}

    def find(self, span: SpanRecord) -> tuple[tuple[Any, ...], LLMCall | bool | None, tuple[int | None, ...]] | None:
        """(key, its template: a call, None when not learned yet, False when refused; the raw token
        counts) for a span that may take a template; None when it needs the full classifier."""
        key = self.conventions.template_key(span)
        if key is None:
            return None
        counts = token_counts(span.attributes, self.max_tokens)
        if counts is None:
            return None
        try:
            template = self._templates.get(key)
        except TypeError:  # an unhashable deciding value (a list attribute): no template
            return None
        return key, template, counts

    def learn(self, key: tuple[Any, ...], call: LLMCall, rebuilt: LLMCall) -> None:
        """Keep `call` (fully classified) as the template of `key` if `rebuilt` (the same span through
        `from_template` with `call` as template, identified alike) equals it; else refuse the key."""
        templates = self._templates
        if len(templates) >= MAX_TEMPLATES:
            templates.clear()
            self.entries.clear()
        if rebuilt != call:
            templates[key] = _REFUSED
            return
        templates[key] = call
        fixed, plan = self.prices.fixed_price(call.provider, call.model, service_tier=call.service_tier,
                                              batch=call.batch, units=bool(call.units))
        if (fixed and call.sample_weight == 1.0 and not call.conversation_id and not call.user_id
                and not call.estimate):
            self.entries[key] = TallyEntry.of(call, plan)
