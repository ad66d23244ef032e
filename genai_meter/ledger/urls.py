"""Where the ledger lives: URL resolution (flag, environment, config, data directory) and parsing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from genai_meter.config import DATA_DIR_ENV as DATA_DIR_ENV
from genai_meter.config import Config
from genai_meter.config import data_dir as data_dir

LEDGER_ENV = "GENAI_METER_LEDGER"
LEDGER_FILE = "ledger.db"


def resolve_url(config: Config, cli_value: str | None) -> str | None:
    """The ledger URL: --ledger, else $GENAI_METER_LEDGER, else `ledger.url`, else SQLite in the data
    directory. "none" (any case) turns the ledger off: None."""
    for value in (cli_value, os.environ.get(LEDGER_ENV), config.ledger.url):
        if value:
            return None if value.strip().lower() == "none" else value.strip()
    return f"sqlite:///{(data_dir(config) / LEDGER_FILE).absolute()}"


@dataclass(frozen=True, slots=True)
class ClickHouseTarget:
    host: str
    port: int
    username: str
    password: str
    database: str
    secure: bool


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL (or a bare path), None for other schemes."""
    if url.startswith("sqlite:///"):
        return Path(unquote(url[len("sqlite:///"):]))  # sqlite:////abs/path or sqlite:///relative
    if url.startswith("sqlite://"):
        raise ValueError(f"--ledger / ledger.url: a SQLite URL is sqlite:///PATH, got {url!r}")
    if "://" not in url:
        return Path(url)
    return None


def clickhouse_target(url: str) -> ClickHouseTarget | None:
    """The server of a `clickhouse://user:pass@host:port/db` URL (clickhouses:// for TLS), else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        return None
    if not parts.hostname:
        raise ValueError(f"--ledger / ledger.url: a ClickHouse URL needs a host, got {url!r}")
    secure = parts.scheme == "clickhouses"
    database = parts.path.strip("/") or "genai_meter"
    if not database.replace("_", "").isalnum():
        raise ValueError(f"--ledger / ledger.url: the database name must be letters, digits and _, got {database!r}")
    return ClickHouseTarget(parts.hostname, parts.port or (8443 if secure else 8123),
                            unquote(parts.username or "default"), unquote(parts.password or ""), database, secure)


def describe(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


class LedgerOpenError(RuntimeError):
    """The ledger cannot be opened at all (corrupt, unwritable, missing, newer schema); names the place."""
