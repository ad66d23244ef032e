"""OTel probability sampling read from tracestate."""

from __future__ import annotations

import pytest

from genai_meter.collector_processor.metering.weights import adjusted_count


@pytest.mark.parametrize(("trace_state", "expected"), [
    ("ot=th:8", 2.0),  # threshold 0x8 -> p = 1/2
    ("ot=th:c", 4.0),  # p = 1/4
    ("ot=th:f", 16.0),
    ("ot=th:fd70a4", 1 / (1 - 0xfd70a4 / 0x1000000)),  # ~1 %
    ("vendor=x, ot=rv:abcdefabcdefab;th:8 ,other=y", 2.0),
    ("ot=p:3", 8.0),  # legacy p-value: p = 2^-3
    ("ot=p:63", 0.0),  # zero probability
    ("ot=p:2;th:8", 2.0),  # th wins
])
def test_adjusted_count(trace_state: str, expected: float) -> None:
    assert adjusted_count(trace_state) == pytest.approx(expected)


@pytest.mark.parametrize("trace_state", [
    "", "vendor=ot=th:8", "ot=th:0", "ot=p:0", "ot=th:", "ot=th:xyz", "ot=th:123456789012345",
    "ot=p:64", "ot=p:-1", "ot=rv:abcdef", "ott=th:8", "ot=TH:8",
])
def test_no_sampling_information(trace_state: str) -> None:
    assert adjusted_count(trace_state) is None
