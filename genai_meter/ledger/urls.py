"""Where the ledger lives: URL resolution (flag, environment, config, data directory) and parsing."""

from __future__ import annotations

import os
import re
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


class LedgerUrlError(ValueError):
    """A ledger URL that is malformed or names an unsupported store; one line naming the problem."""


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
SQLITE_SCHEMES = ("sqlite",)
CLICKHOUSE_SCHEMES = ("clickhouse", "clickhouses")
_FORMS = "sqlite:///PATH (sqlite:////absolute/path.db) or clickhouse://user:pass@host:8123/db"


def _scheme(url: str) -> str | None:
    """The URL's scheme, lower case (schemes are case-insensitive, RFC 3986); None for a bare path."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def _bad(url: str, problem: str) -> LedgerUrlError:
    return LedgerUrlError(f"--ledger / ledger.url {describe(url)!r}: {problem}")


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL (scheme in any case) or of a bare path; None for a ClickHouse
    URL; LedgerUrlError for anything else (another scheme, a host, a missing path, `sqlite:file.db`)."""
    scheme = _scheme(url)
    if scheme is None:
        if not url.strip():
            raise _bad(url, "empty; give " + _FORMS)
        return Path(url)
    if scheme in CLICKHOUSE_SCHEMES:
        return None
    if scheme not in SQLITE_SCHEMES:
        raise _bad(url, f"unsupported ledger URL scheme {scheme!r}; give " + _FORMS)
    rest = url[len(scheme) + 1:]
    if not rest.startswith("//"):
        raise _bad(url, "a SQLite URL is sqlite:///PATH (three slashes; four before an absolute path)")
    if not rest.startswith("///"):
        raise _bad(url, "a SQLite URL names no host: sqlite:///PATH (three slashes; four before an absolute "
                        "path)")
    path = rest[3:]
    if "?" in path or "#" in path:
        raise _bad(url, "a SQLite URL takes no query or fragment (write ? and # in the path as %3F and %23)")
    if not path:
        raise _bad(url, "the SQLite URL names no file")
    return Path(unquote(path))  # sqlite:////abs/path or sqlite:///relative


def clickhouse_target(url: str) -> ClickHouseTarget | None:
    """The server of a `clickhouse://user:pass@host:port/db` URL (clickhouses:// for TLS; scheme in any
    case), None for a SQLite URL or path; LedgerUrlError for a malformed one (no host, bad port or
    database name) or an unsupported scheme."""
    scheme = _scheme(url)
    if scheme not in CLICKHOUSE_SCHEMES:
        sqlite_path(url)  # raises for an unsupported scheme
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        raise _bad(url, "a ClickHouse URL needs a host: clickhouse://user:pass@host:8123/db")
    try:
        port = parts.port
    except ValueError:
        raise _bad(url, "the port must be a number from 1 to 65535") from None
    if parts.query or parts.fragment:
        raise _bad(url, "a ClickHouse URL takes no query or fragment")
    secure = scheme == "clickhouses"
    database = parts.path.strip("/") or "genai_meter"
    if not database.replace("_", "").isalnum():
        raise _bad(url, f"the database name must be letters, digits and _, got {database!r}")
    return ClickHouseTarget(parts.hostname, port or (8443 if secure else 8123),
                            unquote(parts.username or "default"), unquote(parts.password or ""), database, secure)


def check_url(url: str) -> None:
    """Raise LedgerUrlError unless `url` is a SQLite path/URL or a ClickHouse URL this build accepts."""
    if clickhouse_target(url) is None:
        sqlite_path(url)


def describe(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        password = urlsplit(url).password
    except ValueError:  # not parseable as a URL: shown as given, up to a user-info part
        return url.split("@", 1)[-1] if "@" in url else url
    if password:
        return url.replace(f":{password}@", ":***@", 1)
    return url


class LedgerOpenError(RuntimeError):
    """The ledger cannot be opened at all (corrupt, unwritable, missing, newer schema); names the place."""
