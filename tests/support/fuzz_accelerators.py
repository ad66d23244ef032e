"""Differential fuzzing of the five C accelerators against their Python references, for a bounded time.

    python -m tests.support.fuzz_accelerators [--seconds 120] [--seed N]

Round robin until the time is up, over:

- extraction (`_extract.c` vs `SpanExtractor.extract`): random OTLP requests (the hypothesis strategy of
  tests/receiver/test_extract_accelerated.py), byte-level mutations of valid bodies (edits, insertions,
  deletions, splices, truncation) and junk, each with and without a ledger's end-time bounds; a body upb
  refuses must not crash the C scan, a body it accepts must give the same result or None (a give-up);
- the bulk tally (`_tally.c` vs `Tally.run_pure`): the generated requests of tests/metering/test_tally.py,
  and its hostile spans (str subclasses that change the span while it is read);
- the ledger parameters (`_tally_params.c` vs `params_pure`): generated Taken lists and every odd shape;
- the series additions of a group (`_group_add.c` vs `add_group_pure`): generated groups and broken ones;
- the per-call CSV (`_call_csv.c` vs `format_rows_pure`, and `label_rows` vs `label_row_cells`): generated rows
  of any 64-bit numbers and any text, with units; stored label sets with their dimensions' JSON as ledgers write
  it and as json.loads reads otherwise or refuses it.

A divergence stops the run with the failing input (exit 1). Meant to run under `make sanitize` (the
extensions built with AddressSanitizer and UBSan, which abort on a report), but runs on any build. Prints
what ran: examples per target, and how often the C extraction gave up on a body upb accepts, by cause.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.support.sanitized  # noqa: F401  # first: the sanitizer build, when $GENAI_METER_SANITIZED names one
from genai_meter.collector_processor.receiver.decode import BadRequest, parse_lean
from tests.exporters import test_group_add as group_tests
from tests.metering import test_tally as tally_tests
from tests.receiver import test_extract_accelerated as extract_tests
from tests.receiver import test_tally_params as params_tests
from tests.reports.render import test_call_csv as call_csv_tests
from tests.support.sanitized import loaded_files

SLICE_S = 3.0  # each turn of a target runs about this long

_counts: Counter[str] = Counter()
_give_ups: Counter[str] = Counter()
_TMP = Path(tempfile.mkdtemp(prefix="genai-meter-fuzz-"))


class Target:
    """A hypothesis target run in slices: each turn draws as many examples as fit in SLICE_S (from the
    time per example so far), with fresh randomness and no example database."""

    def __init__(self, name: str, body: Callable[..., None], *strategies: st.SearchStrategy[Any]) -> None:
        self.name, self.body, self.strategies = name, body, strategies
        self.examples, self.seconds = 0, 0.0

    def __call__(self) -> None:
        per_example = self.seconds / self.examples if self.examples else 0.05
        n = max(1, min(5000, int(SLICE_S / max(per_example, 1e-5))))
        run = settings(max_examples=n, deadline=None, database=None, derandomize=False,
                       suppress_health_check=list(HealthCheck))(given(*self.strategies)(self.body))
        started = time.monotonic()
        run()
        self.seconds += time.monotonic() - started
        self.examples += n


def compare_extraction(data: bytes, target: str) -> None:
    """Both extraction paths on `data`, with and without a retention bound: equal, or a C give-up (counted)."""
    _counts[target] += 1
    try:
        lean = parse_lean(data)
    except BadRequest:
        for extractor in extract_tests.BOTH:
            found = extractor.extract_data(data, extract_tests.NOW)
            assert found is None or isinstance(found, extract_tests.Extracted)
        _counts["bodies upb refuses"] += 1
        return
    _counts["bodies upb accepts"] += 1
    for extractor in extract_tests.BOTH:
        found = extractor.extract_data(data, extract_tests.NOW)
        if found is None:
            _give_ups[give_up_cause(data)] += 1
            return
        extract_tests.assert_same(found, extractor.extract(lean, now_ns=extract_tests.NOW))


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """The fields of a well-formed message (upb accepted it): (number, wire type, payload or value); a group is
    one field of wire type 3 whose payload is its content."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            out.append((number, wire, varint()))
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, wire, data[pos:pos + size]))
            pos += size
        elif wire == 2:
            size = varint()
            out.append((number, wire, data[pos:pos + size]))
            pos += size
        elif wire == 3:  # a group: up to its end tag (nested groups counted)
            start, depth = pos, 1
            while depth:
                inner = varint()
                inner_wire = inner & 7
                depth += {3: 1, 4: -1}.get(inner_wire, 0)
                if inner_wire == 0:
                    varint()
                elif inner_wire in (1, 5):
                    pos += 8 if inner_wire == 1 else 4
                elif inner_wire == 2:
                    size = varint()
                    pos += size
            out.append((number, wire, data[start:pos]))
        else:
            raise ValueError("an end-group tag alone")
    return out


# where the C scan looks into sub-messages: (message, field number) -> the sub-message's name
_NESTED = {("request", 1): "ResourceSpans", ("ResourceSpans", 1): "Resource", ("ResourceSpans", 2): "ScopeSpans",
           ("ScopeSpans", 1): "Scope", ("ScopeSpans", 2): "Span", ("Span", 11): "Event", ("Span", 15): "Status"}


def give_up_cause(data: bytes, message: str = "request") -> str:
    """Why the C scan gave up on a body upb accepts, by a walk of what it walks: the first field it does not
    handle (a group, an int attribute whose varint has bits past the 64th, the reserved key), else "other"."""
    for number, wire, payload in _fields(data):
        if wire == 3:
            return f"a group (an unknown field) in a {message}"
        if wire != 2 or not isinstance(payload, bytes):
            continue
        nested = _NESTED.get((message, number))
        if nested is not None:
            cause = give_up_cause(payload, nested)
            if cause != "other":
                return cause
        elif (message, number) in (("Span", 9), ("Resource", 1)):  # a raw attribute
            attribute = {n: p for n, w, p in _fields_or_empty(payload) if w == 2}
            value = _fields_or_empty(attribute.get(2, b"")) if isinstance(attribute.get(2), bytes) else []
            if attribute.get(1) == b"\0dropped":
                return "the key spans.attributes reserves"
            if any(n == 3 and w == 0 and isinstance(v, int) and v >= 2**64 for n, w, v in value):
                return "an int attribute whose varint has bits past the 64th"
    return "other"


def _fields_or_empty(data: bytes) -> list[tuple[int, int, bytes | int]]:
    try:
        return _fields(data)
    except (IndexError, ValueError):  # an attribute's bytes are not looked at by upb: anything
        return []


def fuzz_random_requests(data: bytes) -> None:
    compare_extraction(data, "extraction: random requests")


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A valid body changed at the byte level: edits, insertions, deletions, a splice of another, a cut."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[at % len(data)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        elif op == 2:
            del data[at:at + rng.randrange(1, 8)]
        elif op == 3:
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            data[at:at] = other[start:start + rng.randrange(1, 64)]
        else:
            data = data[:at]
    return bytes(data)


def mutation_turn(rng: random.Random) -> None:
    """Byte-level and structural bodies: twice the others' slice (what a request reaches first)."""
    seeds = _seeds()
    deadline = time.monotonic() + 2 * SLICE_S
    while time.monotonic() < deadline:
        for _ in range(25):
            compare_extraction(mutate(rng, seeds), "extraction: mutated bodies")
            compare_extraction(structured_body(rng), "extraction: structured bodies")
        compare_extraction(rng.randbytes(rng.randrange(96)), "extraction: junk")


def _varint(n: int) -> bytes:
    return extract_tests.varint(n)


def unknown_field(rng: random.Random, numbers: tuple[int, ...]) -> bytes:
    """A field the lean schema does not declare (or declares with another wire type): any wire type, groups too."""
    number = rng.choice(numbers)
    wire = 3 if rng.random() < 0.01 else rng.choice([0, 1, 2, 5])  # groups: rare (the C scan leaves them to upb)
    if wire == 0:
        return _varint(number << 3) + _varint(rng.choice([0, 1, 2**63, 2**64 - 1, rng.randrange(2**70)]) % 2**64)
    if wire in (1, 5):
        return _varint(number << 3 | wire) + rng.randbytes(8 if wire == 1 else 4)
    if wire == 2:
        return extract_tests.ld(number, rng.randbytes(rng.randrange(6)))
    inner = b"".join(unknown_field(rng, (1, 2, 3)) for _ in range(rng.randrange(2)) if wire == 3 and rng.random() < 0.5)
    return _varint(number << 3 | 3) + inner + _varint(number << 3 | 4)


def attribute_bytes(rng: random.Random) -> bytes:
    """A raw KeyValue: one of the test cases, a mutation of one, or bytes (upb does not look into them)."""
    cases = [raw for case in extract_tests.ATTRIBUTE_CASES.values() for raw in case] + [extract_tests.MARKER]
    raw = rng.choice(cases)
    pick = rng.random()
    if pick < 0.2:
        return mutate(rng, [raw or b"\x0a\x00"])
    if pick < 0.25:
        return rng.randbytes(rng.randrange(12))
    return raw


def structured_body(rng: random.Random) -> bytes:
    """A request upb accepts (mostly): every level's fields in random order, some given twice, unknown fields
    of every wire type (groups too) among them, raw attributes of every encoding, end times at the bounds."""
    ld = extract_tests.ld

    def shuffled(parts: list[bytes], numbers: tuple[int, ...]) -> bytes:
        parts = parts + [unknown_field(rng, numbers) for _ in range(rng.choice([0, 0, 0, 1, 2]))]
        rng.shuffle(parts)
        return b"".join(parts)

    def span() -> bytes:
        trace_id, span_id = rng.choice([extract_tests.VALID_IDS] * 6 + [(bytes(16), b"\x02" * 8), (b"", b"")])
        parts = [ld(1, trace_id), ld(2, span_id), ld(5, rng.choice([b"chat", b"", "é".encode()])),
                 b"\x39" + rng.randbytes(8),
                 b"\x41" + rng.choice(list(extract_tests.EDGES)).to_bytes(8, "little"),
                 *[ld(9, attribute_bytes(rng)) for _ in range(rng.randrange(1, 8))], ld(9, extract_tests.MARKER)]
        parts += [ld(11, shuffled([b"\x09" + rng.randbytes(8), ld(2, b"gen_ai.first_token")], (3, 4, 9)))
                  for _ in range(rng.randrange(3))]
        parts += [ld(15, shuffled([b"\x18" + _varint(rng.choice([0, 1, 2, 2**64 - 1]))], (1, 2, 4)))
                  for _ in range(rng.randrange(3))]
        if rng.random() < 0.3:
            parts += [ld(3, b"ot=th:8"), ld(4, b"\x03" * 8)]
        return shuffled(parts, (6, 10, 12, 13, 14, 16, 99))

    def scope_spans() -> bytes:
        parts = [ld(2, span()) for _ in range(rng.randrange(1, 4))]
        parts += [ld(1, shuffled([ld(1, b"scope")], (2, 3, 4)))] * rng.randrange(3)
        return shuffled(parts, (3, 4, 99))

    def resource_spans() -> bytes:
        parts = [ld(2, scope_spans()) for _ in range(rng.randrange(1, 3))]
        parts += [ld(1, shuffled([ld(1, attribute_bytes(rng)) for _ in range(rng.randrange(3))], (2, 3)))
                  for _ in range(rng.randrange(3))]
        return shuffled(parts, (3, 4, 99))

    return shuffled([ld(1, resource_spans()) for _ in range(rng.randrange(1, 3))], (2, 3, 99))


_seed_bodies: list[bytes] = []


def _seeds() -> list[bytes]:
    if not _seed_bodies:
        _seed_bodies.extend(extract_tests.SEEDS)
        _seed_bodies.append(extract_tests.request([([], [("sc", [extract_tests._ended(end, n) for n, end in
                                                                 enumerate(extract_tests.EDGES)])])]))
        for case in extract_tests.ATTRIBUTE_CASES.values():
            raws = [*case, extract_tests.MARKER]
            _seed_bodies.append(extract_tests.request([(case, [("sc", [extract_tests.SPAN + b"".join(
                extract_tests.ld(9, raw) for raw in raws)])])]))
    return _seed_bodies


def fuzz_tally(requests: list[Any], weight: bool, max_parents: int | None) -> None:
    _counts["tally: generated requests"] += 1
    tally_tests._compare(requests, tally_tests._config(_TMP, weight), max_parents)


def hostile_turn() -> None:
    """The hostile-span tests of test_tally.py (each builds fresh meters), a few times."""
    for _ in range(3):
        tally_tests.test_an_event_name_that_empties_the_event_list_when_compared(_TMP)
        tally_tests.test_a_trace_state_whose_truth_test_replaces_the_token_counts(_TMP)
        tally_tests.test_spans_that_could_run_python_code_go_to_the_reference_alike(_TMP)
        tally_tests.test_odd_spans_take_the_reference_path_alike()
        _counts["tally: hostile and odd spans (rounds)"] += 1


def fuzz_params(taken: list[Any], shape: str) -> None:
    _counts["params: generated calls"] += 1
    heads = [params_tests.HEAD, (8, "conv", "user", 4, "no price", "", 1, 250_000, 1), params_tests.HEAD]
    assert params_tests._outcome(params_tests._accelerated, taken, heads) == params_tests._outcome(
        params_tests.tr.params_pure, taken, heads)
    odd_taken, odd_heads = params_tests.SHAPES[shape]
    mixed = taken + list(odd_taken) if isinstance(odd_taken, list) else odd_taken
    assert params_tests._outcome(params_tests._accelerated, mixed, odd_heads) == params_tests._outcome(
        params_tests.tr.params_pure, mixed, odd_heads)


def fuzz_group_add(case: Any, how: str | None) -> None:
    _counts["group add: generated groups"] += 1
    if how is None:
        args, tables = case[0], group_tests.as_tables(case[1])
    else:
        args, tables = group_tests.broken(case, how)
    got, error = group_tests.run(group_tests.c_add_group(), args, tables)
    want, pure_error = group_tests.run(group_tests.add_group_pure, args, tables)
    assert type(error) is type(pure_error), (error, pure_error)
    assert got == want or error is not None


def fuzz_call_csv(case: Any) -> None:
    _counts["call csv: generated pages"] += 1
    call_csv_tests.test_generated_rows_format_alike.hypothesis.inner_test(case)  # type: ignore[attr-defined]


def fuzz_label_rows(labels: list[str], text: str) -> None:
    _counts["call csv: generated label-set rows"] += 1
    call_csv_tests.test_label_rows_render_alike.hypothesis.inner_test(labels, text)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to fuzz (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the byte-level mutations")
    args = parser.parse_args(argv)
    for file in loaded_files():  # with $GENAI_METER_SANITIZED: each from the sanitizer build, or a RuntimeError
        print(f"extension: {file}")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    turns: list[Callable[[], None]] = [
        Target("random requests", fuzz_random_requests, extract_tests.RANDOM_REQUESTS),
        lambda: mutation_turn(rng),
        Target("tally", fuzz_tally, tally_tests._requests(), st.booleans(), st.sampled_from([None, 1, 3])),
        hostile_turn,
        Target("params", fuzz_params, st.lists(params_tests._taken(), max_size=20),
               st.sampled_from(sorted(params_tests.SHAPES))),
        Target("group add", fuzz_group_add, group_tests.groups(), st.sampled_from([None, *group_tests.BREAKS])),
        Target("call csv", fuzz_call_csv, call_csv_tests.generated_rows()),
        Target("label rows", fuzz_label_rows, st.lists(call_csv_tests.TEXT, max_size=8),
               call_csv_tests.dimension_texts())]
    started = time.monotonic()
    deadline = started + args.seconds
    rounds = 0
    while time.monotonic() < deadline:
        for turn in turns:
            turn()
            if time.monotonic() >= deadline:
                break
        rounds += 1
    print(f"fuzzed for {time.monotonic() - started:.0f} s ({rounds} rounds, mutation seed {seed}); no divergence")
    for name, n in sorted(_counts.items()):
        print(f"  {name}: {n:,}")
    accepted = _counts["bodies upb accepts"]
    gave_up = sum(_give_ups.values())
    if accepted:
        print(f"  the C extraction gave up on {gave_up:,} of {accepted:,} bodies upb accepts "
              f"({100 * gave_up / accepted:.1f} %), the pure path took them:")
        for cause, n in _give_ups.most_common():
            print(f"    {cause}: {n:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
