"""Any provider's CSV export through a `reconcile.mappings` entry of the config.

The fixture azure_costs.csv is an invented layout (a daily cost export in EUR with cached input
counted inside input), the kind of file a mapping exists for; no provider shape is implied.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genai_meter.config import ConfigError, parse_config
from genai_meter.config_reconcile import CsvMappingConfig
from genai_meter.reconcile import Coverage, ReconcileError, read_export
from tests.reconcile.support import fixture

AZURE = {
    "provider": "azure.ai.openai",
    "columns": {"day": "Date", "model": "Meter", "project": "Deployment", "input": "Input tokens",
                "cache_read": "Cached input tokens", "output": "Output tokens", "requests": "Requests",
                "cost": "Cost", "currency": "Currency"},
    "input_includes_cache": True,
}


def mappings(**entries: dict[str, object]) -> dict[str, CsvMappingConfig]:
    config = parse_config({"reconcile": {"mappings": entries}})
    return dict(config.reconcile.mappings)


def test_mapped_csv_lines_subtract_cache_from_input_and_flag_non_usd() -> None:
    export = read_export(fixture("azure_costs.csv"), mappings(azure=AZURE))
    first, second = export.lines
    assert (first.day, first.provider, first.model, first.model_key, first.project) == (
        date(2025, 8, 1), "azure.ai.openai", "gpt-4o-2024-08-06", "gpt-4o", "prod-eastus")
    assert first.tokens.as_dict() == {"input": 10000, "cache_read": 2000, "cache_write": 0, "output": 3000,
                                      "reasoning": 0}
    assert (first.requests, first.cost_pico, first.currency, first.non_usd) == (40, 45_500_000_000, "EUR", True)
    # unmapped: cache writes are inside the input that includes cache, reasoning inside output
    assert first.folded == ("cache_write", "reasoning")
    assert first.source.kind == "csv:azure"
    assert export.covers == {Coverage("azure.ai.openai", date(2025, 8, 1), "csv:azure"),
                             Coverage("azure.ai.openai", date(2025, 8, 2), "csv:azure")}
    assert second.input == 6000 and second.cost_pico == 22_900_000_000


def test_cached_above_input_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text("Date,Meter,Deployment,Input tokens,Cached input tokens,Output tokens,Requests,Cost,Currency\n"
                    "2025-08-01,gpt-4o,d,100,101,1,1,0.1,EUR\n", encoding="utf-8")
    with pytest.raises(ReconcileError) as err:
        read_export(path, mappings(azure=AZURE))
    assert str(err.value) == (f"{path}: row 2, column Input tokens: inconsistent counts: cache_read (101) exceed it "
                              "(100)")


def test_mixed_currencies_in_one_file_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    text = fixture("azure_costs.csv").read_text(encoding="utf-8").replace("0.0229,EUR", "0.0229,USD")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReconcileError) as err:
        read_export(path, mappings(azure=AZURE))
    assert str(err.value) == f"{path}: mixed currencies EUR, USD: one export states one currency"


def test_mapping_by_name_and_ambiguous_headers() -> None:
    both = mappings(azure=AZURE, other=dict(AZURE, provider="openai"))
    with pytest.raises(ReconcileError, match="the header fits mappings azure, other: pick one"):
        read_export(fixture("azure_costs.csv"), both)
    export = read_export(fixture("azure_costs.csv"), both, mapping="other")
    assert {line.provider for line in export.lines} == {"openai"}
    with pytest.raises(ReconcileError, match="no mapping 'nope' in reconcile.mappings \\(azure, other\\)"):
        read_export(fixture("azure_costs.csv"), both, mapping="nope")


def test_a_csv_no_mapping_fits_is_an_unknown_kind() -> None:
    with pytest.raises(ReconcileError) as err:
        read_export(fixture("azure_costs.csv"))
    assert str(err.value).startswith(f"{fixture('azure_costs.csv')}: unknown file kind: ")


@pytest.mark.parametrize(("entry", "message"), [
    ({"provider": "x", "columns": {"model": "M"}}, "columns: map day"),
    ({"columns": {"day": "D", "model": "M"}}, "set exactly one of provider"),
    ({"provider": "x", "columns": {"day": "D", "model": "M", "provider": "P"}}, "set exactly one of provider"),
    ({"provider": "x", "columns": {"day": "D", "model": "M", "cost": "C"}}, "a mapped cost needs currency"),
    ({"provider": "x", "columns": {"day": "D", "model": "M"}, "units": {"Audio In": "A"}}, "is not a usage key"),
    ({"provider": "x", "columns": {"day": "D", "model": "M", "tokens": "T"}}, "columns.tokens"),
])
def test_mapping_config_is_validated(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"reconcile": {"mappings": {"m": entry}}}, "genai-meter.yaml")
    assert message in str(err.value) and str(err.value).startswith("genai-meter.yaml: invalid configuration")
