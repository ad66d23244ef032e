"""Ledger fixtures: a filled ledger per backend (SQLite file; ClickHouse SQL on the chdb engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import open_reader, open_writer
from genai_meter.ledger.model import Entry, LedgerReader
from tests.ledger.support import DAY_NS, T0, random_entries

BACKENDS = ["sqlite", "chdb"]
Filled = Callable[[list[Entry]], LedgerReader]


def fill_sqlite(tmp: Path, config: Config, entries: list[Entry]) -> LedgerReader:
    url = f"sqlite:///{tmp / 'ledger.db'}"
    writer = open_writer(url, config)
    for i in range(0, len(entries), 700):
        writer.submit(entries[i:i + 700]).result(30)
    writer.close()
    return open_reader(url, config)


def fill_chdb(tmp: Path, config: Config, entries: list[Entry]) -> LedgerReader:
    from tests.ledger.chdb_harness import filled_chdb_reader

    return filled_chdb_reader(tmp, config, entries)


@pytest.fixture(params=BACKENDS)
def fill(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Filled]:
    readers: list[LedgerReader] = []
    counter = iter(range(1000))

    def make(entries: list[Entry], config: Config | None = None) -> LedgerReader:
        where = tmp_path / f"l{next(counter)}"
        where.mkdir()
        filler = fill_sqlite if request.param == "sqlite" else fill_chdb
        reader = filler(where, config or Config(), entries)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


DATASET = random_entries(7, 3000, T0, 40 * DAY_NS)


@pytest.fixture(scope="module", params=BACKENDS)
def dataset_reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerReader]:
    tmp = tmp_path_factory.mktemp(f"dataset-{request.param}")
    filler = fill_sqlite if request.param == "sqlite" else fill_chdb
    reader = filler(tmp, Config(), DATASET)
    yield reader
    reader.close()
