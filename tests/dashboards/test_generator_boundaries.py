"""The generators' floor: `dashboards/` and `alert_rules/` both read `promql/` and never each other,
and `promql/` reads nothing above the floor (config, contract)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "genai_meter"


def imports_of(package: str) -> dict[str, set[str]]:
    """Module file -> the genai_meter modules it imports (any `import` or `from ... import`)."""
    out: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "genai_meter":
                names.update(f"genai_meter.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("genai_meter")}
    return out


def test_dashboards_and_alert_rules_never_import_each_other() -> None:
    for package, other in (("dashboards", "genai_meter.alert_rules"), ("alert_rules", "genai_meter.dashboards")):
        for module, names in imports_of(package).items():
            assert not {n for n in names if n.startswith(other)}, f"{module} imports {other}"


def test_promql_stands_on_the_floor_only() -> None:
    allowed = ("genai_meter.promql", "genai_meter.config", "genai_meter.contract")
    for module, names in imports_of("promql").items():
        assert all(n.startswith(allowed) for n in names), (module, names)
    assert imports_of("promql"), "genai_meter/promql has no modules"


def test_one_spelling_of_the_token_split() -> None:
    """Input / output token classes are spelled once (promql.names, from the contract)."""
    for package in ("dashboards", "alert_rules"):
        for path in sorted((PACKAGE / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            assert "cache_read|cache_write" not in text and "output|reasoning" not in text, path
