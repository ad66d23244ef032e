"""Shared pytest setup. Keep it minimal: shared helpers live in tests/support (see its README)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def _isolate(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENAI_METER_DATA_DIR", str(data_dir))
    monkeypatch.delenv("GENAI_METER_LEDGER", raising=False)
    return data_dir


@pytest.fixture(autouse=True, scope="module")
def _module_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module-scoped fixtures (a `serve` shared by a module's tests) get the module's own data dir."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolate(tmp_path_factory.mktemp("module-data"), monkeypatch)


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and every `genai-meter` process it starts) gets its own data directory, so no
    test writes the user's ledger or sees another test's calls in it."""
    return _isolate(tmp_path_factory.mktemp("data"), monkeypatch)
