"""Whole requests by instrumentation scope, and of mixed traffic (a section of `benchmarks stages`).

The same 512 gen_ai.* chat spans (benchmarks.otlp_bodies.template_body) are metered under openai-v2's
scope, an app's own, OpenLLMetry's and OpenInference's: the scope is only a hint, so each should cost the
same and count every span. The mixed body (benchmarks.mixed_bodies) adds what real traffic has: several
resources and scopes, traces of four spans (roots, agents, tools, model calls), legacy keys, OpenLLMetry's
and OpenInference's own keys, service tiers and audio tokens. `Ingestor.export` with `--ledger none`,
process CPU, the collector thresholds serve sets, best of ROUNDS rounds of BODIES requests each; each round
runs every case in turn, so that a drift of the machine's speed hits them alike.
"""

from __future__ import annotations

import time

from benchmarks.mixed_bodies import mixed_body
from benchmarks.otlp_bodies import SCOPES, SPANS_PER_REQUEST, Stamper, template_body

BODIES = 24
ROUNDS = 7


def by_scope() -> list[tuple[str, str, str]]:
    """Report rows: µs per span of whole requests, spans per CPU-second, calls counted per request."""
    from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
    from genai_meter.collector_processor.receiver.ingest import tune_garbage_collector
    from genai_meter.collector_processor.receiver.receivers import Receivers
    from genai_meter.config import Config

    tune_garbage_collector()
    cases = [(f"{name} scope", template_body(1.0, scope=scope)) for name, scope in SCOPES.items()]
    cases.append(("mixed traffic", mixed_body()))
    runs = []
    for label, template in cases:
        ingestor = Receivers(Config()).ingestor
        stamper = Stamper(template)
        for body in stamper.bodies(4):  # warm: plans, templates, prices, series
            ingestor.export(decode(body, MEDIA_PROTOBUF))
        runs.append((label, ingestor, stamper))
    best = {label: float("inf") for label, _, _ in runs}
    counts = dict.fromkeys(best, 0)
    for _ in range(ROUNDS):
        for label, ingestor, stamper in runs:
            bodies = stamper.bodies(BODIES)
            start = time.process_time()
            counts[label] = sum(ingestor.export(decode(body, MEDIA_PROTOBUF)).counted for body in bodies)
            best[label] = min(best[label], time.process_time() - start)
    rows = []
    for label, _, _ in runs:
        us, counted = best[label] / (BODIES * SPANS_PER_REQUEST) * 1e6, counts[label]
        rows.append((f"whole requests, {label} (ledger none)", f"{us:.2f} µs",
                     f"{1e6 / us:,.0f} spans/CPU-s; {counted // BODIES} calls counted per request of "
                     f"{SPANS_PER_REQUEST} spans"))
    return rows
