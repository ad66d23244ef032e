"""docs/reconciliation.md says what is built: its config examples are valid configs, the mapping
example reads the fixture export it describes, and its Prometheus scrape job passes promtool."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from genai_meter.config import parse_config
from genai_meter.reconcile import ENDPOINTS, read_export
from tests.reconcile.support import fixture
from tests.support.prometheus import promtool

DOC = Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md"


def all_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def yaml_blocks() -> list[str]:
    """The genai-meter config examples (the Prometheus scrape job aside)."""
    return [block for block in all_yaml_blocks() if "scrape_configs" not in block]


def test_every_config_example_is_valid() -> None:
    blocks = yaml_blocks()
    assert len(blocks) == 5
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


def test_the_scrape_job_passes_promtool(tmp_path: Path) -> None:
    (block,) = [b for b in all_yaml_blocks() if "scrape_configs" in b]
    job = yaml.safe_load(block)["scrape_configs"][0]
    assert job["metrics_path"] == "/api/v1/reconciliation/metrics"
    (tmp_path / "genai-meter-reports-token").write_text("admin-token\n", encoding="utf-8")
    job["authorization"]["credentials_file"] = str(tmp_path / "genai-meter-reports-token")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}), encoding="utf-8")
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
