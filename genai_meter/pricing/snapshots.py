"""Stored price catalogs: genai-prices data snapshots newer than the pinned package, with provenance.

`genai-meter prices update --file PATH | --url URL` loads a snapshot in the format genai-prices
publishes and loads itself (a JSON array of providers, the file its auto-update fetches), validates
it, and stores it under `<data dir>/prices/` as a new price version:

    <data dir>/prices/<stamp>-<sha12>.json        the data, byte for byte as received
    <data dir>/prices/<stamp>-<sha12>.meta.json   provenance: sha256, source, stored_at, version, counts

From then on `PriceBook.from_config` prices with the newest stored version (by `stored_at`); with
none stored, the pinned genai-prices package data. A stored file whose bytes no longer match their
sha256 is an error (never a silent fallback to other prices).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
from genai_prices import types as gp
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.validation import validate_model_price
from pydantic import ValidationError

from genai_meter.config import Config, ConfigError, data_dir
from genai_meter.pricing.catalog import CatalogSource
from genai_meter.pricing.catalog_prices import catalog_model
from genai_meter.pricing.units import REGISTRY

PRICES_DIR = "prices"
META_SUFFIX = ".meta.json"
MAX_BYTES = 64 << 20  # a snapshot larger than this is refused (genai-prices' data is ~0.4 MB)
FETCH_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One stored price version and where it came from."""

    version: str  # the catalog_version label of calls priced with it
    sha256: str
    source: str  # the file path or URL it was loaded from
    stored_at: datetime  # UTC
    genai_prices: str  # the genai-prices version that validated it
    providers: int
    models: int
    path: Path  # the data file

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "source": self.source,
                "stored_at": self.stored_at.isoformat().replace("+00:00", "Z"), "genai_prices": self.genai_prices,
                "providers": self.providers, "models": self.models, "path": str(self.path)}


def prices_dir(config: Config) -> Path:
    """Where stored price versions live: `<data dir>/prices` (config.data_dir)."""
    return data_dir(config) / PRICES_DIR


def _raw_providers(data: bytes, source: str) -> list[gp.Provider]:
    """Parse a snapshot as genai-prices does (its own loader), prices as exact decimals; ConfigError."""
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(data)} bytes, more than a price snapshot can be ({MAX_BYTES})")
    try:
        raw = json.loads(data.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a genai-prices data snapshot: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not a genai-prices data snapshot: not JSON ({exc.msg}, line {exc.lineno})") \
            from None
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: not a genai-prices data snapshot: the top level must be a list of providers, "
                          f"got {type(raw).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # extractor keys this version does not know: not about prices
            return gp._providers_from_raw(raw)  # genai-prices' own loader (UpdatePrices.fetch uses it)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][:6])
        raise ConfigError(f"{source}: not a genai-prices data snapshot: {where}: {first['msg']} "
                          f"({exc.error_count()} problem(s))") from None


def validate(data: bytes, source: str) -> list[gp.Provider]:
    """The providers of a genai-prices data snapshot, validated as prices genai-meter can apply: every
    price key known to this genai-prices version, genai-prices' unit rules (ancestor and join
    coverage) met, every model turned into price tables. Raises ConfigError naming `source`, the
    provider and the model."""
    providers = _raw_providers(data, source)
    models = 0
    for provider in providers:
        for info in provider.models:
            where = f"{source}: provider {provider.id!r} model {info.id!r}"
            prices = [info.prices] if isinstance(info.prices, gp.ModelPrice) else [c.prices for c in info.prices]
            try:
                for price in prices:
                    validate_model_price({k for k, v in price.__dict__.items() if v is not None}, REGISTRY)
                for variant in info.price_variants or ():
                    unknown = {k for k, v in variant.prices.__dict__.items()
                               if v is not None and k not in {u.price_key for u in REGISTRY.units.values()}}
                    if unknown:
                        raise ValueError(f"Unknown price key: {', '.join(sorted(unknown))}")
                catalog_model(provider, info, version="check", own=True)
            except (ValueError, ArithmeticError) as exc:
                raise ConfigError(f"{where}: {exc} (genai-prices {genai_prices.__version__} cannot apply it)") \
                    from None
            models += 1
    if not models:
        raise ConfigError(f"{source}: not a genai-prices data snapshot: no priced model in it")
    return providers


def fetch(url: str, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The bytes at `url` (http, https or file); ConfigError naming the URL when they cannot be read."""
    if not url.startswith(("http://", "https://", "file://")):
        raise ConfigError(f"{url}: a snapshot URL must start with http://, https:// or file://")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # the scheme is checked above
            data: bytes = response.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{url}: cannot fetch the price snapshot: {exc}") from None
    return data


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def store(config: Config, data: bytes, source: str, *, now: datetime | None = None) -> tuple[StoredVersion, bool]:
    """Validate and store `data` as the newest price version; returns (the version, whether it is new).
    Data equal to the newest stored version's is not stored again. Raises ConfigError."""
    providers = validate(data, source)
    sha = hashlib.sha256(data).hexdigest()
    current = newest(config)
    if current is not None and current.sha256 == sha:
        return current, False
    stored_at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    stamp = f"{stored_at:%Y%m%dT%H%M%SZ}"
    directory = prices_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stamp}-{sha[:12]}.json"
        version = StoredVersion(f"{genai_prices.__version__}+data.{stamp}.{sha[:8]}", sha, source, stored_at,
                                genai_prices.__version__, len(providers), sum(len(p.models) for p in providers), path)
        _write(path, data)
        meta = {key: value for key, value in version.as_dict().items() if key != "path"}
        _write(path.with_name(path.stem + META_SUFFIX), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot store the price snapshot: {exc.strerror or exc}") from None
    return version, True


def versions(config: Config) -> list[StoredVersion]:
    """The stored price versions, oldest first (by stored_at, then name). Raises ConfigError for a
    provenance file that cannot be read."""
    directory = prices_dir(config)
    if not directory.is_dir():
        return []
    found: list[StoredVersion] = []
    for meta_path in sorted(directory.glob(f"*{META_SUFFIX}")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            found.append(StoredVersion(
                meta["version"], meta["sha256"], meta["source"],
                datetime.fromisoformat(meta["stored_at"].replace("Z", "+00:00")), meta["genai_prices"],
                int(meta["providers"]), int(meta["models"]),
                meta_path.with_name(meta_path.name.removesuffix(META_SUFFIX) + ".json")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{meta_path}: unreadable price version provenance ({exc}); remove the file "
                              "or store the snapshot again") from None
    return sorted(found, key=lambda v: (v.stored_at, v.path.name))


def newest(config: Config) -> StoredVersion | None:
    """The stored price version calls are priced with, or None (the pinned package data)."""
    stored = versions(config)
    return stored[-1] if stored else None


_LOADED: dict[tuple[str, str], list[gp.Provider]] = {}  # (data file, sha256) -> providers, per process


def stored_source(config: Config) -> CatalogSource | None:
    """The newest stored snapshot as catalog data, or None when none is stored. Raises ConfigError when
    its data file is missing or its bytes do not match the sha256 it was stored with."""
    version = newest(config)
    if version is None:
        return None
    key = (str(version.path), version.sha256)
    providers = _LOADED.get(key)
    if providers is None:
        try:
            data = version.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{version.path}: cannot read the stored price snapshot: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != version.sha256:
            raise ConfigError(f"{version.path}: its bytes do not match the sha256 stored with it; store the "
                              "snapshot again (genai-meter prices update) or remove the version")
        providers = _raw_providers(data, str(version.path))
        _LOADED.clear()  # keep one
        _LOADED[key] = providers
    snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    return CatalogSource(snapshot, version.version, version.stored_at.date(), "stored")
