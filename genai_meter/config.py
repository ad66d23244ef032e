"""The one validated configuration of genai-meter.

Loaded from YAML (``--config FILE``, else ``$GENAI_METER_CONFIG``, else built-in defaults). The same
`Config` object drives the span processor, the metric contract, the dashboards, the rules and the
reports, so none of them can disagree on a metric or label name.

A bad file raises `ConfigError`, whose message names the file, the key path and what was expected.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from genai_meter.config_base import UTC_OFFSET, Section
from genai_meter.config_base import ConfigError as ConfigError  # re-exported: every room imports it from here
from genai_meter.config_pricing import BatchRule as BatchRule  # re-exported: the config model's one home
from genai_meter.config_reconcile import ReconcileConfig
from genai_meter.config_reports import LIGHT_THREADS as LIGHT_THREADS  # re-exported, as the sections below
from genai_meter.config_reports import AdviceConfig as AdviceConfig
from genai_meter.config_reports import ModelSwitchConfig as ModelSwitchConfig
from genai_meter.config_reports import ReportLimitsConfig as ReportLimitsConfig
from genai_meter.config_reports import ReportsConfig
from genai_meter.config_reports import ReportTokenConfig as ReportTokenConfig
from genai_meter.config_reports import ScheduleConfig as ScheduleConfig
from genai_meter.periods import Period, parse_utc_offset

CONFIG_ENV = "GENAI_METER_CONFIG"
DATA_DIR_ENV = "GENAI_METER_DATA_DIR"

# Target labels that Prometheus and kube-prometheus attach at scrape time; a metric label of the
# same name would be renamed `exported_<name>` and break every dashboard.
RESERVED_LABELS = frozenset(
    {"job", "instance", "service", "namespace", "pod", "container", "endpoint", "le", "quantile"}
)
# Labels the contract itself uses; a dimension may not take one of these names.
BASE_LABELS = frozenset(
    {"service_name", "environment", "provider", "model", "operation", "status", "error_type",
     "token_type", "cost_type", "budget", "period", "reason", "dimension", "metric", "tool_name", "unit",
     "service_tier", "batch"}  # the price context: reserved dimensions of the ledger's label sets
)
_LABEL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class DimensionConfig(Section):
    """One attribution label, read from span (and optionally resource) attributes."""

    attributes: list[str] = Field(min_length=1)  # attribute keys, first present wins
    resource: bool = False  # also read the keys from resource attributes (span attributes first)
    max_values: int = Field(default=1000, ge=1)  # distinct values kept before folding into __overflow__
    allow: list[str] = []  # values always kept, whatever the cap
    hash: bool = False  # export a short SHA-256 of the value instead of the value (e-mail addresses)
    enabled: bool = True  # a disabled dimension is neither exported nor matched by budgets


def _default_dimensions() -> dict[str, DimensionConfig]:
    return {
        "customer": DimensionConfig(attributes=["customer.id", "tenant.id"], max_values=1000),
        "user": DimensionConfig(attributes=["enduser.id", "user.id"], max_values=500, hash=True,
                                enabled=False),
        "feature": DimensionConfig(attributes=["feature.id", "app.feature"], max_values=200),
        "project": DimensionConfig(attributes=["project.id"], resource=True, max_values=200),
        # The tenant an app serves (usage portals' "organization"); often set once per deployment.
        "organization": DimensionConfig(attributes=["organization.id", "org.id", "tenant.id"], resource=True,
                                        max_values=500),
    }


class CurrencyConfig(Section):
    """How dashboards and reports show money; metrics always count USD."""

    code: str = Field(default="USD", pattern=r"^[A-Z]{3}$")  # ISO 4217 code
    per_usd: Decimal = Field(default=Decimal("1"), gt=0)  # units of `code` per US dollar


class FxConfig(Section):
    """Dated exchange rates, USD base (pricing.fx): inline `rates` and/or a CSV or YAML `file`."""

    file: Path | None = None  # CSV (date,EUR,GBP,...) or YAML ({date: {EUR: rate}}), relative to the config file
    rates: dict[date, dict[str, Decimal]] = {}  # day -> {currency: units of it per USD}
    max_gap_days: int = Field(default=7, ge=0)  # a day's rate is the newest published at most this many days before


class PricingConfig(Section):
    """Where prices come from."""

    overrides: Path | None = None  # YAML file of local prices (relative to the config file)
    currency: CurrencyConfig = CurrencyConfig()
    auto_update: bool = False  # let genai-prices fetch newer catalog data at run time
    stale_after_days: int = Field(default=60, ge=1)  # the price catalog's age that raises an info alert
    fx: FxConfig | None = None  # dated exchange rates for reports in other currencies (pricing.fx)
    # calls matching any rule are priced at the batch price (docs/pricing.md); spans can say so themselves
    batch_rules: list[BatchRule] = []


class BudgetConfig(Section):
    """A spend or token limit over a calendar period, scoped by label matchers."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # becomes the `budget` label value
    match: dict[str, str] = {}  # label -> value; a value starting with `~` is a full-match regex
    period: Period = "month"  # calendar day, ISO week (Monday) or month
    utc_offset: str = "+00:00"  # where periods start, e.g. "-05:00"
    limit_usd: Decimal | None = Field(default=None, gt=0)
    limit_tokens: int | None = Field(default=None, gt=0)
    thresholds: list[int] = [75, 90, 95, 100]  # percent of the limit that alert

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetConfig:
        if (self.limit_usd is None) == (self.limit_tokens is None):
            raise ValueError("set exactly one of limit_usd or limit_tokens")
        if not UTC_OFFSET.match(self.utc_offset):
            raise ValueError(f"utc_offset must look like +HH:MM, got {self.utc_offset!r}")
        if sorted(set(self.thresholds)) != self.thresholds or not all(0 < t <= 1000 for t in self.thresholds):
            raise ValueError("thresholds must be increasing percentages between 1 and 1000")
        return self

    @property
    def offset(self) -> timedelta:
        """The UTC offset as a timedelta."""
        return parse_utc_offset(self.utc_offset)

    @property
    def unit(self) -> Literal["usd", "tokens"]:
        """What the limit counts."""
        return "usd" if self.limit_usd is not None else "tokens"

    @property
    def limit(self) -> Decimal:
        """The limit in its unit."""
        return self.limit_usd if self.limit_usd is not None else Decimal(self.limit_tokens or 0)


class AlertsConfig(Section):
    """Thresholds of the generated alerting rules."""

    spend_spike_zscore: float = Field(default=3.0, gt=0)  # deviations above the 7-day same-hour baseline
    spend_spike_min_usd_per_hour: float = Field(default=1.0, ge=0)  # below this no spike pages
    spend_spike_min_stddev_usd: float = Field(default=0.5, gt=0)  # floor on the baseline deviation
    error_rate: float = Field(default=0.05, gt=0, le=1)  # share of failed requests over 10 minutes
    latency_p95_seconds: float = Field(default=20.0, gt=0)
    runbook_base_url: str = "https://github.com/genai-meter/genai-meter/blob/main/docs/runbooks.md"
    dashboard_base_url: str = "http://127.0.0.1:3000"  # Grafana root that alert notifications link to
    anomaly_zscore: float = Field(default=3.0, gt=0)  # deviations above the same hour of the last 7 days
    anomaly_min_requests_per_hour: float = Field(default=100, ge=0)  # requests below this never alert
    anomaly_min_tokens_per_hour: float = Field(default=100_000, ge=0)  # tokens below this never alert
    anomaly_min_usd_per_hour: float = Field(default=1.0, ge=0)  # spend below this never alerts
    anomaly_min_stddev_ratio: float = Field(default=0.1, gt=0)  # deviation floor, as a share of the mean
    anomaly_min_stddev_requests: float = Field(default=10, gt=0)  # deviation floor in requests per hour
    anomaly_min_stddev_tokens: float = Field(default=10_000, gt=0)  # deviation floor in tokens per hour
    anomaly_min_stddev_usd: float = Field(default=0.5, gt=0)  # deviation floor in USD per hour


class LimitsConfig(Section):
    """Bounds that keep memory and Prometheus cardinality in check."""

    max_series_per_metric: int = Field(default=20000, ge=10)  # past it, new label sets fold into __overflow__
    max_label_value_length: int = Field(default=128, ge=8)  # longer values are cut
    dedup_window_seconds: int = Field(default=600, ge=0)  # how long a (trace, span) id is remembered
    dedup_max_entries: int = Field(default=1_000_000, ge=0)  # and how many at most
    max_tool_names: int = Field(default=200, ge=1)  # distinct tool names on the tool-call counter; more fold
    max_tokens_per_call: int = Field(default=100_000_000, ge=1)  # more (or < 0) in a call: invalid, never priced


class SamplingConfig(Section):
    """What to do with spans that carry an OTel probability-sampling threshold."""

    weight_by_adjusted_count: bool = False  # multiply counts by 1/p (estimates, labelled as such)


class ServerConfig(Section):
    """`genai-meter serve` listeners and protection."""

    grpc_listen: str = "127.0.0.1:4317"
    http_listen: str = "127.0.0.1:4318"
    metrics_listen: str = "127.0.0.1:9464"
    forward_endpoint: str | None = None  # OTLP/HTTP traces URL that received spans go on to
    forward_strip_content: bool = True  # drop prompt/completion attributes before forwarding
    forward_headers: dict[str, str] = {}  # extra HTTP headers for the forward endpoint; "${VAR}" reads the environment
    auth_tokens: list[str] = []  # accepted bearer tokens; empty = no auth
    auth_tokens_file: Path | None = None  # one token per line
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)  # after decompression
    max_concurrent_requests: int = Field(default=64, ge=1)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    shutdown_scrape_wait_seconds: float = Field(default=30.0, ge=0)  # wait for a last scrape on SIGTERM
    workers: int = Field(default=1, ge=1)  # receiver processes


class ReceiverConfig(Section):
    """How spans are read, by `genai-meter serve` and the in-process processor alike (docs/accuracy.md)."""

    # an end time further past the local clock than this refuses the span (end_time_in_future): a client
    # clock that is that far ahead, or a span dated 2099, would otherwise be the ledger's latest call
    max_future_skew_seconds: float = Field(default=600.0, ge=0, le=366 * 86400)


class LedgerConfig(Section):
    """The ledger: one row per metered call, the source of exact reports (docs/ledger.md)."""

    url: str | None = None  # sqlite:///PATH, clickhouse://..., or "none"; default: SQLite under data_dir
    data_dir: Path | None = None  # default: $GENAI_METER_DATA_DIR, else $XDG_STATE_HOME/genai-meter
    retention_days: int = Field(default=400, ge=1)  # raw calls kept this long (year over year needs > 365)
    rollup_retention_days: int = Field(default=1100, ge=1)  # hourly and daily rollups kept this long
    max_bytes: int | None = Field(default=None, ge=1024 * 1024)  # prune the oldest raw calls above this size
    # a pruned call re-sent (an OTLP retry, a collector replay) is known as stored while it ended this recently
    dedup_horizon_hours: float = Field(default=72, ge=0)
    hash_user_ids: bool = True  # store a SHA-256 of end-user ids, never the id itself
    commit_interval_ms: float = Field(default=5.0, ge=0, le=1000)  # group commit: wait this long for company
    busy_timeout_seconds: float = Field(default=5.0, gt=0)  # past this a locked ledger answers 503


class ResourceKeysConfig(Section):
    """Resource attributes that fill the base labels."""

    service: list[str] = ["service.name"]
    environment: list[str] = ["deployment.environment.name", "deployment.environment"]


class Config(Section):
    """The whole configuration; every field has a default so no file is needed."""

    metric_prefix: str = Field(default="llm", pattern=r"^[a-z][a-z0-9_]*$")  # prefix of every usage metric
    dimensions: dict[str, DimensionConfig] = Field(default_factory=_default_dimensions)
    resource_keys: ResourceKeysConfig = ResourceKeysConfig()
    pricing: PricingConfig = PricingConfig()
    budgets: list[BudgetConfig] = []
    alerts: AlertsConfig = AlertsConfig()
    limits: LimitsConfig = LimitsConfig()
    sampling: SamplingConfig = SamplingConfig()
    server: ServerConfig = ServerConfig()
    receiver: ReceiverConfig = ReceiverConfig()  # how spans are read (both paths)
    ledger: LedgerConfig = LedgerConfig()
    reports: ReportsConfig = ReportsConfig()  # the report service, its tokens and schedules
    reconcile: ReconcileConfig = ReconcileConfig()  # provider usage and cost reports, pulled or imported
    prometheus_url: str = "http://127.0.0.1:9090"  # where reports and forecasts query
    source_path: Path | None = Field(default=None, exclude=True)  # the file this came from

    @field_validator("dimensions")
    @classmethod
    def _dimension_names(cls, value: dict[str, DimensionConfig]) -> dict[str, DimensionConfig]:
        for name in value:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"dimension name {name!r} is not a Prometheus label name")
            if name in RESERVED_LABELS or name in BASE_LABELS:
                raise ValueError(f"dimension name {name!r} clashes with a reserved or contract label")
        return value

    @model_validator(mode="after")
    def _budgets_match_known_labels(self) -> Config:
        known = set(self.active_dimensions) | {"service_name", "environment", "provider", "model", "operation"}
        names = [b.name for b in self.budgets]
        if len(names) != len(set(names)):
            raise ValueError("budget names must be unique")
        for budget in self.budgets:
            for label, pattern in budget.match.items():
                if label not in known:
                    raise ValueError(f"budget {budget.name!r} matches unknown label {label!r} "
                                     f"(known: {', '.join(sorted(known))})")
                if pattern.startswith("~"):
                    try:
                        re.compile(pattern[1:])
                    except re.error as exc:
                        raise ValueError(f"budget {budget.name!r}: bad regex for {label}: {exc}") from None
        return self

    @property
    def active_dimensions(self) -> dict[str, DimensionConfig]:
        """The enabled dimensions, in a stable (sorted) order."""
        return {name: dim for name, dim in sorted(self.dimensions.items()) if dim.enabled}

    def resolve_path(self, path: Path) -> Path:
        """A path from the config, taken relative to the config file's folder."""
        if path.is_absolute() or self.source_path is None:
            return path
        return self.source_path.parent / path


def data_dir(config: Config) -> Path:
    """`ledger.data_dir`, else $GENAI_METER_DATA_DIR, else $XDG_STATE_HOME/genai-meter (~/.local/state):
    where genai-meter keeps its state (the SQLite ledger, stored price snapshots, report state)."""
    if config.ledger.data_dir is not None:
        return config.resolve_path(config.ledger.data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "genai-meter"


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        got = err.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {got!r})"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']}{got_text}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a mapping (parsed YAML) into a `Config`; raises `ConfigError` naming `source`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config from `path`, else `$GENAI_METER_CONFIG`, else return the defaults."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if chosen is None:
        return Config()
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    config = parse_config(data, str(file))
    return config.model_copy(update={"source_path": file.resolve()})
