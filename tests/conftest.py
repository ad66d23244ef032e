"""Shared pytest setup. Keep it minimal: shared helpers live in tests/support."""

import sys
from pathlib import Path

# `from tests.support import ...` must work however pytest is started (plain `pytest` does not put
# the repository root on sys.path; `python -m pytest` does).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
