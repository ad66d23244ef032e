"""The Meter's call templates: classification worked out once per template key, not per span.

`Conventions.template_key` names, for the spans of templated shapes (conventions.templates), the
values that decide every field of a call but its per-call numbers. The first span of a key is
classified in full; its call becomes the key's template only if `Conventions.from_template`
rebuilds that same call from it exactly (a run-time check of the templates' contract). Later spans
of the key take the template and their own token counts, times and ids.

A template whose calls carry no weight, conversation or user id also gets a bulk entry (`entries`, read by
metering.tally) when `PriceBook.price_window` says its calls ending near the first one's end time are priced
by one plan; the entry holds for that window of end times, and `renew` works it out again when a call
priced per call ends outside it (a tier price that starts on a date, the clock passing it).

Bounded (`MAX_TEMPLATES`, then the cache starts over); thread-safe without locks (single dict
operations; a racing miss learns twice; templates are never changed; an entry carries its own window).
"""

from __future__ import annotations

from typing import Any

from genai_meter.collector_processor.metering.tally import TallyEntry
from genai_meter.conventions import Conventions
from genai_meter.conventions.templates import token_counts
from genai_meter.pricing import PriceBook
from genai_meter.pricing.book import NEVER_BULK
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
        # the same keys, for templates whose price holds over a window of end times (metering.tally counts
        # their calls that end in it in bulk)
        self.entries: dict[tuple[Any, ...], TallyEntry] = {}
        # keys priced per call only in a window of end times (start, stop): renewed for a call outside it
        self._per_call: dict[tuple[Any, ...], tuple[int, int]] = {}

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
            self._per_call.clear()
        if rebuilt != call:
            templates[key] = _REFUSED
            return
        templates[key] = call
        if call.sample_weight == 1.0 and not call.conversation_id and not call.user_id and not call.estimate:
            self._price_entry(key, call, call.end_ns)

    def renew(self, key: tuple[Any, ...], template: LLMCall, end_ns: int) -> None:
        """After `Meter.assess` priced a call of `key` (its `template`) that ends at `end_ns`: when the key's
        bulk entry, or its answer "not in bulk", was for another window of end times (a price that starts
        on a date), work it out again for the window around `end_ns`. One dict lookup when it holds."""
        entry = self.entries.get(key)
        if entry is not None:
            if entry.valid_from <= end_ns < entry.valid_until:
                return
        else:
            window = self._per_call.get(key)
            if window is None or window[0] <= end_ns < window[1]:
                return  # not a template of bulk counting (whatever the time), or not in this window
        self._price_entry(key, template, end_ns)

    def _price_entry(self, key: tuple[Any, ...], call: LLMCall, end_ns: int) -> None:
        """The key's bulk entry priced for the window around `end_ns`, or that window in `_per_call`."""
        window = self.prices.price_window(call.provider, call.model, end_ns, service_tier=call.service_tier,
                                          batch=call.batch, units=bool(call.units))
        if window.bulk:
            self.entries[key] = TallyEntry.of(call, window.plan, window.start_ns, window.stop_ns)
            self._per_call.pop(key, None)
            return
        self.entries.pop(key, None)
        if window.start_ns != NEVER_BULK.start_ns or window.stop_ns != NEVER_BULK.stop_ns:
            self._per_call[key] = (window.start_ns, window.stop_ns)  # per call here, perhaps not elsewhen
