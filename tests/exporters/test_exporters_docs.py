"""docs/metrics.md stays true: its PromQL parses (promtool) and names only metrics the store exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from genai_meter import contract
from genai_meter.alert_rules.recording import period_to_date
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def promql_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```promql\n(.*?)```", DOC.read_text(), re.S)]


def test_doc_has_the_common_questions() -> None:
    text = DOC.read_text()
    for heading in ("Total cost", "Cost by model", "Cost per request", "Tokens per request",
                    "failed requests", "Request rate", "Cache savings", "Month-to-date spend"):
        assert heading.lower() in text.lower(), heading
    # the doc shows exactly the expression the generated budget rules use
    assert period_to_date("llm_budget_spend_usd_total") in promql_blocks()


def test_doc_names_only_exported_metrics_and_labels() -> None:
    store = UsageMetrics(Config())
    samples = set()
    labels = {"le", "__name__"}
    for data in store.families():
        samples.add(data.name)
        labels.update(data.labelnames)
        if data.kind == "histogram":
            samples.update(f"{data.name}{s}" for s in ("_bucket", "_count", "_sum"))
    for expr in promql_blocks():
        for name in re.findall(r"\b((?:llm|genai_meter)_[a-z_]+)\b", expr):
            assert name in samples, f"{name} in {expr!r}"
        for group in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"{label} in {expr!r}"
    text = DOC.read_text()
    for name in (contract.SELF_SPANS_RECEIVED, contract.SELF_LABEL_OVERFLOW, contract.SELF_SERIES_OVERFLOW,
                 contract.SELF_PRICING_INFO, contract.SELF_BUILD_INFO):
        assert f"`{name}`" in text


def test_doc_promql_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    rules = [{"record": f"doc:example_{i}:expr", "expr": expr} for i, expr in enumerate(promql_blocks())]
    path = tmp_path / "doc-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "docs", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
