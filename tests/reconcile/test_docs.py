"""docs/reconciliation.md says what is built: its config examples are valid configs, and the mapping
example reads the fixture export it describes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from genai_meter.config import parse_config
from genai_meter.reconcile import ENDPOINTS, read_export
from tests.reconcile.support import fixture

DOC = Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_every_config_example_is_valid() -> None:
    blocks = yaml_blocks()
    assert len(blocks) == 2
    for block in blocks:
        parse_config(yaml.safe_load(block), "docs/reconciliation.md")


def test_the_mapping_example_reads_a_mapped_export(tmp_path: Path) -> None:
    config = parse_config(yaml.safe_load(yaml_blocks()[0]))
    mapping = config.reconcile.mappings["azure-daily"]
    csv = tmp_path / "azure.csv"
    header, *rows = fixture("azure_costs.csv").read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([header + ",Audio input tokens"] + [row + ",7" for row in rows]) + "\n",
                   encoding="utf-8")
    (first, _) = read_export(csv, {"azure-daily": mapping}).lines
    assert (first.input, first.cache_read, first.currency, first.units) == (
        10000, 2000, "EUR", (("input_audio_tokens", 7),))


def test_every_pulled_endpoint_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for endpoints in ENDPOINTS.values():
        for endpoint in endpoints:
            name = endpoint.path.rsplit("/", 1)[1]
            assert name in text, endpoint.path
            for group in endpoint.group_by:
                assert f"`{group}`" in text, (endpoint.path, group)
