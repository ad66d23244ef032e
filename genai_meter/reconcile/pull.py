"""`pull(provider, days)`: a provider's usage and cost reports for whole UTC days, from its admin API.

The same endpoints a user exports by hand (docs/reconciliation.md), grouped finely, in daily
buckets, every page followed (`has_more` / `next_page`), through `client.AdminClient` (rate limits,
retries, one deadline). The admin key comes from the environment: OPENAI_ADMIN_KEY,
ANTHROPIC_ADMIN_API_KEY (or ANTHROPIC_ADMIN_KEY), OPENROUTER_MANAGEMENT_KEY, or the variable
`reconcile.providers.NAME.key_env` names. The base URL is `base_url`, else
$GENAI_METER_RECONCILE_<PROVIDER>_URL, else `reconcile.providers.NAME.base_url`, else the public API.
Every asked day is covered by every endpoint pulled, with or without lines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from genai_meter.config_reconcile import ReconcileConfig
from genai_meter.reconcile import anthropic, openai, openrouter
from genai_meter.reconcile.client import AdminClient, Limits, PullError
from genai_meter.reconcile.coverage import DayTiles
from genai_meter.reconcile.fields import Node
from genai_meter.reconcile.lines import Export, ProviderLine, Source, check_currencies

MAX_PAGES = 10_000  # per endpoint and run of days
DEFAULT_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com",
                "openrouter": "https://openrouter.ai"}
KEY_ENVS: dict[str, tuple[str, ...]] = {"openai": ("OPENAI_ADMIN_KEY",),
                                        "anthropic": ("ANTHROPIC_ADMIN_API_KEY", "ANTHROPIC_ADMIN_KEY"),
                                        "openrouter": ("OPENROUTER_MANAGEMENT_KEY",)}
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    kind: str
    group_by: tuple[str, ...]


_KEYS = ("model", "project_id", "api_key_id")
ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "openai": (
        Endpoint("/v1/organization/usage/completions", "openai.usage.completions",
                 (*_KEYS, "batch", "service_tier")),
        Endpoint("/v1/organization/usage/embeddings", "openai.usage.embeddings", _KEYS),
        Endpoint("/v1/organization/usage/images", "openai.usage.images", (*_KEYS, "size", "source")),
        Endpoint("/v1/organization/usage/audio_speeches", "openai.usage.audio_speeches", _KEYS),
        Endpoint("/v1/organization/usage/audio_transcriptions", "openai.usage.audio_transcriptions", _KEYS),
        Endpoint("/v1/organization/costs", "openai.costs", ("project_id", "line_item")),
    ),
    "anthropic": (
        Endpoint("/v1/organizations/usage_report/messages", anthropic.USAGE,
                 ("model", "workspace_id", "api_key_id", "service_tier")),
        Endpoint("/v1/organizations/cost_report", anthropic.COST, ("workspace_id", "description")),
    ),
    "openrouter": (Endpoint("/api/v1/activity", openrouter.ACTIVITY, ()),),
}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) pairs, in order."""
    found: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if found and day == found[-1][1] + timedelta(days=1):
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return found


def resolve(provider: str, config: ReconcileConfig, environ: Mapping[str, str],
            base_url: str | None = None, key: str | None = None) -> tuple[str, str]:
    """(base URL, admin key) for `provider`; PullError saying which variable to set."""
    if provider not in ENDPOINTS:
        raise PullError(f"unknown provider {provider!r} (known: {', '.join(sorted(ENDPOINTS))})")
    settings = config.providers.get(provider)
    url = (base_url or environ.get(f"GENAI_METER_RECONCILE_{provider.upper()}_URL")
           or (settings.base_url if settings else None) or DEFAULT_URLS[provider])
    if not url.startswith(("https://", "http://")):
        raise PullError(f"{provider}: base URL {url!r} is not http(s)")
    names = (settings.key_env,) if settings and settings.key_env else KEY_ENVS[provider]
    found = key or next((environ[name] for name in names if environ.get(name)), "")
    if not found.strip():
        raise PullError(f"{provider}: no admin key: set {' or '.join(names)}")
    return url, found.strip()


def _headers(provider: str, key: str) -> dict[str, str]:
    if provider == "anthropic":
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    return {"Authorization": f"Bearer {key}"}


def _params(provider: str, endpoint: Endpoint, first: date, last: date) -> list[tuple[str, str]]:
    start, end = _midnight(first), _midnight(last) + timedelta(days=1)
    if provider == "openai":
        params = [("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp())))]
        return params + [("bucket_width", "1d"), ("limit", "31")] + [("group_by", g) for g in endpoint.group_by]
    params = [("starting_at", f"{start:%Y-%m-%dT%H:%M:%SZ}"), ("ending_at", f"{end:%Y-%m-%dT%H:%M:%SZ}")]
    return params + [("bucket_width", "1d"), ("limit", "31")] + [("group_by[]", g) for g in endpoint.group_by]


def _pages(client: AdminClient, endpoint: Endpoint, params: list[tuple[str, str]]) -> Iterable[Node]:
    """Every page of one query, following `next_page` while `has_more`."""
    token: str | None = None
    seen: set[str] = set()
    for number in range(MAX_PAGES):
        query = params + ([("page", token)] if token else [])
        page = Node(client.get_json(endpoint.path, query), f"{client.url(endpoint.path)} (page {number + 1})")
        yield page
        more = page.opt("has_more")
        if more is None or not more.flag():
            return
        token = page.req("next_page").text()
        if token in seen:
            raise page.fail(f"next_page {token!r} repeats an earlier page")
        seen.add(token)
    raise PullError(f"{client.provider}: GET {endpoint.path}: more than {MAX_PAGES} pages")


def _pull_endpoint(provider: str, client: AdminClient, endpoint: Endpoint, days: list[date],
                   tiles: DayTiles) -> list[ProviderLine]:
    source = Source(client.url(endpoint.path), endpoint.kind)
    lines: list[ProviderLine] = []
    if provider == "openrouter":  # one day per request, no paging
        for day in days:
            answer = Node(client.get_json(endpoint.path, [("date", day.isoformat())]), source.file)
            lines += openrouter.read_activity(answer, source, tiles, [day])
        return lines
    read = openai.read_page if provider == "openai" else anthropic.read_report
    for first, last in runs(days):
        for page in _pages(client, endpoint, _params(provider, endpoint, first, last)):
            lines += read(page, endpoint.kind, source, tiles)
    for day in days:
        if not tiles.has(provider, endpoint.kind, day):
            tiles.add_day(provider, endpoint.kind, day, f"{endpoint.path} ({day}, no bucket)")
    return lines


def pull(provider: str, days: Iterable[date], *, config: ReconcileConfig | None = None,
         environ: Mapping[str, str] | None = None, base_url: str | None = None, key: str | None = None,
         kinds: Iterable[str] | None = None, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> Export:
    """`provider`'s usage and cost lines for `days` (UTC), from every endpoint of ENDPOINTS (or only
    those of `kinds`). Raises PullError (no key, HTTP error, deadline) or ReconcileError (a bad answer)."""
    config = config or ReconcileConfig()
    asked = sorted(set(days))
    if not asked:
        raise PullError(f"{provider}: no days asked")
    url, admin_key = resolve(provider, config, os.environ if environ is None else environ, base_url, key)
    limits = Limits(config.timeout_seconds, config.deadline_seconds, config.max_retries)
    client = AdminClient(provider, url, _headers(provider, admin_key), limits, clock=clock, sleep=sleep)
    wanted = set(kinds) if kinds is not None else None
    tiles = DayTiles(f"{provider} pull")
    lines: list[ProviderLine] = []
    for endpoint in ENDPOINTS[provider]:
        if wanted is None or endpoint.kind in wanted:
            lines += _pull_endpoint(provider, client, endpoint, asked, tiles)
    check_currencies(lines, f"{provider} pull")
    return Export(tuple(lines), tiles.covers())
