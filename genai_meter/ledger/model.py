"""The ledger's interface: what the receiver writes and what reports read, for every backend.

Write side: `LedgerWriter.submit(entries)` hands a request's metered calls to the group-commit
writer and returns a `Future`; it resolves, once the calls are durable, to one bool per entry
(True: newly stored; False: that call was already stored, a retry or replay), or raises
`LedgerUnavailable` (nothing of that submission was stored; the receiver answers 503), or raises
`LedgerRowRejected` (a call of that submission can never be stored, e.g. a value beyond the ledger's
64-bit integers: nothing of it was stored, and retrying will not help; the other submissions of the
same group commit are stored as usual). `submit_rows(rows)` does the same for a caller that built
the stored rows (`ledger.rows.Row`) itself. `healthy()` says whether the writer can write now.

Read side: `LedgerReader`, the one query interface of both backends (SQLite embedded, ClickHouse
at scale). Times are Unix nanoseconds, ranges half-open [start_ns, end_ns). Money is integer
10^-12 USD (`genai_meter.money`). Filters are exact matches: field -> allowed values (OR within a
field, AND across fields). Field names are `FIELDS`; anything else raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from genai_meter.ledger.units import CONTEXT_FIELDS, UnitSums
from genai_meter.records import Cost, LLMCall

if TYPE_CHECKING:  # rows.py imports this module (Entry): the annotation only, no import circle
    from genai_meter.ledger.rows import Row

# Fields every backend can filter and group on. Dimension names from the config are added to
# these at run time (`LedgerReader.fields()`); `user` is the end-user id (hashed unless the config
# says otherwise) and `conversation` the conversation/session id.
BASE_FIELDS: tuple[str, ...] = ("service", "environment", "provider", "model", "request_model", "operation",
                                "status", "error_type", "conversation", "user") + CONTEXT_FIELDS
STEPS: tuple[str, ...] = ("1m", "1h", "1d", "1w", "1mo")
Step = Literal["1m", "1h", "1d", "1w", "1mo"]
MAX_POINTS = 5000  # series answers never hold more points than this per group
Filters = Mapping[str, Sequence[str]]


UNAVAILABLE = "unavailable"  # LedgerUnavailable.kind: busy, disk full, I/O error, backend down, writer closed
FILE_GONE = "file_gone"  # LedgerUnavailable.kind: the ledger file was moved away, deleted or replaced


class LedgerUnavailable(RuntimeError):
    """The ledger cannot accept or answer now (disk full, locked, backend down, file gone); retry later.
    `str(exc)` is the reason, one line; `kind` names the condition for callers that report it
    (UNAVAILABLE, or FILE_GONE when the ledger file is missing or was replaced)."""

    def __init__(self, message: str, kind: str = UNAVAILABLE) -> None:
        super().__init__(message)
        self.kind = kind


class LedgerRowRejected(ValueError):
    """A submission holds a call the ledger can never store (a value beyond its columns); permanent.
    Nothing of the submission was stored. `reason` is one line naming the call and the value;
    `rows` are the positions, within the submission, of the calls found at fault (may be empty when
    the store gave no detail): a caller may submit the others again."""

    def __init__(self, reason: str, rows: Sequence[int] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rows = tuple(rows)


@dataclass(frozen=True, slots=True)
class Entry:
    """One metered call to store: the `LLMCall` and its `Cost` (None: unpriced or invalid)."""

    call: LLMCall
    cost: Cost | None
    catalog_cost: Cost | None = None  # the catalog's price of the same call when an override priced it


class LedgerWriter(Protocol):
    def submit(self, entries: Sequence[Entry]) -> Future[list[bool]]:
        """Queue `entries` for the next group commit; see the module docstring. Never blocks on I/O."""

    def submit_rows(self, rows: Sequence[Row]) -> Future[list[bool]]:
        """`submit` for rows already built (`RowBuilder.row`, or from its `labelset` parts): one bool per row."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued and stop; idempotent."""

    def wal_bytes(self) -> int:
        """Bytes not yet folded into the store (SQLite: the WAL file; ClickHouse: the spool), a self-metric."""

    def healthy(self) -> bool:
        """Whether the writer can store calls now: False while its commits fail (until a commit or a
        probe succeeds) or its file is gone; readiness (/readyz) follows it."""

    @property
    def last_error(self) -> str | None:
        """Why the writer is not healthy (one line), None when it is."""


@dataclass(slots=True)
class Totals:
    """Sums over a set of calls. `key` holds the group-by values in the order asked for."""

    key: tuple[str, ...] = ()
    calls: int = 0
    errors: int = 0
    unpriced: int = 0
    unmetered: int = 0
    invalid: int = 0
    tokens: dict[str, int] = field(default_factory=dict)  # the five token classes
    cost_pico: dict[str, int] = field(default_factory=dict)  # the five classes and "request"
    list_cost_pico: int = 0  # the same calls at catalog prices (FOCUS ListCost)
    duration_s_sum: float = 0.0  # for averages
    weighted_calls: float = 0.0  # calls x sample weight (equals `calls` with no sampling weights)
    units: UnitSums = field(default_factory=UnitSums)  # billed units beyond the six classes, and flagged calls

    @property
    def cost_total_pico(self) -> int:
        """The six classes plus every billed unit."""
        return sum(self.cost_pico.values()) + sum(self.units.cost_pico.values())

    @property
    def tokens_total(self) -> int:
        return sum(self.tokens.values())


Metric = Literal["cost", "tokens", "calls"]


@dataclass(slots=True)
class Ranked:
    """A grouping of a range, complete: the top `limit` groups by a metric (highest first, ties by key)
    and `rest`, the exact sum of every other group (key (), None when no group was left out), so that
    rows + rest add up to the range's total. `groups` counts every group of the range."""

    rows: list[Totals]
    rest: Totals | None
    groups: int
    limit: int | None


@dataclass(slots=True)
class Point:
    """One step of a series: the step's start and the totals of the calls in it."""

    start_ns: int
    totals: Totals


@dataclass(slots=True)
class CallRow:
    """One stored call, as the activity feed and a conversation's page show it."""

    end_ns: int
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str
    service: str
    environment: str
    provider: str
    model: str
    request_model: str
    operation: str
    status: str
    error_type: str
    duration_s: float
    ttft_s: float | None
    tokens: dict[str, int]
    cost_pico: dict[str, int]  # by class, "request" included
    unit_prices: dict[str, str]  # USD per million tokens by class, decimal strings (the arithmetic)
    price_entry: str  # which price entry priced it ("" when unpriced)
    price_version: str
    price_source: str
    unpriced: bool
    unmetered: str
    invalid: str
    conversation: str
    user: str
    dimensions: dict[str, str]
    sample_weight: float = 1.0
    service_tier: str = ""  # "" when the span did not say
    batch: bool = False
    units: UnitSums = field(default_factory=UnitSums)  # this call's billed units and flags

    @property
    def cost_total_pico(self) -> int:
        """The six classes plus every billed unit."""
        return sum(self.cost_pico.values()) + sum(self.units.cost_pico.values())


@dataclass(slots=True)
class Page:
    """Rows newest first; `next_cursor` fetches the following (older) page, "" when none."""

    rows: list[CallRow]
    next_cursor: str


RECORD_COLUMNS: tuple[str, ...] = (
    "end_ns", "trace_id", "span_id", "labelset", "conversation", "user", "duration_us", "t_input", "t_cache_read",
    "t_cache_write", "t_output", "t_reasoning", "c_input", "c_cache_read", "c_cache_write", "c_output", "c_reasoning",
    "c_request", "price", "unpriced", "unmetered", "invalid")  # the columns of a `CallRecords` row, in order
CallKey = tuple[int, bytes, bytes]  # a call's identity: end time, trace id, span id


@dataclass(slots=True)
class CallRecords:
    """A page of stored calls as raw columns, newest first, for exports that format every call.

    `rows` are tuples of RECORD_COLUMNS (ids as bytes, times and money as ints); `label_rows(ids)` gives label
    sets of the rows as stored, in any order: (id, the LABEL_FIELDS values, the dimensions with the price context
    as a JSON object of strings), LedgerUnavailable when one is gone (`forget`); `price_entry(id)` the
    price entry of a price id; `units` the billed units and flags of the calls that have any, by call key.
    Within one `version` an id always means the same; a caller that keeps renderings of ids across pages drops
    them when `version` changes.
    `next_cursor` continues after the last row ("" when the range is exhausted), as `Page.next_cursor` does."""

    rows: list[tuple[Any, ...]]
    label_rows: Callable[[Collection[int]], list[tuple[Any, ...]]]
    price_entry: Callable[[int], str]
    units: Mapping[CallKey, UnitSums]
    version: object
    next_cursor: str = ""


@dataclass(slots=True)
class Conversation:
    conversation: str
    calls: int
    tokens: dict[str, int]
    cost_pico: int
    first_ns: int
    last_ns: int  # end of the last call
    duration_s: float  # sum of the calls' durations
    services: list[str]
    models: list[str]
    calls_unpriced: int = 0  # calls left out of cost_pico: no price matched, or invalid token counts
    calls_upper_bound: int = 0  # calls flagged unmetered (cache tokens unknown, or no usage)


@dataclass(slots=True)
class Latency:
    key: tuple[str, ...]
    calls: int
    avg_s: float
    p50_s: float
    p95_s: float
    p99_s: float


@dataclass(slots=True)
class Coverage:
    first_ns: int | None  # the oldest call stored (raw or rollup), None when empty
    last_ns: int | None
    raw_since_ns: int | None  # raw calls are kept from here on; None until a prune removed raw calls


class LedgerReader(Protocol):
    def fields(self) -> tuple[str, ...]:
        """Every field name filters and group_by accept: BASE_FIELDS plus the configured dimensions."""

    def totals(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Totals]:
        """One `Totals` per group (one with key () when group_by is empty, zero-filled if no calls)."""

    def series(self, start_ns: int, end_ns: int, step: Step, filters: Filters,
               group_by: Sequence[str] = (), utc_offset_s: int = 0) -> dict[tuple[str, ...], list[Point]]:
        """Per group, a point per step (empty steps omitted); steps of 1d/1w/1mo start at local
        midnight in `utc_offset_s`; raises ValueError past MAX_POINTS steps."""

    def top(self, start_ns: int, end_ns: int, by: str, metric: Literal["cost", "tokens", "calls"],
            k: int, filters: Filters) -> list[Totals]:
        """The k groups of field `by` with the highest metric, highest first."""

    def ranked(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: Metric = "cost") -> Ranked:
        """The top `limit` groups by `metric` and the exact remainder (every group when `limit` is None)."""

    def each_group(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   metric: Metric = "cost") -> Iterator[Totals]:
        """Every group of the range, highest `metric` first (ties by key), streamed (memory bounded)."""

    def series_ranked(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str],
                      limit: int | None, utc_offset_s: int = 0) -> Iterator[tuple[int, Ranked]]:
        """Per step with calls (oldest first): the step's start and its `ranked` grouping by cost."""

    def events(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None,
               cursor: str = "", limit: int = 50) -> Page:
        """Calls newest first, stable under concurrent writes (the cursor is a position, not an offset)."""

    def call_records(self, filters: Filters, *, start_ns: int | None = None, end_ns: int | None = None,
                     cursor: str = "", limit: int = 5000) -> CallRecords:
        """The calls `events` pages through, as raw columns (`CallRecords`), up to `limit` (at most 20000) per
        page; the same cursors, the same order, the same filters."""

    def conversations(self, start_ns: int, end_ns: int, filters: Filters, *, limit: int = 50,
                      cursor: str = "") -> tuple[list[Conversation], str]:
        """Conversations with a call in the range, most recent first, and the next cursor."""

    def conversation(self, conversation: str, filters: Filters) -> list[CallRow]:
        """A conversation's calls, oldest first (empty when none is visible under `filters`)."""

    def latency(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Latency]:
        """Average and percentiles of call duration per group."""

    def dimension_values(self, name: str, start_ns: int, end_ns: int, filters: Filters,
                         limit: int = 1000) -> list[str]:
        """Distinct values of field `name` in the range, sorted."""

    def coverage(self) -> Coverage: ...

    def close(self) -> None: ...
