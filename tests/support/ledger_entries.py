"""Priced calls written to a real ledger through its real writer (the tests that need a filled ledger)."""

from __future__ import annotations

from collections.abc import Sequence

from genai_meter.config import Config
from genai_meter.ledger import Entry, open_writer


def store_entries(config: Config, entries: Sequence[Entry], timeout_s: float = 60.0) -> None:
    """Submit `entries` to the writer of `config.ledger.url` and wait until every one is stored."""
    assert config.ledger.url is not None
    writer = open_writer(config.ledger.url, config)
    try:
        assert all(writer.submit(list(entries)).result(timeout=timeout_s))
    finally:
        writer.close()
