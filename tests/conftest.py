"""Shared pytest setup. Keep it minimal: shared helpers live in tests/support (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and every `genai-meter` process it starts) gets its own data directory, so no
    test writes the user's ledger or sees another test's calls in it."""
    data_dir = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("GENAI_METER_DATA_DIR", str(data_dir))
    monkeypatch.delenv("GENAI_METER_LEDGER", raising=False)
    return data_dir
