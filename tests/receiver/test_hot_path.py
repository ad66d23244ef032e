"""The receiver's hot path (issue 13): the attribute dict built by C code gives the same dict as the
one-by-one decoding, and the garbage-collector threshold of a receiver process only goes up."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from genai_meter.collector_processor.receiver import spans as spans_mod
from genai_meter.collector_processor.receiver.ingest import tune_garbage_collector
from genai_meter.collector_processor.receiver.spans import attributes, decode_key_value


def _raw(key: str, **value: Any) -> bytes:
    return KeyValue(key=key, value=AnyValue(**value)).SerializeToString()


def _one_by_one(raws: list[bytes]) -> dict[str, Any]:
    """The reference: each attribute decoded in order; empty values and broken attributes left out."""
    out: dict[str, Any] = {}
    for raw in raws:
        hit = decode_key_value(raw)
        if hit is not None and hit[1] is not None:
            out[hit[0]] = hit[1]
    return out


RAWS = [
    _raw("gen_ai.operation.name", string_value="chat"),
    _raw("gen_ai.usage.input_tokens", int_value=120),
    _raw("k", string_value="first"),
    KeyValue(key="k").SerializeToString(),  # the same key again, empty: the first value stays
    b"\x0a\xff",  # broken: dropped, the others stay
    _raw("gen_ai.response.id", string_value="chatcmpl-unique"),
    _raw("k2", string_value="a"),
    _raw("k2", string_value="b"),  # the same key again: the last value wins
    _raw("flag", bool_value=True),
]


@pytest.mark.parametrize("warm", [0, 1, 2, 3])
def test_attributes_equal_one_by_one_decoding_cold_and_cached(monkeypatch: pytest.MonkeyPatch, warm: int) -> None:
    monkeypatch.setattr(spans_mod, "_cache", {})
    monkeypatch.setattr(spans_mod, "_seen_once", set())
    for _ in range(warm):  # the second sight admits attributes into the cache
        attributes(RAWS)
    assert attributes(RAWS) == _one_by_one(RAWS)
    assert list(attributes(RAWS)) == list(_one_by_one(RAWS))  # key order too
    assert all(value[1] is not None for value in spans_mod._cache.values())  # empty values are never cached


def test_the_garbage_collector_threshold_only_goes_up() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_garbage_collector(5000)
        assert gc.get_threshold() == (5000, 10, 10)
        tune_garbage_collector(100)
        assert gc.get_threshold() == (5000, 10, 10)
    finally:
        gc.set_threshold(*before)
