"""The comparison's rules, one cause at a time: which side a figure comes from, folded classes, cost reports
against priced usage, the tolerance, and the explanation each row carries.

Provider lines are read from the documented page shapes (fixtures of tests/reconcile, or pages written
here in the same shape: see scenario.py); the ledger side of a row is given as the sums the ledger's
daily series holds (`LedgerSide`), so every rule is checked on exact figures. The ledger read itself
is tested end to end in test_reconciliation.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from genai_meter.config import Config, parse_config
from genai_meter.money import to_pico
from genai_meter.pricing import PriceBook
from genai_meter.reconcile import Export, read_export
from genai_meter.reconcile.compare import Reconciliation, compare
from genai_meter.reconcile.sides import LedgerSide, RowKey
from genai_meter.reconcile.store import Loaded, to_batch
from tests.reconcile.scenario import CALL_USD, EXACT_DAY, result, usage_page, write_page
from tests.reconcile.support import fixture

AUG1 = date(2025, 8, 1)
BOOK = PriceBook()


def loaded(*exports: Export) -> Loaded:
    batches = [to_batch(export, {}) for export in exports]
    return Loaded(tuple(r for b in batches for r in b.reports), tuple(line for e in exports for line in e.lines))


def ledger(calls: int, *, cost: str = "0", tokens: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0),
           unpriced: int = 0, upper_bound: int = 0, models: tuple[str, ...] = ("m",)) -> LedgerSide:
    names = ("input", "cache_read", "cache_write", "output", "reasoning")
    return LedgerSide(calls=calls, calls_unpriced=unpriced, calls_upper_bound=upper_bound,
                      tokens=dict(zip(names, tokens, strict=True)), cost_pico=to_pico(Decimal(cost)),
                      models=set(models))


def run(data: Loaded, sides: dict[RowKey, LedgerSide], first: date, last: date,
        config: Config | None = None) -> Reconciliation:
    return compare(data, sides, BOOK, (config or Config()).reconcile, first, last)


def only(rec: Reconciliation) -> dict[str, object]:
    assert len(rec.rows) == 1, [r.as_json() for r in rec.rows]
    return rec.rows[0].as_json()


def test_reasoning_inside_output_is_compared_as_the_output_total(tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(4, "default")]}))
    # the ledger splits the same 20,000 output tokens into 15,000 output and 5,000 reasoning
    side = ledger(4, cost=str(4 * CALL_USD), tokens=(64_000, 16_000, 0, 15_000, 5_000))
    row = only(run(loaded(read_export(page)), {RowKey(EXACT_DAY, "openai", "gpt-4o"): side}, EXACT_DAY, EXACT_DAY))
    assert (row["cause"], row["difference_usd"]) == ("exact", "0.000000000000")
    assert (row["tokens_output_provider"], row["tokens_reasoning_provider"], row["folded"]) == (20_000, None,
                                                                                                  ["reasoning"])
    assert (row["tokens_output_ledger"], row["tokens_reasoning_ledger"]) == (15_000, 5_000)


def test_cache_counted_differently_is_token_accounting() -> None:
    export = read_export(fixture("anthropic_usage.json"))
    key = RowKey(AUG1, "anthropic", "claude-sonnet-4-0")
    # the ledger saw the 200 cache reads as uncached input: same whole input, split otherwise
    side = ledger(3, tokens=(1700, 0, 1500, 500, 0), models=("claude-sonnet-4-20250514",))
    rec = run(loaded(export), {key: side}, AUG1, AUG1)
    row = next(r.as_json() for r in rec.rows if r.key == key)
    assert row["cause"] == "token_accounting"
    assert row["explanation"].startswith("tokens counted differently: input 1,500 (provider) against 1,700 (ledger); "
                                         "cache_read 200 (provider) against 0 (ledger)")
    assert row["requests_provider"] is None  # Anthropic's usage report counts no requests


def test_more_tokens_in_every_class_without_a_request_count_is_unmetered_calls() -> None:
    export = read_export(fixture("anthropic_usage.json"))
    key = RowKey(AUG1, "anthropic", "claude-sonnet-4-0")
    side = ledger(1, tokens=(500, 100, 1000, 200, 0))
    row = next(r.as_json() for r in run(loaded(export), {key: side}, AUG1, AUG1).rows if r.key == key)
    assert row["cause"] == "unmetered_calls"
    assert "no request count" in str(row["explanation"])


def test_usage_without_ledger_calls_is_an_unmetered_service_and_calls_without_usage_are_ledger_only(
        tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(2, "default")]}))
    other = RowKey(EXACT_DAY, "openai", "gpt-4.1-mini")
    later = EXACT_DAY + timedelta(days=7)
    uncovered = RowKey(later, "openai", "gpt-4o")  # no report covers that day: not compared
    rec = run(loaded(read_export(page)), {other: ledger(3, cost="0.01"), uncovered: ledger(9, cost="1")},
              EXACT_DAY, later)
    rows = {r.key.model: r.as_json() for r in rec.rows}
    assert set(rows) == {"gpt-4o", "gpt-4.1-mini"}
    assert (rows["gpt-4o"]["cause"], rows["gpt-4o"]["difference_usd"]) == ("unmetered_service", "0.190000000000")
    assert rows["gpt-4o"]["explanation"] == ("the ledger holds no call of this model that day; the provider reports "
                                             "2 requests ($0.19)")
    assert (rows["gpt-4.1-mini"]["cause"], rows["gpt-4.1-mini"]["cost_provider_usd"]) == ("ledger_only",
                                                                                          "0.000000000000")
    assert rows["gpt-4.1-mini"]["difference_usd"] == "-0.010000000000"


def test_a_cost_report_gives_the_providers_cost_and_credits_have_a_row_of_their_own() -> None:
    usage, costs = read_export(fixture("openai_completions.json")), read_export(fixture("openai_costs.json"))
    gpt4o = RowKey(AUG1, "openai", "gpt-4o")
    side = ledger(5, cost="1.2", tokens=(200, 800, 0, 500, 0))
    rec = run(loaded(usage, costs), {gpt4o: side}, AUG1, AUG1)
    rows = {r.key.model: r.as_json() for r in rec.rows}
    # 0.06 + 1.2345678901234567 (a JSON number, read as the exact decimal written; rounded once to 10^-12)
    assert (rows["gpt-4o"]["cost_provider_usd"], rows["gpt-4o"]["cost_provider_source"]) == ("1.294567890123",
                                                                                              "cost_report")
    assert (rows["gpt-4o"]["cause"], rows["gpt-4o"]["difference_usd"]) == ("price", "0.094567890123")
    assert "another price version, a discount or the provider's rounding" in str(rows["gpt-4o"]["explanation"])
    assert (rows[""]["cause"], rows[""]["cost_provider_usd"]) == ("unmetered_service", "-0.500000000000")  # credit
    # gpt-4o-mini has usage but the cost report names no cost for it: it cost nothing that day
    assert (rows["gpt-4o-mini"]["cost_provider_usd"], rows["gpt-4o-mini"]["cause"]) == ("0.000000000000",
                                                                                        "unmetered_service")


def test_a_tier_the_catalog_has_no_price_for_is_named(tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(4, "flex")]}))
    key = RowKey(EXACT_DAY, "openai", "gpt-4o")
    row = only(run(loaded(read_export(page)), {key: ledger(4, cost="0.3", tokens=(64_000, 16_000, 0, 20_000, 0))},
                   EXACT_DAY, EXACT_DAY))
    assert row["cost_provider_source"] == "partly_priced"  # gpt-4o has no flex price: the standard one stands in
    assert (row["cause"], row["difference_usd"]) == ("price", "0.080000000000")
    assert row["explanation"] == ("same usage, the provider's cost is $0.08 higher: it billed 4 requests at the flex "
                                  "tier (no price for tier:flex: priced at the standard rate)")


def test_a_difference_below_the_tolerance_is_exact(tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(4, "default")]}))
    key = RowKey(EXACT_DAY, "openai", "gpt-4o")
    tokens = (64_000, 16_000, 0, 20_000, 0)
    near = ledger(4, cost="0.3799996", tokens=tokens)
    assert only(run(loaded(read_export(page)), {key: near}, EXACT_DAY, EXACT_DAY))["cause"] == "exact"
    strict = parse_config({"reconcile": {"tolerance_usd": "0"}})
    row = only(run(loaded(read_export(page)), {key: near}, EXACT_DAY, EXACT_DAY, strict))
    assert (row["cause"], row["difference_usd"]) == ("price", "0.000000400000")


def test_unpriced_ledger_calls_leave_the_difference_unknown(tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(2, "default")]}))
    key = RowKey(EXACT_DAY, "openai", "gpt-4o")
    row = only(run(loaded(read_export(page)), {key: ledger(2, unpriced=2, tokens=(32_000, 8_000, 0, 10_000, 0))},
                   EXACT_DAY, EXACT_DAY))
    assert (row["cost_ledger_usd"], row["difference_usd"], row["difference_pct"]) == (None, None, None)
    assert row["cause"] == "price" and "the ledger's calls have no price" in str(row["explanation"])


def test_costs_in_another_currency_are_priced_from_the_usage_instead(tmp_path: Path) -> None:
    csv = tmp_path / "eur.csv"
    csv.write_text("Date,Meter,Requests,Input tokens,Output tokens,Cost,Currency\n"
                   f"{EXACT_DAY},gpt-4o,4,80000,20000,0.35,EUR\n", encoding="utf-8")
    config = parse_config({"reconcile": {"mappings": {"eur": {
        "provider": "openai", "columns": {"day": "Date", "model": "Meter", "requests": "Requests",
                                          "input": "Input tokens", "output": "Output tokens", "cost": "Cost",
                                          "currency": "Currency"}}}}})
    export = read_export(csv, config.reconcile.mappings, "eur")
    batch = to_batch(export, config.reconcile.mappings)
    data = Loaded(tuple(batch.reports), export.lines)
    key = RowKey(EXACT_DAY, "openai", "gpt-4o")
    rec = compare(data, {key: ledger(4, cost="0.4", tokens=(80_000, 0, 0, 20_000, 0))}, BOOK, config.reconcile,
                  EXACT_DAY, EXACT_DAY)
    row = only(rec)
    # 80,000 x $2.50 + 20,000 x $10 per million: $0.40, as the ledger
    assert (row["cost_provider_source"], row["cost_provider_usd"], row["cause"]) == ("priced", "0.400000000000",
                                                                                    "exact")
    assert rec.rows[0].provider.notes == ["costs stated in EUR: priced from the usage instead"]


def test_audio_units_the_ledger_does_not_keep_are_token_accounting(tmp_path: Path) -> None:
    page = usage_page({EXACT_DAY: [dict(result(4, "default"), input_audio_tokens=1000)]})  # beside input_tokens
    key = RowKey(EXACT_DAY, "openai", "gpt-4o")
    row = only(run(loaded(read_export(write_page(tmp_path / "u.json", page))),
                   {key: ledger(4, cost="0.38", tokens=(64_000, 16_000, 0, 20_000, 0))}, EXACT_DAY, EXACT_DAY))
    assert row["units_provider"] == {"input_audio_tokens": 1000}
    assert row["cause"] == "token_accounting"
    assert row["explanation"].startswith("the provider also bills 1,000 input_audio_tokens, which the ledger does not")


def test_matched_projects_split_the_rows(tmp_path: Path) -> None:
    page = write_page(tmp_path / "u.json", usage_page({EXACT_DAY: [result(2, "default", project="p1"),
                                                                    result(3, "default", project="p2")]}))
    config = parse_config({"reconcile": {"match_dimensions": {"project": "project"}}})
    sides = {RowKey(EXACT_DAY, "openai", "gpt-4o", "p1"): ledger(2, cost="0.19", tokens=(32_000, 8_000, 0, 10_000, 0)),
             RowKey(EXACT_DAY, "openai", "gpt-4o", "p2"): ledger(2, cost="0.19", tokens=(32_000, 8_000, 0, 10_000, 0))}
    rec = run(loaded(read_export(page)), sides, EXACT_DAY, EXACT_DAY, config)
    assert [(r.key.project, r.cause) for r in rec.rows] == [("p1", "exact"), ("p2", "unmetered_calls")]
    assert rec.total().as_json()["difference_usd"] == "0.095000000000"
