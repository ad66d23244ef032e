"""A bad export is one `ReconcileError` naming the file and the field, never a partial result;
overlapping and repeated reports are caught. Shapes as in test_openai.py and test_anthropic.py."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from genai_meter.reconcile import Coverage, ReconcileError, read_export
from tests.reconcile.support import fixture, load, write_json

AUG1 = 1754006400
HOUR = 3600


def error_of(path: Path) -> str:
    with pytest.raises(ReconcileError) as err:
        read_export(path)
    return str(err.value)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("input_tokens", None, "data[0].results[0].input_tokens: missing"),
    ("num_model_requests", None, "data[0].results[0].num_model_requests: missing"),
    ("input_tokens", "1000", "data[0].results[0].input_tokens: expected a whole number, got '1000'"),
    ("input_tokens", True, "data[0].results[0].input_tokens: expected a whole number, got True"),
    ("input_tokens", 12.5, "data[0].results[0].input_tokens: expected a whole number, got Decimal('12.5')"),
    ("output_tokens", -1, "data[0].results[0].output_tokens: expected a count >= 0, got -1"),
    ("batch", "yes", "data[0].results[0].batch: expected true or false, got 'yes'"),
    ("model", 4, "data[0].results[0].model: expected a string, got 4"),
])
def test_bad_fields_name_the_file_and_the_field(tmp_path: Path, key: str, value: object, message: str) -> None:
    page = load("openai_completions.json")
    result = page["data"][0]["results"][0]  # type: ignore[index]
    if value is None:
        del result[key]
    else:
        result[key] = value
    path = write_json(tmp_path, "usage.json", page)
    assert error_of(path) == f"{path}: {message}"


def test_bucket_times_are_checked(tmp_path: Path) -> None:
    page = load("openai_completions.json")
    page["data"][0]["start_time"] = "2025-08-01"  # type: ignore[index]
    path = write_json(tmp_path, "usage.json", page)
    assert error_of(path) == f"{path}: data[0].start_time: expected a whole number, got '2025-08-01'"
    page = load("openai_costs.json")
    page["data"][0]["end_time"] = AUG1 + 2 * 86400  # type: ignore[index]
    path = write_json(tmp_path, "costs.json", page)
    assert error_of(path) == (f"{path}: data[0]: bucket 2025-08-01T00:00:00Z..2025-08-03T00:00:00Z spans more than "
                              "one UTC day (export with bucket_width 1d, 1h or 1m)")


def test_unknown_kinds(tmp_path: Path) -> None:
    path = write_json(tmp_path, "other.json", {"object": "list", "data": []})
    assert error_of(path) == (f"{path}: (top level): unknown file kind: not an OpenAI usage or costs page, an "
                              "Anthropic usage or cost report, or an OpenRouter activity response")
    page = load("openai_costs.json")
    page["data"][0]["results"][0]["object"] = "organization.usage.vector_stores.result"  # type: ignore[index]
    path = write_json(tmp_path, "vs.json", page)
    assert error_of(path).startswith(f"{path}: data[0].results[0].object: unknown OpenAI result object "
                                     "'organization.usage.vector_stores.result'")
    text = tmp_path / "notes.txt"
    text.write_text("hello, world\nthis is not an export\n", encoding="utf-8")
    assert error_of(text).startswith(f"{text}: unknown file kind:")
    binary = tmp_path / "x.json"
    binary.write_bytes(b"\xff\xfe{")
    assert error_of(binary) == f"{binary}: not UTF-8 text (byte 0)"
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    assert error_of(empty) == f"{empty}: empty file"
    assert error_of(tmp_path / "missing.json").startswith(f"{tmp_path / 'missing.json'}: cannot read: ")


def test_mixed_currencies_in_a_costs_page(tmp_path: Path) -> None:
    page = load("openai_costs.json")
    page["data"][0]["results"][2]["amount"]["currency"] = "eur"  # type: ignore[index]
    path = write_json(tmp_path, "costs.json", page)
    assert error_of(path) == f"{path}: mixed currencies EUR, USD: one export states one currency"


def test_one_report_per_file(tmp_path: Path) -> None:
    path = write_json(tmp_path, "both.json", [load("openai_completions.json"), load("openai_costs.json")])
    assert error_of(path) == (f"{path}: mixes openai.costs and openai.usage.completions pages: one report per file")
    path = write_json(tmp_path, "two.json", [load("openai_costs.json"), load("anthropic_cost.json")])
    assert error_of(path) == f"{path}: mixes anthropic and openai pages: one report per file"
    page = load("openai_costs.json")
    page["data"][0]["results"].append(dict(load("openai_completions.json")["data"][0]["results"][0]))  # type: ignore
    path = write_json(tmp_path, "mixed.json", page)
    assert error_of(path) == (f"{path}: data[0].results[3].object: expected 'organization.costs.result' like the rest "
                              "of the file, got 'organization.usage.completions.result'")


def test_page_locations_in_lists_and_json_lines(tmp_path: Path) -> None:
    bad = load("openai_costs.json")
    del bad["data"][0]["results"][1]["amount"]["value"]  # type: ignore[index]
    path = write_json(tmp_path, "pages.json", [load("openai_costs.json"), bad])
    # (the second page repeats the first's bucket too, but the bad field is found first)
    assert error_of(path) == f"{path}: [1].data[0].results[1].amount.value: missing"
    lines = tmp_path / "pages.jsonl"
    lines.write_text(json.dumps(load("openai_costs.json")) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    assert error_of(lines) == f"{lines}, line 3: data[0].results[1].amount.value: missing"
    lines.write_text(json.dumps(load("openai_costs.json")) + "\n{not json\n", encoding="utf-8")
    assert error_of(lines) == f"{lines}: line 2: not JSON (Expecting property name enclosed in double quotes, column 2)"


def test_the_same_bucket_twice_is_refused_not_counted_twice(tmp_path: Path) -> None:
    path = write_json(tmp_path, "twice.json", [load("openai_costs.json"), load("openai_costs.json")])
    assert error_of(path) == (f"{path}: [1].data[0]: openai.costs bucket 2025-08-01T00:00:00Z overlaps an earlier one "
                              "(the same bucket twice would count twice)")


def test_a_partly_covered_day_is_refused(tmp_path: Path) -> None:
    page = load("openai_completions.json")
    page["data"][0]["start_time"] = AUG1 + 17 * HOUR  # type: ignore[index]  (an export started at 17:00)
    path = write_json(tmp_path, "partial.json", page)
    assert error_of(path) == (f"{path}: openai.usage.completions for 2025-08-01 covers only part of the UTC day "
                              "(nothing from 00:00:00 to 17:00:00): export whole UTC days")


def test_hourly_buckets_that_tile_a_day_cover_it(tmp_path: Path) -> None:
    result = load("openai_costs.json")["data"][0]["results"][0]  # type: ignore[index]
    page = {"object": "page", "has_more": False, "next_page": None,
            "data": [{"object": "bucket", "start_time": AUG1 + h * HOUR, "end_time": AUG1 + (h + 1) * HOUR,
                      "results": [result]} for h in range(24)]}
    export = read_export(write_json(tmp_path, "hourly.json", page))
    assert len(export.lines) == 24 and {line.day for line in export.lines} == {date(2025, 8, 1)}
    assert export.covers == {Coverage("openai", date(2025, 8, 1), "openai.costs")}
    buckets = page["data"]
    path = write_json(tmp_path, "gap.json", dict(page, data=buckets[:5] + buckets[6:]))  # type: ignore[operator]
    assert "covers only part of the UTC day (nothing from 05:00:00 to 06:00:00)" in error_of(path)
    path = write_json(tmp_path, "short.json", dict(page, data=buckets[:-1]))  # type: ignore[index]
    assert "(nothing from 23:00:00 to 24:00:00)" in error_of(path)


def test_pages_without_results_cannot_tell_usage_from_costs(tmp_path: Path) -> None:
    page = load("openai_costs.json")
    page["data"][0]["results"] = []  # type: ignore[index]
    path = write_json(tmp_path, "empty.json", page)
    assert error_of(path).startswith(f"{path}: no results in any bucket, so usage cannot be told from costs")


def test_overlapping_files_cover_the_same_days_so_a_second_import_replaces() -> None:
    # two reads of one file cover the same (provider, day, kind): an import replaces them, never adds
    first, again = read_export(fixture("anthropic_usage.json")), read_export(fixture("anthropic_usage.json"))
    assert first == again and first.covers == again.covers
    assert {(c.provider, c.day) for c in first.covers} == first.pairs() == {
        ("anthropic", date(2025, 8, 1)), ("anthropic", date(2025, 8, 2))}
    # usage and cost reports of one day are different kinds: importing one never replaces the other
    cost = read_export(fixture("anthropic_cost.json"))
    assert cost.pairs() <= first.pairs() and not cost.covers & first.covers
