"""`genai-meter generate`: byte-stable output, the committed deploy/ files current, the CLI, the
Prometheus config (retention >= 100 days) and the Grafana provisioning."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import yaml

from genai_meter.alert_rules.prometheus_config import RETENTION_DAYS
from genai_meter.cli import main
from genai_meter.config import load_config
from genai_meter.generate import COMPOSE_REPORTS_TOKEN_FILE, build_files
from tests.support.prometheus import promtool

REPO = Path(__file__).resolve().parents[2]
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


def test_cli_refuses_without_out(tmp_path: Path, monkeypatch, capsys) -> None:
    """No --out: nothing is written (a run in the repository must not overwrite the committed deploy/)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENAI_METER_CONFIG", raising=False)
    (tmp_path / "deploy").mkdir()
    assert main(["generate"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["generate", "--check"]) == 2
    assert list(tmp_path.rglob("*")) == [tmp_path / "deploy"]


def test_prometheus_configs_are_valid(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "prometheus.local.yml"):
        target = tmp_path / name.replace(".yml", "")
        shutil.copytree(DEPLOY / "prometheus", target)
        token = tmp_path / f"{name}.token"  # promtool reads the credentials file: a stand-in for compose's
        token.write_text("change-me", encoding="utf-8")
        text = (target / name).read_text().replace(COMPOSE_REPORTS_TOKEN_FILE, str(token))
        (target / name).write_text(text)
        result = promtool("check", "config", str(target / name))
        assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load(text)
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert "genai-meter" in jobs and config["rule_files"] == ["rules/*.yaml"]
        reconciliation = jobs["genai-meter-reconciliation"]
        assert reconciliation["metrics_path"] == "/api/v1/reconciliation/metrics"
        assert reconciliation["static_configs"] == jobs["genai-meter-reports"]["static_configs"]
        # compose's report service has tokens (Prometheus reads one); the local stack's has none
        assert reconciliation.get("authorization") == ({"credentials_file": str(token)} if name == "prometheus.yml"
                                                       else None)
    local = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.local.yml").read_text())
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    compose = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert compose["scrape_configs"][0]["static_configs"][0]["targets"] == ["genai-meter:9464"]


def test_compose_gives_prometheus_the_report_services_token() -> None:
    """The reconciliation gauges are admin only: compose mounts the token the report service accepts by
    default (`change-me`, whose SHA-256 is its default) where the generated config reads it."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    [mount] = compose["services"]["prometheus"]["configs"]
    assert mount["target"] == COMPOSE_REPORTS_TOKEN_FILE
    plain = re.fullmatch(r"\$\{GENAI_METER_REPORTS_TOKEN:-(.+)\}", compose["configs"][mount["source"]]["content"])
    tokens = yaml.safe_load(compose["configs"]["reports-tokens"]["content"])["reports"]["tokens"]
    default_sha = re.fullmatch(r"\$\{GENAI_METER_REPORTS_TOKEN_SHA256:-([0-9a-f]{64})\}", tokens[0]["sha256"])
    assert plain and default_sha and tokens[0]["admin"] is True
    assert hashlib.sha256(plain.group(1).encode()).hexdigest() == default_sha.group(1)


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


def _compose_argv(service: dict) -> list[str]:
    """The genai-meter arguments a compose service runs (its command, or the `exec genai-meter ...` of a sh -c)."""
    import shlex

    entrypoint = service.get("entrypoint")
    if entrypoint and entrypoint[:2] == ["sh", "-c"]:
        script = entrypoint[2]
        return shlex.split(script.split("exec genai-meter ", 1)[1])
    return list(service["command"])


def test_compose_runs_only_commands_and_files_that_exist() -> None:
    """No Docker engine here: check what compose would run against the real CLI and tree."""
    from genai_meter.cli import build_parser

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    ours = {name: service for name, service in compose["services"].items()
            if service.get("image") == "genai-meter:local" and service.get("entrypoint", ["sh"])[0] == "sh"}
    assert {"genai-meter", "reports"} <= set(ours)
    parser = build_parser()
    commands = {}
    for name, service in ours.items():
        args = parser.parse_args(_compose_argv(service))  # exits (fails the test) on an unknown flag
        commands[name] = args.command
    assert commands == {"genai-meter": "serve", "reports": "reports"}
    assert (REPO / compose["services"]["genai-meter"]["build"]["dockerfile"]).is_file()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_compose_report_service_shares_the_ledger_and_has_a_token(tmp_path: Path) -> None:
    """reports reads the ledger serve writes; its config (deploy config + the compose token) loads."""
    from genai_meter.reports.service.scopes import load_tokens, token_hash

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    serve, reports = compose["services"]["genai-meter"], compose["services"]["reports"]
    ledger = [v for v in serve["volumes"] if v.startswith("ledger-data:")]
    assert ledger and ledger[0] in reports["volumes"] and "ledger-data" in compose["volumes"]
    assert serve["environment"]["GENAI_METER_LEDGER"] == reports["environment"]["GENAI_METER_LEDGER"]
    default_url = re.fullmatch(r"\$\{GENAI_METER_LEDGER:-(.+)\}", serve["environment"]["GENAI_METER_LEDGER"])
    assert default_url and default_url.group(1) == "sqlite:////var/lib/genai-meter/ledger.db"
    assert any(p.startswith("127.0.0.1:8080:") for p in reports["ports"])
    assert "reports" not in yaml.safe_load(EXAMPLE.read_text()), "compose appends the reports section"
    assert EXAMPLE.read_text().endswith("\n")
    content = compose["configs"][reports["configs"][0]["source"]]["content"]
    content = re.sub(r"\$\{GENAI_METER_REPORTS_TOKEN_SHA256:-([0-9a-f]{64})\}", r"\1", content)
    merged = tmp_path / "reports.yaml"
    merged.write_text(EXAMPLE.read_text() + content)  # what the entrypoint's `cat` does
    config = load_config(merged)
    assert config.budgets == load_config(EXAMPLE).budgets
    tokens = load_tokens(config)
    assert [t.sha256 for t in tokens] == [token_hash("change-me")] and tokens[0].admin
    assert "--forward-endpoint" in serve["command"]
    assert serve["command"][serve["command"].index("--forward-endpoint") + 1] == "http://tempo:4318/v1/traces"
    clickhouse = compose["services"]["clickhouse"]
    assert clickhouse["profiles"] == ["clickhouse"]
    assert serve["depends_on"]["clickhouse"]["required"] is False


def test_collector_sends_genai_spans_to_genai_meter_and_the_rest_to_tempo() -> None:
    collector = yaml.safe_load((DEPLOY / "otelcol" / "config.yaml").read_text())
    pipelines = collector["service"]["pipelines"]
    by_exporter = {tuple(p["exporters"]): p["processors"] for p in pipelines.values()}
    assert by_exporter[("otlphttp/genai-meter",)][0] == "filter/genai-only"
    assert by_exporter[("otlp/tempo",)][0] == "filter/non-genai"
    keep = collector["processors"]["filter/genai-only"]["traces"]["span"]
    drop = collector["processors"]["filter/non-genai"]["traces"]["span"]
    keep_attrs = re.findall(r'attributes\["([^"]+)"\] == nil', keep[0])
    drop_attrs = [re.fullmatch(r'attributes\["([^"]+)"\] != nil', c).group(1) for c in drop]  # type: ignore[union-attr]
    assert len(keep) == 1 and keep_attrs and keep_attrs == drop_attrs  # exact complements: each span goes once
