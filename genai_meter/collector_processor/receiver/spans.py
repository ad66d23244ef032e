"""Lean OTLP spans (otlp_decode.LeanRequest) -> `SpanRecord`s of the candidate (GenAI) spans.

The receiver's hot path. Measured with upb, converting attributes through the generated classes
costs ~1.3 µs per attribute (every `kv.value` builds a wrapper object); the lean schema leaves each
attribute as its raw `KeyValue` bytes, so:

* a span is screened with a few C-speed substring searches over its joined attribute bytes (the
  marker keys' first segments: `ai.`, `llm.`, ...); most non-GenAI spans end there, without a key
  decoded (~1 µs per span);
* a screened-in span's attributes are decoded by hand (`decode_key_value`: the common one-field
  string/int/double/bool encodings; anything else through the real `KeyValue` class), through a
  bounded cache of raw bytes -> (key, value), since most attribute values repeat (model names,
  operation, provider, customer ids; a value enters the cache when seen a second time, so unique
  ones such as response ids do not churn it); only then `MARKER_KEYS` decides exactly;
* resource attributes are decoded once per ResourceSpans, and only if it holds a candidate.

A candidate with an invalid trace or span id is rejected (partial success), and so is one whose end
time is no plausible instant (conventions.times.EndTimes: out of range, in the future past the skew
allowance, older than the ledger keeps); the others go on.

`SpanExtractor.extract_data` does the same from the raw body in C (`_extract.c`, an optional
accelerator built by setup.py when a C compiler is there; `ACCELERATED` says whether it is active,
`GENAI_METER_ACCELERATOR=off` switches it off). This module stays the reference: the C code defers
to it for every attribute it does not decode itself, and the tests compare both paths.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from genai_meter.conventions import MARKER_KEYS
from genai_meter.conventions.times import REJECT_END_TIMES, EndTimes
from genai_meter.records import SpanRecord

try:
    from genai_meter.collector_processor.receiver._extract import Scanner
except ImportError:  # not built (no C compiler at install): the pure path only
    Scanner = None  # type: ignore[assignment,misc]

ACCELERATOR_ENV = "GENAI_METER_ACCELERATOR"  # "off": the pure path only (read once, at import)
ACCELERATED: bool = Scanner is not None and os.environ.get(ACCELERATOR_ENV, "").strip().lower() != "off"
# SpanRecord's fields in its order, as the C code sets them (it checks they are slots; a record with
# other fields leaves the accelerator off, which tests/receiver/test_extract_accelerated.py reports)
_RECORD_FIELDS = ("name", "attributes", "resource", "start_ns", "end_ns", "is_error", "scope_name", "trace_id",
                  "span_id", "parent_span_id", "trace_state", "events")
ACCELERATED = ACCELERATED and tuple(f.name for f in fields(SpanRecord)) == _RECORD_FIELDS

REJECT_INVALID_ID = "invalid_id"
# the rejected counts `Scanner.scan` returns, in this order
SCAN_REJECTS: tuple[str, ...] = (REJECT_INVALID_ID, *REJECT_END_TIMES)
CACHE_MAX_ENTRIES = 65_536  # decoded attributes remembered (cleared when full)
CACHE_MAX_RAW_BYTES = 256  # longer attributes (prompts, payloads) are never cached
SEEN_ONCE_MAX_ENTRIES = 65_536  # attributes seen once and not cached (yet), remembered by hash

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_DOUBLE = struct.Struct("<d").unpack_from
_INT64_SIGN = 1 << 63
_UINT64 = 1 << 64


def any_value(value: Any) -> Any:
    """An OTLP AnyValue message as a Python attribute value (arrays -> tuple, kvlists -> dict);
    None when empty."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return None


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _decode_slow(raw: bytes) -> tuple[str, Any] | None:
    try:
        kv = KeyValue.FromString(raw)
    except (DecodeError, RuntimeError, ValueError):
        return None  # a broken attribute is dropped, not the span
    return kv.key, any_value(kv.value) if kv.HasField("value") else None


def decode_key_value(raw: bytes) -> tuple[str, Any] | None:
    """One serialized `KeyValue` -> (key, value); value None when empty; None when undecodable.

    Fast path for `key` then one scalar field of `value`, in that order (what every SDK writes);
    everything else (arrays, kvlists, bytes, odd field orders) goes through `KeyValue.FromString`.
    Invalid UTF-8 drops the attribute, as upb would reject it.
    """
    try:
        end = len(raw)
        if raw[0] != 0x0A:
            return _decode_slow(raw)
        length = raw[1]
        pos = 2
        if length >= 0x80:
            length, pos = _varint(raw, 1)
        stop = pos + length
        key = raw[pos:stop].decode()
        if stop == end:
            return key, None
        if raw[stop] != 0x12:
            return _decode_slow(raw)
        length = raw[stop + 1]
        pos = stop + 2
        if length >= 0x80:
            length, pos = _varint(raw, stop + 1)
        if pos + length != end:
            return _decode_slow(raw)
        if length == 0:
            return key, None
        tag = raw[pos]
        if tag == 0x0A:  # string_value
            length = raw[pos + 1]
            start = pos + 2
            if length >= 0x80:
                length, start = _varint(raw, pos + 1)
            if start + length != end:
                return _decode_slow(raw)
            return key, raw[start:].decode()
        if tag == 0x18:  # int_value
            value, stop = _varint(raw, pos + 1)
            if stop != end:
                return _decode_slow(raw)
            return key, value - _UINT64 if value >= _INT64_SIGN else value
        if tag == 0x21 and pos + 9 == end:  # double_value
            return key, _DOUBLE(raw, pos + 1)[0]
        if tag == 0x10:  # bool_value
            value, stop = _varint(raw, pos + 1)
            if stop != end:
                return _decode_slow(raw)
            return key, value != 0
        return _decode_slow(raw)
    except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
        return _decode_slow(raw)


_cache: dict[bytes, tuple[str, Any] | None] = {}
_seen_once: set[int] = set()  # hashes of raw attributes seen once (the cache's admission filter)


_DROP = ("\x00dropped", None)  # stands for an attribute left out (undecodable or empty), popped at the end


def attributes(raws: Sequence[bytes]) -> dict[str, Any]:
    """Serialized KeyValues -> attribute dict (empty values and broken attributes left out; a key
    given twice keeps its last non-empty value).

    The cache holds only attributes with a value, so when every attribute is a hit (the common case
    but for unique values such as response ids) the dict is built by C code alone; misses are
    decoded in place, in order. Thread-safe: the shared cache only sees atomic dict operations;
    cached values are immutable (kvlist values, the one mutable kind, are not cached).
    """
    hits = list(map(_cache.get, raws))
    if None in hits:
        i = hits.index(None)
        dropped = False
        while True:
            hit = _decode_and_remember(raws[i])
            if hit is None or hit[1] is None:
                hit, dropped = _DROP, True
            hits[i] = hit
            try:
                i = hits.index(None, i + 1)
            except ValueError:
                break
        if dropped:
            out = dict(hits)  # type: ignore[arg-type]  # no None left
            del out[_DROP[0]]
            return out
    return dict(hits)  # type: ignore[arg-type]  # no None left


def _decode_and_remember(raw: bytes) -> tuple[str, Any] | None:
    """A cache miss: decode `raw`; remember it when it is short, immutable and seen before.

    Admission on the second sight keeps values that never repeat (response ids, request ids) out
    of the cache: they would fill it (forcing a clear of the useful entries) and, as long-lived
    objects, make the garbage collector run full collections of the whole heap much more often.
    The first sight is noted as the raw bytes' hash (an int: nothing for the collector to track).
    """
    hit = decode_key_value(raw)
    if hit is not None and hit[1] is not None and len(raw) <= CACHE_MAX_RAW_BYTES and not isinstance(hit[1], dict):
        seen = _seen_once
        digest = hash(raw)  # computed already by the cache lookup, and kept by the bytes object
        if digest in seen:
            cache = _cache
            if len(cache) >= CACHE_MAX_ENTRIES:
                cache.clear()
            cache[raw] = hit
        else:
            if len(seen) >= SEEN_ONCE_MAX_ENTRIES:
                seen.clear()
            seen.add(digest)
    return hit


def _decode_cached(raw: bytes) -> tuple[str, Any] | None:
    """One raw attribute as `attributes` decodes it (the cache, else `decode_key_value`): the C
    accelerator's way for the attributes it does not decode itself."""
    hit = _cache.get(raw)
    return hit if hit is not None else _decode_and_remember(raw)


def marker_needles(markers: Iterable[str]) -> tuple[bytes, ...]:
    """Few byte strings, one of which occurs in the attribute bytes of any span that has one of
    `markers`: each key's first segment with its dot (`gen_ai.`, `llm.`, ...), minus those that
    contain another one (`ai.` covers `gen_ai.`). A prefilter: values may contain them too."""
    heads = {key.split(".", 1)[0] + "." for key in markers}
    kept = {h for h in heads if not any(o != h and o in h for o in heads)}
    return tuple(sorted(h.encode() for h in kept))


@dataclass(slots=True)
class Extracted:
    """What one request holds: counts, and the candidate spans."""

    received: int = 0
    not_candidate: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> spans
    candidates: list[SpanRecord] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def count_spans(request: Any) -> int:
    """Spans in a (lean or full) request, without touching any span."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class SpanExtractor:
    """Turns lean requests into `Extracted`. Stateless (but for the shared cache), thread-safe.

    A span is a candidate when one of its attribute keys is in `markers` (default: the
    conventions' MARKER_KEYS, exactly what `Conventions.classify` looks for). A candidate's end time
    must pass `end_times` at the time of the request (`now_ns`, default the clock).
    """

    def __init__(self, markers: Iterable[str] | None = None, *, end_times: EndTimes | None = None) -> None:
        if markers is None:
            markers = MARKER_KEYS
        self.markers = frozenset(markers)
        self.end_times = end_times or EndTimes()  # default: the default skew allowance, no ledger
        self.needles = marker_needles(self.markers)
        self._scanner: Scanner | None = None
        # the C scan screens a span by its keys; that equals the needle prefilter only if every marker has a dot
        if ACCELERATED and all("." in m for m in self.markers) and len(self.markers) <= 128:
            self._scanner = Scanner(self.markers, self.needles, SpanRecord, _RECORD_FIELDS, _decode_cached)

    @property
    def accelerated(self) -> bool:
        """Whether `extract_data` runs the C accelerator (else it always returns None)."""
        return self._scanner is not None

    def extract_data(self, data: bytes, now_ns: int | None = None) -> Extracted | None:
        """`extract(parse_lean(data), now_ns=now_ns)` in C, from the serialized request, for a body upb accepts.

        The same `received`, `not_candidate`, `rejected` and candidates (records equal field by
        field, attribute dicts in the same key order with the same value types); candidates of one
        ResourceSpans share one resource dict (decoded only if it holds a candidate), those of one
        ScopeSpans one scope-name str; attribute keys are interned. None when the accelerator is not
        built or switched off, or when the C code meets something it does not handle (groups, a
        key spans.attributes reserves...): then call `extract`. Never a partial result; exceptions
        raised by the Python decoding it defers to propagate. Safe on any bytes (bounds-checked).
        """
        scanner = self._scanner
        if scanner is None:
            return None
        found = scanner.scan(data, *self.end_times.bounds(time.time_ns() if now_ns is None else now_ns))
        if found is None:
            return None
        received, plain, rejects, candidates = found
        rejected = {reason: n for reason, n in zip(SCAN_REJECTS, rejects) if n} if any(rejects) else {}
        return Extracted(received, plain, rejected, candidates)

    def maybe_has_candidates(self, data: bytes) -> bool:
        """False when no marker key can occur in a raw (decompressed) body: then no span needs
        looking at. A few C-speed substring searches; True says nothing for sure."""
        return any(needle in data for needle in self.needles)

    def extract(self, request: Any, *, skip_all: bool = False, now_ns: int | None = None) -> Extracted:
        """Walk a lean request once. With `skip_all` (see `maybe_has_candidates`) spans are only counted."""
        out = Extracted()
        if skip_all:
            out.received = out.not_candidate = count_spans(request)
            return out
        oldest, newest = self.end_times.bounds(time.time_ns() if now_ns is None else now_ns)
        rejected = out.rejected
        markers = self.markers
        needles = self.needles
        candidates = out.candidates
        received = plain = 0
        join = b"".join
        for rs in request.resource_spans:
            resource: dict[str, Any] | None = None
            for ss in rs.scope_spans:
                spans = ss.spans
                received += len(spans)
                scope_name: str | None = None
                for span in spans:
                    raws = span.attributes[:]  # a list: each access to the field copies every element
                    joined = join(raws)
                    for needle in needles:
                        if needle in joined:
                            break
                    else:
                        plain += 1
                        continue
                    attrs = attributes(raws)
                    if markers.isdisjoint(attrs):
                        plain += 1
                        continue
                    trace_id = span.trace_id
                    span_id = span.span_id
                    if (len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE
                            or span_id == _ZERO_SPAN):
                        rejected[REJECT_INVALID_ID] = rejected.get(REJECT_INVALID_ID, 0) + 1
                        continue
                    end = span.end_time_unix_nano
                    if not oldest <= end <= newest:  # no plausible instant (conventions.times)
                        reason = EndTimes.reason(end, oldest, newest)
                        rejected[reason] = rejected.get(reason, 0) + 1
                        continue
                    if resource is None:
                        resource = attributes(rs.resource.attributes)
                    if scope_name is None:
                        scope_name = ss.scope.name
                    events = span.events
                    # positional, in SpanRecord's field order (records.py): keywords cost twice as much
                    candidates.append(SpanRecord(
                        span.name,
                        attrs,
                        resource,
                        span.start_time_unix_nano,
                        end,
                        span.status.code == 2,  # is_error
                        scope_name,
                        trace_id,
                        span_id,
                        span.parent_span_id,
                        span.trace_state,
                        tuple([(e.name, e.time_unix_nano) for e in events]) if events else (),
                    ))
        out.received = received
        out.not_candidate = plain
        return out
