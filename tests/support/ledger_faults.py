"""Faults put into a real SQLite ledger file: calls the file itself refuses to store.

Spans are range-checked where they are read, so no span makes a call the ledger cannot hold; to show
that such a call is isolated anyway, a trigger on the file refuses every call with `REFUSED_INPUT_TOKENS`
input tokens (SQLite answers the insert with a constraint error, as it would a value it cannot hold).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

REFUSED_INPUT_TOKENS = 777_777
REFUSAL = "refused by the ledger file"


def refuse_marked_calls(db: Path) -> None:
    """Install the trigger on the ledger file `db` (its schema must exist: open a writer first)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(f"CREATE TRIGGER refuse_marked_calls BEFORE INSERT ON calls "
                     f"WHEN NEW.t_input = {REFUSED_INPUT_TOKENS} BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")
    finally:
        conn.close()
