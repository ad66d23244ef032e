"""Installs that fit where they run: a plain `pip install genai-meter` (the receiver, the in-process
processor) loads none of the report service's libraries, and a command that needs an extra says which.

Each case runs a fresh Python in which the libraries of an extra cannot be imported (a meta-path
finder refuses them, as on a machine without the extra installed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORTS_EXTRA = ("flask", "werkzeug", "jinja2", "waitress", "xlsxwriter", "fpdf", "matplotlib", "croniter")
HEAVY = (*REPORTS_EXTRA, "statsmodels", "pandas", "scipy", "numpy", "PIL", "clickhouse_connect")
BLOCK = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""


def python(code: str, blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code, ",".join(blocked), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_receiver_and_the_in_process_processor_load_no_heavy_library() -> None:
    done = python("import json, genai_meter.collector_processor\n"
                  "import genai_meter.collector_processor.receiver.service\n"
                  "import genai_meter.collector_processor.inprocess.autoconfigure\n"
                  f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))",
                  ())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("command", ["reports", "demo"])
def test_a_command_without_its_extra_names_it(command: str) -> None:
    done = python("from genai_meter.cli import main\nsys.exit(main(sys.argv[2:]))", REPORTS_EXTRA, command)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()  # one line
    assert line.startswith(f"genai-meter {command} needs the reports extra: pip install 'genai-meter[reports]' (")
    assert line.split("(")[1].split()[0] in REPORTS_EXTRA and line.endswith(" is not installed)")


def test_the_other_commands_work_without_the_reports_extra() -> None:
    done = python("from genai_meter.cli import main\nsys.exit(main(sys.argv[2:]))", HEAVY,
                  "price", "openai", "gpt-4o", "--input", "1000", "--output", "100", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_usd"] == "0.0035"
    helped = python("from genai_meter.cli import main\nsys.exit(main(sys.argv[2:]))", HEAVY, "--help")
    assert helped.returncode == 0 and "pip install 'genai-meter[reports]'" in helped.stdout


def test_a_clickhouse_ledger_without_its_extra_names_it() -> None:
    done = python("from genai_meter.cli import main\nsys.exit(main(sys.argv[2:]))", ("clickhouse_connect",),
                  "ledger", "stats", "--ledger", "clickhouse://127.0.0.1:1/x")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "clickhouse:// ledgers need the clickhouse extra: pip install 'genai-meter[clickhouse]'" in done.stderr
