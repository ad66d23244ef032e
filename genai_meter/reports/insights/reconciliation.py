"""The reconciliation as a `Report` (tables of typed cells) for the CSV, XLSX and PDF renderers.

Tables: `totals` (one row: both sides and the difference), `by_cause` (the rows and the difference of
each cause found), `reconciliation` (the primary table: a row per UTC day x provider x model, the same
columns as the JSON rows, lists joined with "; "), `drift` (the difference per day, charted), the exact
figures and `causes` (what each cause means and what to do). The CSV of `genai-meter reconcile report
--csv` and of the API is the `reconciliation` table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from genai_meter.money import usd_text
from genai_meter.periods import NS
from genai_meter.reconcile.causes import CAUSES
from genai_meter.reconcile.compare import Reconciliation, Row, percent
from genai_meter.reconcile.lines import TOKEN_CLASSES
from genai_meter.reports.render.tables import Cell, Chart, Column, Report, Table

TITLE = "Reconciliation: the providers' reports against the ledger"
_TOKENS = [Column(f"tokens_{c}_{side}", f"Tokens {c.replace('_', ' ')} ({side})", "int")
           for c in TOKEN_CLASSES for side in ("provider", "ledger")]
# The first nine are the ones a PDF prints (render.pdf); CSV and XLSX carry them all.
COLUMNS: list[Column] = [
    Column("day", "Day (UTC)", "text"), Column("provider", "Provider", "text"), Column("model", "Model", "text"),
    Column("requests_provider", "Requests (provider)", "int"), Column("requests_ledger", "Requests (ledger)", "int"),
    Column("cost_provider_usd", "Cost, provider (USD)", "usd"), Column("cost_ledger_usd", "Cost, ledger (USD)", "usd"),
    Column("difference_usd", "Difference (USD)", "usd"), Column("cause", "Cause", "text"),
    Column("difference_pct", "Difference (%)", "percent"), Column("explanation", "Explanation", "text"),
    Column("project", "Project", "text"), Column("api_key_id", "API key", "text"), *_TOKENS,
    Column("cost_provider_source", "Provider cost from", "text"),
    Column("ledger_calls_unpriced", "Ledger calls unpriced", "int"),
    Column("ledger_calls_upper_bound", "Ledger calls upper bound", "int"),
    Column("folded", "Provider folds", "text"), Column("units_provider", "Provider units", "text"),
    Column("provider_models", "Provider's model names", "text"),
    Column("ledger_models", "Ledger's model names", "text"),
]
TOTAL_COLUMNS = [Column("rows", "Rows", "int"), Column("requests_provider", "Requests (provider)", "int"),
                 Column("requests_ledger", "Requests (ledger)", "int"),
                 Column("cost_provider_usd", "Cost, provider (USD)", "usd"),
                 Column("cost_ledger_usd", "Cost, ledger (USD)", "usd"),
                 Column("difference_usd", "Difference (USD)", "usd"),
                 Column("difference_pct", "Difference (%)", "percent")]
CAUSE_COLUMNS = [Column("cause", "Cause", "text"), Column("title", "In words", "text"), Column("rows", "Rows", "int"),
                 Column("requests_provider", "Requests (provider)", "int"),
                 Column("requests_ledger", "Requests (ledger)", "int"),
                 Column("difference_usd", "Difference (USD)", "usd"),
                 Column("rows_without_difference", "Rows without a difference (no price)", "int")]


def row_cells(row: Row) -> list[Cell]:
    """A row of `reconciliation`, in COLUMNS order."""
    k, p, led = row.key, row.provider, row.ledger
    tokens: list[Cell] = []
    for name in TOKEN_CLASSES:
        tokens += [row.provider_tokens(name), led.tokens[name]]
    return [k.day.isoformat(), k.provider, k.model, p.requests, led.calls, p.cost_pico, row.cost_ledger_pico,
            row.difference_pico, row.cause, percent(row.difference_pico, p.cost_pico), row.explanation, k.project,
            k.api_key_id, *tokens, p.cost_source, led.calls_unpriced, led.calls_upper_bound,
            "; ".join(sorted(p.folded)), "; ".join(f"{n}={v}" for n, v in sorted(p.units.items())),
            "; ".join(sorted(p.models)), "; ".join(sorted(led.models))]


def _exact(pico: int | None) -> str:
    return "" if pico is None else usd_text(pico)


def _midnight_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * NS


def _window(rec: Reconciliation) -> tuple[int, int]:
    return _midnight_ns(rec.first), _midnight_ns(rec.last) + 86400 * NS


def _summary(rec: Reconciliation) -> dict[str, object]:
    """The head the renderers print: the provider's requests and cost (what it billed), the ledger's side
    and the difference as a note."""
    sums = rec.total()
    pct = percent(sums.difference_pico, sums.cost_provider_pico)
    note = (f"in the ledger, cost ${usd_text(sums.cost_ledger_pico)}; the provider's cost minus the ledger's: "
            f"${usd_text(sums.difference_pico)}" + (f" ({pct:f} %)" if pct is not None else ""))
    unknown = ([{"kind": "unknown", "calls": sums.unknown, "note": "rows without a price on one side: no difference"}]
               if sums.unknown else [])
    return {"calls": sums.requests_provider, "cost_usd": usd_text(sums.cost_provider_pico),
            "exactness": "incomplete" if sums.unknown else "exact", "calls_unpriced": 0, "calls_upper_bound": 0,
            "caveats": [{"kind": "ledger", "calls": sums.requests_ledger, "note": note}, *unknown]}


def reconciliation_report(rec: Reconciliation, coverage: dict[str, str | None] | None = None) -> Report:
    """The reconciliation as a report (see the module docstring); `coverage` is the ledger's
    (first_call, last_call, raw_since) for the document's head."""
    start, end = _window(rec)
    sums = rec.total()
    totals = Table("reconciliation_totals", "Totals", TOTAL_COLUMNS, [[
        sums.rows, sums.requests_provider, sums.requests_ledger, sums.cost_provider_pico, sums.cost_ledger_pico,
        sums.difference_pico, percent(sums.difference_pico, sums.cost_provider_pico)]])
    by_cause = Table("by_cause", "By cause", CAUSE_COLUMNS, [
        [name, cause.title, part.rows, part.requests_provider, part.requests_ledger, part.difference_pico, part.unknown]
        for name, cause in CAUSES.items() if (part := rec.total(r for r in rec.rows if r.cause == name)).rows])
    rows = Table("reconciliation", "By day, provider and model", COLUMNS, [row_cells(r) for r in rec.rows],
                 note="Difference: the provider's cost minus the ledger's. A provider token count left blank is "
                      "reported only inside input or output (compare their totals).")
    drift = Table("drift", "Drift by day", [
        Column("day", "Day (UTC)", "time"), Column("rows", "Rows", "int"),
        Column("cost_provider_usd", "Cost, provider (USD)", "usd"),
        Column("cost_ledger_usd", "Cost, ledger (USD)", "usd"), Column("difference_usd", "Difference (USD)", "usd"),
        Column("difference_pct", "Difference (%)", "percent")],
        [[_midnight_ns(day), s.rows, s.cost_provider_pico, s.cost_ledger_pico, s.difference_pico,
          percent(s.difference_pico, s.cost_provider_pico)] for day, s in rec.by_day()])
    drift.chart = Chart("line", "day", ("difference_usd",), "Difference per day (USD): provider minus ledger")
    exact = Table("exact_figures", "Exact figures (USD, 10^-12)", [
        Column("day", "Day (UTC)", "text"), Column("provider", "Provider", "text"), Column("model", "Model", "text"),
        Column("cost_provider", "Provider", "text"), Column("cost_ledger", "Ledger", "text"),
        Column("difference", "Difference", "text"), Column("cause", "Cause", "text")],
        [[r.key.day.isoformat(), r.key.provider, r.key.model, _exact(r.provider.cost_pico), _exact(r.cost_ledger_pico),
          _exact(r.difference_pico), r.cause] for r in rec.rows])
    causes = Table("causes", "Causes", [Column("cause", "Cause", "text"), Column("title", "In words", "text"),
                                        Column("meaning", "Meaning", "text"), Column("action", "What to do", "text")],
                   [[c.name, c.title, c.meaning, c.action] for c in CAUSES.values()])
    filters = {"provider": list(rec.providers)} if rec.providers else {}
    return Report("reconciliation", TITLE, start, end, filters, [],
                  coverage or {"first_call": None, "last_call": None, "raw_since": None}, _summary(rec),
                  [totals, by_cause, rows, drift, exact, causes], "reconciliation")
