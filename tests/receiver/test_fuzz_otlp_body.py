"""Fuzzing the OTLP/HTTP body path: whatever the bytes, decoding answers BadRequest / TooLarge /
UnsupportedEncoding or a request, and counting a decoded request never raises. Bounded examples,
no deadline flakiness; runs in CI."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.receiver.decode import (
    MEDIA_JSON,
    MEDIA_PROTOBUF,
    BadRequest,
    TooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
)
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from tests.support.otlp import json_request, json_span, llm_attributes, make_request, make_span, plain_span

LIMIT = 256 * 1024
EXPECTED = (BadRequest, TooLarge, UnsupportedEncoding)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_CONFIG = Config()
_METRICS = UsageMetrics(_CONFIG)
_INGESTOR = Ingestor(build_meter(_CONFIG, [_METRICS]), _METRICS, SeenSpans(600, 100_000))

SEED_PROTOBUF = make_request([make_span(llm_attributes(customer="fuzz", cached=10)), plain_span()]).SerializeToString()
SEED_JSON = json.dumps(json_request([json_span(llm_attributes(customer="fuzz-json"))])).encode()


def body_path(body: bytes, encoding: str, media: str) -> None:
    """What OtlpHttpHandler does with a body after the head checks."""
    try:
        data = decompress(body, encoding, LIMIT)
        decoded = decode(data, media, full=True)
    except EXPECTED:
        return
    outcome = _INGESTOR.export(decoded)
    assert outcome.rejected >= 0


def mutate(seed: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[: max(1, cut % (len(data) + 1))])


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["", "gzip", "deflate", "br"]),
       st.sampled_from([MEDIA_PROTOBUF, MEDIA_JSON]))
def test_random_bytes(body: bytes, encoding: str, media: str) -> None:
    body_path(body, encoding, media)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8), st.integers(0, 10_000),
       st.booleans())
def test_mutated_protobuf(edits: list[tuple[int, int]], cut: int, compress: bool) -> None:
    body = mutate(SEED_PROTOBUF, edits, cut)
    body_path(gzip.compress(body) if compress else body, "gzip" if compress else "", MEDIA_PROTOBUF)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(32, 126)), max_size=8), st.integers(0, 10_000))
def test_mutated_json(edits: list[tuple[int, int]], cut: int) -> None:
    body_path(mutate(SEED_JSON, edits, cut), "", MEDIA_JSON)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30)


@FUZZ
@given(json_values)
def test_json_of_any_shape(value: object) -> None:
    body_path(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [value]}]}]}).encode(), "", MEDIA_JSON)
    body_path(json.dumps(value).encode(), "", MEDIA_JSON)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_corrupt_compressed_streams(edits: list[tuple[int, int]]) -> None:
    for encoding, packed in (("gzip", gzip.compress(SEED_PROTOBUF)), ("deflate", zlib.compress(SEED_PROTOBUF))):
        body_path(mutate(packed, edits, len(packed)), encoding, MEDIA_PROTOBUF)


def test_service_metrics_still_render_after_fuzzing() -> None:
    text = _METRICS.render(True).decode()
    assert text.endswith("# EOF\n")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bombs_of_every_encoding(encoding: str) -> None:
    raw = b"\0" * (8 * LIMIT)
    packed = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    with pytest.raises(TooLarge):
        decompress(packed, encoding, LIMIT)
