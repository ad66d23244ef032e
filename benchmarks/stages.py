"""Where one span's time goes in the receiver: the stages of `Ingestor` timed one by one, in-process.

Runs the real pieces `genai-meter serve` assembles (lean parse, `SpanExtractor`, `SeenSpans`,
`Meter.assess` = conventions + pricing, `Meter.record` into `UsageMetrics`, the bulk tally, the
ledger's insert parameters, one SQLite group commit per request on a real file and the seal pass that
rolls the calls up) over fresh stamped bodies, with the garbage collector off, and reports µs per LLM
span for each. The protobuf parse floor and the naive receiver of bench_receiver run on the same
bodies, so their ratios are comparable between runs. "Whole requests" runs `Ingestor.export` as serve
does, and with the ledger on counts every thread's CPU and the seal pass of the calls it stored. Then
whole requests of the same spans under four instrumentation scopes, and of mixed traffic
(benchmarks.stage_scopes).

    .venv/bin/python -m benchmarks stages
"""

from __future__ import annotations

import gc
import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_receiver import seal_stored
from benchmarks.harness import report
from benchmarks.otlp_bodies import SPANS_PER_REQUEST, Stamper, template_body
from benchmarks.stage_scopes import by_scope

BODIES = 24  # per round
TALLY_ACCELERATED = importlib.util.find_spec("genai_meter.collector_processor.metering._tally") is not None
ROUNDS = 5  # best round of each stage is reported


def _pipeline(tmp: Path) -> dict[str, Any]:
    from genai_meter.collector_processor.metering import build_meter
    from genai_meter.collector_processor.receiver.dedup import SeenSpans
    from genai_meter.collector_processor.receiver.spans import SpanExtractor
    from genai_meter.collector_processor.receiver.tally_rows import TallyParams
    from genai_meter.config import Config
    from genai_meter.exporters import UsageMetrics
    from genai_meter.ledger.rows import RowBuilder
    from genai_meter.ledger.sqlite_writer import SQLiteWriter

    config = Config()
    metrics = UsageMetrics(config, serve=True)
    meter = build_meter(config, [metrics])
    writer = SQLiteWriter(tmp / "stages.db", config)
    rows = RowBuilder(config)
    return {"config": config, "metrics": metrics, "meter": meter, "extractor": SpanExtractor(),
            "dedup": SeenSpans(config.limits.dedup_window_seconds, config.limits.dedup_max_entries),
            "rows": rows, "writer": writer, "tally params": TallyParams(rows, writer.dictionaries)}


def _round(p: dict[str, Any], bodies: list[bytes]) -> dict[str, float]:
    """One pass over `bodies`, each stage timed over all of them (seconds per stage)."""
    from genai_meter.collector_processor.receiver.decode import parse_lean
    from genai_meter.ledger import Entry

    t: dict[str, float] = {}
    clock = time.thread_time  # CPU of this thread: the shared machine's waits and fsync waits left out

    def stage(name: str, run: Callable[[], Any]) -> Any:
        start = clock()
        out = run()
        t[name] = t.get(name, 0.0) + clock() - start
        return out

    lean = stage("upb parse (lean schema)", lambda: [parse_lean(b) for b in bodies])
    extractor = p["extractor"]
    found = stage("extraction (attributes, SpanRecord)", lambda: [extractor.extract(r) for r in lean])
    if extractor.accelerated:  # the C accelerator (spans.extract_data), from the body: the same result
        stage("extraction, accelerated (C, from the body)", lambda: [extractor.extract_data(b) for b in bodies])
    candidates = [f.candidates for f in found]
    dedup = p["dedup"]

    def claim() -> list[list[bool]]:
        out = []
        for spans in candidates:
            keys = [r.trace_id + r.span_id for r in spans]
            out.append(dedup.claim(keys))
            dedup.settle(keys)
        return out

    stage("dedup (claim + settle)", claim)
    meter = p["meter"]
    conventions, prices = meter.conventions, meter.prices
    calls = stage("classification (Conventions.classify)",
                  lambda: [[conventions.classify(r) for r in spans] for spans in candidates])
    stage("pricing (PriceBook.cost)", lambda: [[prices.cost(c) for c in cs] for cs in calls])
    meter.nested = type(meter.nested)()  # assess again from scratch (nested-call memory)
    assessed = stage("assess (classify + identify + price)",
                     lambda: [[meter.assess(r) for r in spans] for spans in candidates])
    entries = [[Entry(c, cost) for c, cost in a] for a in assessed]
    # metering.tally, as the Ingestor runs it per request (templates learned by assess above), on the
    # candidates the receiver meets (the C extraction's, keys interned, when it is built)
    served = [e.candidates for e in map(extractor.extract_data, bodies)] if extractor.accelerated else candidates
    stage("tally (templated assess + group counts), pure", lambda: _tally_requests(meter, served, False))
    if TALLY_ACCELERATED:
        tallies = stage("tally (templated assess + group counts), accelerated",
                        lambda: _tally_requests(meter, served, True))
    else:
        tallies = _tally_requests(meter, served, False)
    writer, rows_of = p["writer"], p["rows"].rows
    stage("ledger params, assessed calls (RowBuilder + params_of)",
          lambda: [writer.params_of(rows_of(e)) for e in entries])
    made = p["tally params"]
    params = stage("ledger params, bulk-counted calls (TallyParams)", lambda: [made.params(t) for t in tallies])
    stage("ledger commit (SQLite INSERT + COMMIT)", lambda: [writer._commit([(q, _future())]) for q in params])
    stage("ledger seal (hourly rollups from the raw calls)", lambda: seal_stored(writer._conn))
    record = meter.record
    stage("recording (Meter.record -> UsageMetrics)",
          lambda: [[record(c, cost) for c, cost in a] for a in assessed])
    return t


def _tally_requests(meter: Any, requests: list[list[Any]], accelerated: bool) -> list[Any]:
    """`Tally.run` over each request, `Meter.assess` for each span it does not take (as Ingestor.export);
    the tallies."""
    if accelerated:
        from genai_meter.collector_processor.metering._tally import run as c_run
    meter.bulk = True  # a tally on both paths, whether or not the accelerator is switched on
    tallies = []
    for spans in requests:
        meter.nested = type(meter.nested)()
        tally = meter.tally()
        tallies.append(tally)
        i, n = 0, len(spans)
        while i < n:
            i = c_run(tally, spans, i) if accelerated else tally.run_pure(spans, i)
            if i < n:
                meter.assess(spans[i])
                i += 1
    return tallies


def _whole_requests(tmp: Path, stamper: Stamper, ledger: bool) -> dict[str, float]:
    """µs per span of `Ingestor.export` on whole requests (what serve runs per request, minus the HTTP
    or gRPC layer), and of the garbage collector within it, with the collector thresholds serve
    sets (ingest.tune_garbage_collector) and with CPython's defaults."""
    from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
    from genai_meter.collector_processor.receiver.receivers import Receivers
    from genai_meter.config import Config
    from genai_meter.ledger.sqlite_schema import open_write

    config = Config()
    if ledger:
        url = f"sqlite:///{tmp / 'whole.db'}"
        config = config.model_copy(update={"ledger": config.ledger.model_copy(update={"url": url})})
    receivers = Receivers(config)
    ingestor = receivers.ingestor
    sealing = open_write(tmp / "whole.db", 10.0) if ledger else None
    spent = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent[1] = time.process_time()
        else:
            spent[0] += time.process_time() - spent[1]

    out: dict[str, float] = {}
    default = gc.get_threshold()
    tuned = (default[0], *default[1:])
    gc.callbacks.append(on_gc)
    try:
        for label, threshold in (("tuned", tuned), ("CPython defaults", (700, 10, 10))):
            gc.set_threshold(*threshold)
            for body in stamper.bodies(4):
                ingestor.export(decode(body, MEDIA_PROTOBUF))
            bodies = stamper.bodies(BODIES)
            spent[0] = 0.0
            start = time.process_time()  # every thread: the ledger's writer too
            for body in bodies:
                ingestor.export(decode(body, MEDIA_PROTOBUF))
            if sealing is not None:
                seal_stored(sealing)  # the rollups of these calls, which the writer makes a minute later
            seconds = time.process_time() - start
            spans = BODIES * SPANS_PER_REQUEST
            out[f"whole requests, gc {label}"] = seconds / spans * 1e6
            out[f"  of which garbage collector, gc {label}"] = spent[0] / spans * 1e6
    finally:
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*default)
        if receivers.ledger is not None:
            receivers.ledger.close()
        if sealing is not None:
            sealing.close()
    return out


def _future() -> Any:
    from concurrent.futures import Future

    return Future()


def main() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from benchmarks.bench_receiver import naive_receiver

    template = template_body(1.0)
    stamper = Stamper(template)
    with tempfile.TemporaryDirectory(prefix="genai-meter-stages-") as tmp_name:
        p = _pipeline(Path(tmp_name))
        p["writer"].close()  # the stage runs the commit on this thread
        from genai_meter.collector_processor.receiver.tally_rows import TallyParams
        from genai_meter.ledger.sqlite_params import Dictionaries
        from genai_meter.ledger.sqlite_schema import open_write

        p["writer"]._conn = open_write(Path(tmp_name) / "stages.db", 10.0)
        p["writer"].dictionaries = Dictionaries(Path(tmp_name) / "stages.db", 10.0)
        p["tally params"] = TallyParams(p["rows"], p["writer"].dictionaries)
        naive = naive_receiver()
        parse = ExportTraceServiceRequest.FromString
        _round(p, stamper.bodies(4))  # warm: caches, series, label sets, prices
        best: dict[str, float] = {}
        refs = {"parse floor": float("inf"), "naive": float("inf")}
        gc.disable()
        try:
            for _ in range(ROUNDS):
                bodies = stamper.bodies(BODIES)
                for name, seconds in _round(p, bodies).items():
                    best[name] = min(best.get(name, float("inf")), seconds)
                start = time.thread_time()
                for body in bodies:
                    parse(body)
                refs["parse floor"] = min(refs["parse floor"], time.thread_time() - start)
                start = time.thread_time()
                for body in bodies:
                    naive(body)
                refs["naive"] = min(refs["naive"], time.thread_time() - start)
        finally:
            gc.enable()
            p["writer"]._conn.close()
        whole = {f"{k} (ledger {'on' if ledger else 'none'})": v
                 for ledger in (False, True) for k, v in _whole_requests(Path(tmp_name), stamper, ledger).items()}
    spans = BODIES * SPANS_PER_REQUEST
    us = {name: s / spans * 1e6 for name, s in best.items()}
    rows = [(name, f"{v:.2f} µs", "") for name, v in us.items()]
    floor = refs["parse floor"] / spans * 1e6
    naive_us = refs["naive"] / spans * 1e6
    ledger = (us["ledger params, bulk-counted calls (TallyParams)"] + us["ledger commit (SQLite INSERT + COMMIT)"]
              + us["ledger seal (hourly rollups from the raw calls)"])
    rows.append(("ledger, per bulk-counted call (params + insert + seal)", f"{ledger:.2f} µs", ""))
    rows.append(("reference: parse floor (upb, full schema)", f"{floor:.2f} µs", f"{1e6 / floor:,.0f} spans/s"))
    rows.append(("reference: naive receiver", f"{naive_us:.2f} µs", f"{1e6 / naive_us:,.0f} spans/s"))
    rows += [(name, f"{v:.2f} µs", f"{floor / v:.3f}x parse floor, {naive_us / v:.2f}x naive; process CPU, gc on")
             for name, v in whole.items() if not name.lstrip().startswith("of which")]
    rows += [(name, f"{v:.2f} µs", "") for name, v in whole.items() if name.lstrip().startswith("of which")]
    rows += by_scope()
    report(f"receiver stages, all-LLM, µs per span (best of {ROUNDS} rounds of {BODIES} x "
           f"{SPANS_PER_REQUEST} spans, gc off)", rows)


if __name__ == "__main__":
    main()
