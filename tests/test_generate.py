"""`genai-meter generate`: byte-stable output, the committed deploy/ files current, the CLI, the
Prometheus config (retention >= 100 days) and the Grafana provisioning."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from genai_meter.alert_rules.prometheus_config import RETENTION_DAYS
from genai_meter.cli import main
from genai_meter.config import load_config
from genai_meter.generate import build_files
from tests.support.prometheus import promtool

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
EXAMPLE = DEPLOY / "genai-meter.yaml"
GENERATED_DIRS = ("grafana/dashboards", "grafana/provisioning", "prometheus", "alertmanager")


def test_output_is_byte_stable() -> None:
    assert build_files(load_config(EXAMPLE)) == build_files(load_config(EXAMPLE))
    for path, text in build_files(load_config(EXAMPLE)).items():
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        if path.endswith(".json"):
            assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        else:
            assert text.startswith("# ") and "do not edit" in text.split("\n", 3)[1], path
            yaml.safe_load(text)


def test_committed_files_are_current() -> None:
    """Fails on drift: run `genai-meter generate --config deploy/genai-meter.yaml --out deploy`."""
    files = build_files(load_config(EXAMPLE))
    stale = [p for p, text in files.items() if not (DEPLOY / p).is_file() or (DEPLOY / p).read_text() != text]
    assert not stale, f"out of date: {stale}; run genai-meter generate --config deploy/genai-meter.yaml --out deploy"
    on_disk = {str(p.relative_to(DEPLOY)) for d in GENERATED_DIRS for p in (DEPLOY / d).rglob("*") if p.is_file()}
    assert on_disk == set(files), f"files under deploy/ that generate no longer writes: {on_disk - set(files)}"


def test_cli_writes_and_checks(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(out)]) == 0
    files = build_files(load_config(EXAMPLE))
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == set(files)
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(out), "--check"]) == 0
    (out / "prometheus" / "rules" / "genai-meter-alerts.yaml").write_text("groups: []\n")
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(out), "--check"]) == 1
    assert "genai-meter-alerts.yaml is out of date" in capsys.readouterr().err


def test_cli_defaults_to_deploy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_METER_CONFIG", raising=False)
    assert main(["generate"]) == 0
    assert (tmp_path / "deploy" / "grafana" / "dashboards" / "genai-meter-overview.json").is_file()


def test_prometheus_configs_are_valid(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "prometheus.local.yml"):
        target = tmp_path / name.replace(".yml", "")
        shutil.copytree(DEPLOY / "prometheus", target)
        result = promtool("check", "config", str(target / name))
        assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load((target / name).read_text())
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert "genai-meter" in jobs and config["rule_files"] == ["rules/*.yaml"]
    local = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.local.yml").read_text())
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    compose = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert compose["scrape_configs"][0]["static_configs"][0]["targets"] == ["genai-meter:9464"]


def test_prometheus_keeps_at_least_100_days() -> None:
    assert RETENTION_DAYS >= 100
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = " ".join(compose["services"]["prometheus"]["command"])
    days = re.search(r"--storage\.tsdb\.retention\.time=(\d+)d", command)
    assert days and int(days.group(1)) >= 100
    assert "/etc/prometheus/prometheus.yml" in command


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/genai-meter.yaml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/genai-meter.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert any(v.startswith("./deploy/grafana/dashboards:") and v.split(":")[1] == path for v in volumes)
    assert any(v.startswith("./deploy/grafana/provisioning:") for v in volumes)


def test_compose_runs_only_commands_and_files_that_exist() -> None:
    """No Docker engine here: check what compose would run against the real CLI and tree."""
    from genai_meter.cli import build_parser

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    ours = {name: service for name, service in compose["services"].items()
            if service.get("image") == "genai-meter:local"}
    assert "genai-meter" in ours
    parser = build_parser()
    for name, service in ours.items():
        args = parser.parse_args(service["command"])  # exits (fails the test) on an unknown flag
        assert args.command in {"serve"}, name
    assert (REPO / compose["services"]["genai-meter"]["build"]["dockerfile"]).is_file()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
