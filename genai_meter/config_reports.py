"""The `reports` section of the configuration: the report service, its tokens, schedules, advice and
limits (docs/reports.md). Part of `genai_meter.config`, which re-exports it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from genai_meter.config_base import UTC_OFFSET, Section
from genai_meter.config_reconcile import ReconcilePullConfig


class ReportTokenConfig(Section):
    """A bearer token of the report service: stored as its SHA-256, with the rows it may see."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # hex SHA-256 of the token (`printf %s TOKEN | sha256sum`)
    name: str = ""  # who holds it, for logs
    admin: bool = False  # sees every row; otherwise `scope` must be set
    scope: dict[str, list[str]] = {}  # field -> allowed values (exact); every answer is limited to these rows

    @model_validator(mode="after")
    def _admin_or_scope(self) -> ReportTokenConfig:
        if self.admin == bool(self.scope):
            raise ValueError("a token is either admin: true or has a non-empty scope")
        return self


class ScheduleConfig(Section):
    """A report produced on a cron schedule and delivered to a directory and/or a webhook; or, with
    `report: reconcile_pull`, the providers' usage and cost reports pulled into the ledger (`pull`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # names the files and the state rows
    cron: str  # five-field cron expression (minute hour day month weekday) in reports.utc_offset
    report: Literal["summary", "detailed", "cost", "trend", "reconcile_pull"] = "summary"  # which report
    pull: ReconcilePullConfig | None = None  # reconcile_pull: which provider, how many days
    range: str = "24h"  # a range preset (1h, 24h, 7d, 30d, 90d, today, yesterday, this_month, ...)
    filters: dict[str, list[str]] = {}  # field -> values, as in the API
    group_by: list[str] = []  # fields to group by
    format: Literal["json", "csv", "xlsx", "pdf", "focus", "slack"] = "json"  # slack: a Slack-compatible text message
    directory: Path | None = None  # write each run's file here (relative to the config file)
    webhook_url: str | None = None  # POST each run here with an Idempotency-Key header
    scope: dict[str, list[str]] = {}  # the rows this schedule may export ({} = all)
    retry_for_hours: float = Field(default=24.0, gt=0, le=24 * 31)  # a failed delivery is retried this long
    max_attempts: int | None = Field(default=None, ge=1, le=100_000)  # give up sooner, after this many attempts
    bom: bool = False  # csv and focus: start the file with a UTF-8 byte order mark (Excel on Windows)

    @model_validator(mode="after")
    def _destination(self) -> ScheduleConfig:
        if (self.report == "reconcile_pull") != (self.pull is not None):
            raise ValueError("report reconcile_pull takes pull (provider, days); other reports take none")
        if self.directory is None and self.webhook_url is None and self.pull is None:
            raise ValueError("set directory and/or webhook_url")
        return self


class ModelSwitchConfig(Section):
    """Models the savings advice may propose for a model's traffic besides its family's smaller ones."""

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)  # the model the traffic uses
    alternatives: list[str] = Field(min_length=1)  # models of the same provider judged comparable for it
    assumption: str = ""  # why they are comparable (shown with each item)


class AdviceConfig(Section):
    """`/api/v1/recommendations`: which switches are proposed and which savings are worth an item."""

    same_family: bool = True  # propose the same family's smaller models (docs/reports.md, Savings advice)
    equivalents: list[ModelSwitchConfig] = []  # further comparable models, per (provider, model)
    min_saving_usd: Decimal = Field(default=Decimal("1"), ge=0)  # items saving less (over the window) are left out
    min_saving_share: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)  # ... or less than this share of the cost


LIGHT_THREADS = 4  # WSGI threads kept for health, pages and small answers beyond the heavy slots and queue


class ReportLimitsConfig(Section):
    """Bounds of the report service's work per request (docs/reports.md, "Limits")."""

    request_seconds: float = Field(default=60.0, gt=0, le=3600)  # time limit of an answer (ledger queries stop): 504
    export_seconds: float = Field(default=600.0, gt=0, le=86400)  # time limit of a streamed export (calls CSV)
    heavy_concurrent: int = Field(default=2, ge=1, le=64)  # reports, exports and scans running at once
    heavy_queue: int = Field(default=32, ge=0, le=1000)  # heavy requests waiting for a slot; beyond: 503
    queue_seconds: float = Field(default=30.0, ge=0, le=600)  # longest wait for a slot, then 503 + Retry-After
    spool_dir: Path | None = None  # exports are written here before they are sent (default: the temp dir)
    spool_mb: int = Field(default=2048, ge=1)  # exports written and not yet sent, in MiB; beyond: 503


class ReportsConfig(Section):
    """`genai-meter reports`: the report service (docs/reports.md)."""

    listen: str = "127.0.0.1:8080"  # HOST:PORT; beyond loopback only when tokens are configured
    tokens: list[ReportTokenConfig] = []  # bearer tokens; none = open, loopback only
    tokens_file: Path | None = None  # YAML list of more tokens in the same shape (relative to the config file)
    utc_offset: str | None = None  # calendar ranges (today, this_month, ...); default: the first budget's, else +00:00
    schedules: list[ScheduleConfig] = []  # scheduled exports
    state_file: Path | None = None  # schedule state (SQLite); default: reports-state.db beside the ledger file
    max_range_days: int = Field(default=1100, ge=1)  # longest from/to span a request may ask for
    max_rows: int = Field(default=10000, ge=10)  # most groups or rows one JSON/XLSX/PDF answer holds
    threads: int | None = Field(default=None, ge=2, le=1024)  # WSGI threads; default: heavy slots + queue + 4
    limits: ReportLimitsConfig = ReportLimitsConfig()  # time limits, admission, export spooling
    advice: AdviceConfig = AdviceConfig()  # savings advice: comparable models, thresholds

    @property
    def worker_threads(self) -> int:
        """WSGI worker threads: `threads`, else one per heavy request running or queued plus 4 for the rest."""
        return self.threads or self.limits.heavy_concurrent + self.limits.heavy_queue + LIGHT_THREADS

    @model_validator(mode="after")
    def _threads_left_for_light_requests(self) -> ReportsConfig:
        heavy = self.limits.heavy_concurrent + self.limits.heavy_queue
        if self.threads is not None and self.threads <= heavy:
            raise ValueError(f"threads ({self.threads}) must exceed limits.heavy_concurrent + limits.heavy_queue "
                             f"({heavy}): health and small answers need threads of their own")
        return self

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str | None) -> str | None:
        if value is not None and not UTC_OFFSET.match(value):
            raise ValueError(f"utc_offset must look like +HH:MM, got {value!r}")
        return value
