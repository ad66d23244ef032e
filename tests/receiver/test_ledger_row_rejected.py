"""The receiver over a real SQLite ledger: a request holding a call the ledger can never store (spans are
range-checked where they are read; here the file itself refuses calls of a marked token count) is answered
as rejected spans (OTLP partial success) and counted in rejected{ledger_row_rejected}, never 503;
requests sharing its group commit are counted as usual. `ledger forget` while the receiver runs
(bulk-counted calls keep label-set ids per template) files nobody's calls under another's name."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from genai_meter import contract
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor, Outcome
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger import forget, open_reader
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.support.ledger_faults import REFUSAL, REFUSED_INPUT_TOKENS, refuse_marked_calls
from tests.support.otlp import llm_attributes, make_request, make_span, plain_span

CONFIG = Config()


def _pipeline(tmp: Path, *, bulk: bool, config: Config = CONFIG) -> tuple[Ingestor, UsageMetrics, SQLiteWriter]:
    metrics = UsageMetrics(config, serve=True)
    meter = build_meter(config, [metrics])
    meter.bulk = bulk
    writer = SQLiteWriter(tmp / "ledger.db", config)
    refuse_marked_calls(tmp / "ledger.db")
    seen = SeenSpans(config.limits.dedup_window_seconds, config.limits.dedup_max_entries)
    return Ingestor(meter, metrics, seen, ledger=writer), metrics, writer


def _export(ingestor: Ingestor, request: object) -> Outcome | str:
    try:
        return ingestor.export(decode(request.SerializeToString(), MEDIA_PROTOBUF))  # type: ignore[attr-defined]
    except Exception as exc:  # Unavailable: the client would get 503 and retry forever
        return type(exc).__name__


def _requests(metrics: UsageMetrics, customer: str) -> float:
    return sum(v for (name, labels), v in metrics.samples().items()
               if name == "llm_requests_total" and ("customer", customer) in labels)


@pytest.mark.parametrize("bulk", [True, False])
def test_a_call_the_ledger_cannot_store_rejects_its_request_not_the_commit(tmp_path: Path, bulk: bool) -> None:
    ingestor, metrics, writer = _pipeline(tmp_path, bulk=bulk)
    try:
        poisoned = make_request([make_span(llm_attributes(customer="poison")) for _ in range(2)]
                                + [make_span(llm_attributes(customer="poison", input_tokens=REFUSED_INPUT_TOKENS)), plain_span()])
        outcome = _export(ingestor, poisoned)
        assert isinstance(outcome, Outcome), outcome
        assert (outcome.rejected, outcome.counted) == (3, 0)
        assert contract.REJECT_LEDGER_ROW in outcome.message and REFUSAL in outcome.message
        assert metrics.get(contract.SELF_SPANS_REJECTED, reason=contract.REJECT_LEDGER_ROW) == 3
        assert metrics.get(contract.SELF_LEDGER_FAILURES) == 0
        assert metrics.get(contract.SELF_SPANS_SKIPPED, reason=contract.SKIP_NOT_LLM) == 1
        assert _requests(metrics, "poison") == 0

        good = _export(ingestor, make_request([make_span(llm_attributes(customer="fine")) for _ in range(4)]))
        assert isinstance(good, Outcome) and (good.rejected, good.counted) == (0, 4)
        again = _export(ingestor, poisoned)  # a retry is rejected again (its claims were released)
        assert isinstance(again, Outcome) and (again.rejected, again.duplicates) == (3, 0)
        assert ingestor.reconcile.difference_pico == 0 and writer.healthy()
    finally:
        writer.close()
    reader = open_reader(f"sqlite:///{tmp_path / 'ledger.db'}", CONFIG)
    try:
        stored = {t.key: t.calls for t in reader.totals(0, 2**62, {}, ["customer"])}
        assert stored == {("fine",): 4}
    finally:
        reader.close()


def test_concurrent_requests_are_never_failed_by_one_poisoned_call(tmp_path: Path) -> None:
    ingestor, metrics, writer = _pipeline(tmp_path, bulk=True)
    outcomes: dict[tuple[int, int], Outcome | str] = {}

    def client(k: int) -> None:
        for j in range(15):
            spans = [make_span(llm_attributes(customer=f"c{k}")) for _ in range(5)]
            if (k, j) == (3, 7):
                spans[2] = make_span(llm_attributes(customer=f"c{k}", input_tokens=REFUSED_INPUT_TOKENS))
            outcomes[(k, j)] = _export(ingestor, make_request(spans))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    writer.close()
    assert len(outcomes) == 8 * 15
    assert not [o for o in outcomes.values() if not isinstance(o, Outcome)]  # no request answered 503
    rejected = {key: o.rejected for key, o in outcomes.items() if isinstance(o, Outcome) and o.rejected}
    assert rejected == {(3, 7): 5}
    assert sum(o.counted for o in outcomes.values() if isinstance(o, Outcome)) == 8 * 15 * 5 - 5
    assert metrics.get(contract.SELF_LEDGER_FAILURES) == 0


@pytest.mark.parametrize("bulk", [True, False])
def test_forget_while_the_receiver_runs(tmp_path: Path, bulk: bool) -> None:
    config = Config()
    ingestor, _, writer = _pipeline(tmp_path, bulk=bulk, config=config)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    reader = open_reader(url, config)
    try:
        for customer in ("acme", "zeta"):
            assert _export(ingestor, make_request([make_span(llm_attributes(customer=customer)) for _ in range(3)]))
        assert {r.dimensions.get("customer") for r in reader.events({}, limit=50).rows} == {"acme", "zeta"}
        assert forget(url, config, customer="zeta") == 3
        for customer in ("omega", "zeta", "acme"):  # a new tenant, the forgotten one later, a known one
            outcome = _export(ingestor, make_request([make_span(llm_attributes(customer=customer)) for _ in range(3)]))
            assert isinstance(outcome, Outcome) and outcome.counted == 3
        totals = {t.key: t.calls for t in reader.totals(0, 2**62, {}, ["customer"])}
        assert totals == {("",): 3, ("acme",): 6, ("omega",): 3, ("zeta",): 3}
        rows = reader.events({"customer": ["omega"]}, limit=50).rows
        assert len(rows) == 3 and {r.dimensions["customer"] for r in rows} == {"omega"}
    finally:
        reader.close()
        writer.close()
