"""The pipeline shared by the in-process processor and the OTLP receiver.

span (SpanRecord) -> conventions: LLMCall or a skip reason -> pricing: Cost or unpriced -> recorders.

One call, two LLM spans: see `metering.nested`. Probability-sampled spans get `sample_weight` 1/p
when `sampling.weight_by_adjusted_count` is on, on both paths alike; a weight above
`weights.MAX_SAMPLE_WEIGHT` makes the call invalid (`weights.INVALID_SAMPLE_WEIGHT`).

A call of a model that bills audio, image or video tokens apart, seen through a source that reports
totals only (`conventions.units.unreported_modalities`), is priced with every token as text and gets
`LLMCall.estimate` saying so (`estimate_of`).

`Meter.process` is the one path every span takes; it never raises (a failure is counted in
`genai_meter_processing_errors_total` and logged once per kind) and takes no locks of its own
(recorders are thread-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from genai_meter import contract
from genai_meter.collector_processor.metering import tally as tally_module
from genai_meter.collector_processor.metering.nested import NestedCalls
from genai_meter.collector_processor.metering.tally import (
    G_CALLS,
    G_COSTS,
    G_DUR_COUNTS,
    G_DURS,
    G_ENTRY,
    G_TOKENS,
    G_TTFT_COUNTS,
    G_TTFTS,
    G_USED,
    UNPRICED,
    Tally,
)
from genai_meter.collector_processor.metering.templates import CallTemplates
from genai_meter.collector_processor.metering.weights import INVALID_SAMPLE_WEIGHT, MAX_SAMPLE_WEIGHT, adjusted_count
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.conventions.attribution import CONVERSATION_KEYS, USER_KEYS, first_text, request_model_of
from genai_meter.conventions.units import MODALITY_UNITS, unreported_modalities
from genai_meter.pricing import PriceBook
from genai_meter.pricing.rates import PICO_LIMIT, pico_in_range
from genai_meter.records import Cost, LLMCall, SpanRecord, TokenCounts, ToolCall

log = logging.getLogger("genai_meter")
MAX_ESTIMATES = 4096  # (provider, model, modalities) judged; past it the memory starts over

_CONVERSATION_KEY_SET = frozenset(CONVERSATION_KEYS)
_USER_KEY_SET = frozenset(USER_KEYS)


class Recorder(Protocol):
    """A metric sink. Implementations are thread-safe and never block on I/O."""

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Count one inference call; `cost` None means no price matched (unpriced)."""

    def record_skip(self, reason: str) -> None:
        """Count one span that was not an inference call."""

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a genai_meter_* self-metric (names in genai_meter.contract)."""


class Meter:
    """Turns finished spans into metric updates on every recorder."""

    def __init__(self, config: Config, recorders: Sequence[Recorder], *,
                 conventions: Conventions | None = None, prices: PriceBook | None = None,
                 templates: bool = True) -> None:
        self.config = config
        self.recorders = tuple(recorders)
        self.conventions = conventions or Conventions(config)
        self.prices = prices or PriceBook.from_config(config)
        self.nested = NestedCalls()
        # classification once per template key instead of per span (metering.templates)
        self.templates = (CallTemplates(self.conventions, self.prices, config.limits.max_tokens_per_call)
                          if templates else None)
        # count templated calls in bulk (`tally`): by default only when metering.tally runs in C (its
        # pure-Python reference costs more per span than assessing and recording each call)
        self.bulk = tally_module.ACCELERATED
        # probability-sampled spans count 1/p times when the config asks for estimates (docs/accuracy.md)
        self.weight_sampled = config.sampling.weight_by_adjusted_count
        for recorder in self.recorders:  # every figure traces back to the prices that made it
            set_info = getattr(recorder, "set_pricing_info", None)  # optional: recorders with an info metric
            if set_info is not None:
                set_info(self.prices.catalog_version, self.prices.overrides_version, self.prices.catalog_date)
            set_units = getattr(recorder, "set_custom_units", None)  # optional: the custom units priced
            if set_units is not None:
                set_units(sorted({unit for entry in self.prices.overrides for unit in entry.custom}))
        # (provider, model, modalities a call's source does not report) -> LLMCall.estimate ("" = none)
        self._estimates: dict[tuple[str, str, frozenset[str]], str] = {}
        self._label_cap = config.limits.max_label_value_length
        self._logged_errors: set[str] = set()
        # (resource mapping, its conversation id, its user id), by identity: the spans of one
        # ResourceSpans (receiver) or one SDK (in-process) share the mapping; replaced atomically
        self._resource_ids: tuple[object, str, str] = (None, "", "")

    def process(self, span: SpanRecord) -> tuple[LLMCall, Cost | None] | None:
        """Meter one span into every recorder: `assess`, then `record`. Returns the call and its cost
        (None: unpriced or invalid), or None for a skipped span. Never raises."""
        outcome = self.assess(span)
        if outcome is None:
            return None
        if isinstance(outcome, str):
            self.record_skip(outcome)
            return None
        if isinstance(outcome, ToolCall):
            self.record_skip(contract.SKIP_NON_INFERENCE)
            self.record_tool(outcome)
            return None
        return outcome if self.record(*outcome) else None

    def assess(self, span: SpanRecord) -> tuple[LLMCall, Cost | None] | ToolCall | str | None:
        """Classify and price `span` without recording anything: the call and its cost (None when
        unpriced or invalid), a skip reason, a `ToolCall` (a tool span: skipped as `non_inference`,
        counted by tool), or None after a counted processing error. Never raises.

        The receiver records only what its ledger stored (docs/ledger.md), so the two steps are apart.
        """
        try:
            found = self.templates.find(span) if self.templates is not None else None
            if found is not None and found[1]:
                return self._assess_templated(found[1], span, found[2])  # type: ignore[arg-type]
            outcome = self.conventions.classify(span)
            if isinstance(outcome, str):
                if outcome == contract.SKIP_NON_INFERENCE:
                    return self.conventions.tool_call(span) or outcome
                return outcome
            if self.nested.check_and_note(span):
                return contract.SKIP_NESTED
            self._weigh(outcome, span)
            self._identify(outcome, span)
            if outcome.invalid:
                return outcome, None  # implausible token counts are never priced
            self._estimate(outcome)
            if found is not None and found[1] is None and self.templates is not None:
                rebuilt = self.conventions.from_template(outcome, span, found[2])
                self._weigh(rebuilt, span)
                self._identify(rebuilt, span)
                self.templates.learn(found[0], outcome, rebuilt)
            return self._priced(outcome)
        except Exception as exc:  # never into the app, never lose the other spans
            self.count_error(exc)
            return None

    def _assess_templated(self, template: LLMCall, span: SpanRecord, counts: tuple[int | None, ...]
                          ) -> tuple[LLMCall, Cost | None] | str:
        """`assess` for a span whose template key has a template: the same outcome, classified once per key."""
        call = self.conventions.from_template(template, span, counts)
        if self.nested.check_and_note(span):
            return contract.SKIP_NESTED
        self._weigh(call, span)
        self._identify(call, span)
        if call.invalid:
            return call, None  # weighted past MAX_SAMPLE_WEIGHT: never priced
        return self._priced(call)

    def _priced(self, call: LLMCall) -> tuple[LLMCall, Cost | None]:
        """`call` and its cost (None: unpriced). A cost the ledger cannot hold (a class or the total at
        2^63 * 10^-12 USD or more, `pico_in_range`) makes the call invalid (contract.INVALID_COST): a copy
        (`call` may be a template now) with no tokens and no cost, as for implausible token counts."""
        cost = self.prices.cost(call)
        if cost is None:
            return call, None
        pico = cost.pico or cost.picos()
        if (min(pico) >= 0 and sum(pico) < PICO_LIMIT) or pico_in_range(pico):  # (the common case first)
            return call, cost
        return replace(call, invalid=contract.INVALID_COST, tokens=TokenCounts()), None

    def _estimate(self, call: LLMCall) -> None:
        """Set `call.estimate` when its model bills a modality apart that its span cannot report."""
        missing = unreported_modalities(call.source, call.units)
        if not missing:
            return
        key = (call.provider, call.model, missing)
        estimate = self._estimates.get(key)
        if estimate is None:
            estimate = self.estimate_of(call, missing)
            if len(self._estimates) >= MAX_ESTIMATES:
                self._estimates.clear()
            self._estimates[key] = estimate
        if estimate:
            call.estimate = estimate

    def estimate_of(self, call: LLMCall, missing: frozenset[str]) -> str:
        """The assumption a call's cost rests on when its model prices tokens of a `missing` modality on
        their own (its price at the call's end time): "" when none does, or the model is unpriced."""
        at = datetime.fromtimestamp(call.end_ns / 1e9, UTC)
        quote = self.prices.quote(call.provider, call.model, at)
        if quote is None:
            return ""
        table = quote.plan.units
        apart = [modality for modality in sorted(missing) if any(
            (price := table.price_of(unit)) is not None and price.unit == unit for unit in MODALITY_UNITS[modality])]
        if not apart:
            return ""
        return (f"{' and '.join(apart)} tokens not reported by {call.source or 'its'} spans: "
                f"every token priced as text")

    def _weigh(self, call: LLMCall, span: SpanRecord) -> None:
        """Probability-sampled spans count 1/p when the config asks for estimates. A weight above
        MAX_SAMPLE_WEIGHT makes the call invalid (no tokens, never priced, weight 1: nothing it says is counted)."""
        if self.weight_sampled and span.trace_state:
            weight = adjusted_count(span.trace_state)
            if weight is not None:
                if weight <= MAX_SAMPLE_WEIGHT:
                    call.sample_weight = weight
                else:
                    call.invalid, call.tokens = INVALID_SAMPLE_WEIGHT, TokenCounts()

    def record(self, call: LLMCall, cost: Cost | None) -> bool:
        """Count an assessed call in every recorder (an invalid call only in a self-metric); False
        when a recorder failed (counted as a processing error). Never raises."""
        try:
            if call.invalid:
                for recorder in self.recorders:
                    recorder.record_self(contract.SELF_SPANS_REJECTED, reason=call.invalid)
                return True
            for recorder in self.recorders:
                recorder.record_call(call, cost)
            return True
        except Exception as exc:
            self.count_error(exc)
            return False

    def tally(self) -> Tally | None:
        """A `Tally` over this Meter's templates (metering.tally), or None when calls cannot be counted
        in bulk: no templates or shape plans, or other recorders than one that counts groups."""
        plans = self.conventions._plans
        if (not self.bulk or self.templates is None or plans is None or len(self.recorders) != 1
                or not hasattr(self.recorders[0], "record_group")):
            return None
        return Tally(templates=self.templates.entries, plans=plans._plans, conventions=self.conventions, meter=self,
                     parents=self.nested._parents, max_parents=self.nested.max_entries,
                     max_tokens=self.config.limits.max_tokens_per_call, weight_sampled=self.weight_sampled,
                     duration_bounds=contract.DURATION_BUCKETS, ttft_bounds=contract.TTFT_BUCKETS)

    def record_tally(self, tally: Tally, keep: Sequence[bool] | None = None) -> tuple[int, int]:
        """Count the tally's taken calls (those whose `keep` flag, aligned with `tally.taken`, is true)
        in the recorder, a group at a time where it can, else call by call; returns the calls
        counted and their cost in 10^-12 USD. Never raises."""
        recorder: Any = self.recorders[0]
        groups = tally.groups if keep is None else tally.regroup(keep)
        counted = pico = 0
        members = None
        for group in groups:
            try:
                entry = group[G_ENTRY]
                used = group[G_USED]
                prices = None if used == UNPRICED else entry.plan.brackets[0].unit_prices(used)
                done = recorder.record_group(entry.call, prices, group[G_CALLS], group[G_TOKENS:G_COSTS],
                                             group[G_COSTS:G_DUR_COUNTS], group[G_DUR_COUNTS], group[G_DURS],
                                             group[G_TTFT_COUNTS], group[G_TTFTS])
            except Exception as exc:
                self.count_error(exc)
                continue
            if done:
                counted += group[G_CALLS]
                pico += sum(group[G_COSTS:G_DUR_COUNTS])
                continue
            if members is None:
                members = tally.members(keep)
            for taken in members[(group[G_ENTRY], group[G_USED])]:  # new series, budgets, overflows: one by one
                if self.record(*tally.call_of(taken)):
                    counted += 1
                    pico += sum(taken.costs)
        return counted, pico

    def record_rejected(self, reason: str) -> None:
        """Count one span refused before metering (genai_meter_spans_rejected_total{reason}) in every recorder.
        Never raises."""
        try:
            for recorder in self.recorders:
                recorder.record_self(contract.SELF_SPANS_REJECTED, reason=reason)
        except Exception as exc:
            self.count_error(exc)

    def record_skip(self, reason: str, count: int = 1) -> None:
        """Count `count` spans skipped for `reason` in every recorder. Never raises."""
        try:
            for recorder in self.recorders:
                for _ in range(count):
                    recorder.record_skip(reason)
        except Exception as exc:
            self.count_error(exc)

    def record_tool(self, tool: ToolCall) -> None:
        """Count one tool execution in every recorder that counts tools. Never raises."""
        try:
            for recorder in self.recorders:
                record = getattr(recorder, "record_tool", None)  # optional: metric stores count tools
                if record is not None:
                    record(tool)
        except Exception as exc:
            self.count_error(exc)

    def _identify(self, call: LLMCall, span: SpanRecord) -> None:
        """The call's identity and attribution beyond the dimensions: ids, conversation, user, request model."""
        call.trace_id = span.trace_id
        call.span_id = span.span_id
        call.parent_span_id = span.parent_span_id
        attributes, resource, cap = span.attributes, span.resource, self._label_cap
        # = attribution.conversation_of / user_of: span keys first, then the resource's; a span with
        # none of the keys (one C-level test) skips the scan, a resource is read once
        ids = self._resource_ids
        if ids[0] is not resource:
            ids = (resource, first_text(resource, CONVERSATION_KEYS, cap), first_text(resource, USER_KEYS, cap))
            self._resource_ids = ids
        call.conversation_id = (("" if _CONVERSATION_KEY_SET.isdisjoint(attributes)
                                 else first_text(attributes, CONVERSATION_KEYS, cap)) or ids[1])
        call.user_id = (("" if _USER_KEY_SET.isdisjoint(attributes)
                         else first_text(attributes, USER_KEYS, cap)) or ids[2])
        call.request_model = request_model_of(attributes, cap) or call.model

    def count_error(self, exc: Exception) -> None:
        """Count a processing error (genai_meter_processing_errors_total) and log its kind once."""
        kind = type(exc).__name__
        for recorder in self.recorders:
            try:
                recorder.record_self(contract.SELF_PROCESSING_ERRORS)
            except Exception:  # pragma: no cover - a broken recorder must not break the others
                pass
        if kind not in self._logged_errors:
            self._logged_errors.add(kind)
            log.exception("genai-meter: a span could not be metered (%s); further %s errors are only counted",
                          kind, kind)
