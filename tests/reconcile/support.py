"""Shared helpers of the reconciliation tests: the fixture folder and a file writer."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Path:
    return FIXTURES / name


def load(name: str) -> object:
    return json.loads(fixture(name).read_text(encoding="utf-8"))


def write_json(tmp: Path, name: str, value: object) -> Path:
    path = tmp / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return path
