"""SQLite reads grouped in SQL: coverage before and after a prune, the per-connection answer cache
(dropped when another connection commits), groups by a dimension some calls lack, exact $20M+ sums."""

from __future__ import annotations

from pathlib import Path

from genai_meter.config import Config, LedgerConfig
from genai_meter.ledger import forget, open_reader, open_writer, prune
from genai_meter.ledger.model import LedgerReader
from genai_meter.ledger.sqlite_rollups import seal_days
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.money import to_pico
from tests.ledger.support import DAY_NS, T0, entry

FAR = T0 + 400 * DAY_NS


def test_raw_since_is_none_until_a_prune_removed_raw_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + 12 * 3600 * 10**9 + i * (DAY_NS // 100)) for i in range(1000)]).result(10)
    writer.close()
    reader = open_reader(url, Config())
    cov = reader.coverage()
    assert cov.raw_since_ns is None  # nothing pruned: every raw call is there
    assert cov.first_ns is not None and cov.first_ns <= T0 + 12 * 3600 * 10**9
    reader.close()
    config = Config(ledger=LedgerConfig(retention_days=5))
    assert prune(url, config, now_ns=T0 + 10 * DAY_NS) > 0
    reader = open_reader(url, config)
    since = reader.coverage().raw_since_ns
    assert since is not None and since > T0 + 12 * 3600 * 10**9
    assert reader.events({}, start_ns=since, limit=1000).rows[-1].end_ns >= since
    reader.close()


def test_cache_is_dropped_when_another_connection_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * 10**9) for i in range(10)]).result(10)
    reader = open_reader(url, Config())
    assert reader.totals(T0, FAR, {})[0].calls == 10
    assert reader.totals(T0, FAR, {})[0].calls == 10  # the cached answer
    writer.submit([entry(100 + i, T0 + i * 10**9) for i in range(5)]).result(10)
    assert reader.totals(T0, FAR, {})[0].calls == 15
    assert {t.key: t.calls for t in reader.totals(T0, FAR, {}, ["model"])} == {("gpt-4o",): 15}
    writer.close()
    reader.close()


def test_group_by_a_dimension_some_calls_lack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i * 3600 * 10**9, customer="acme" if i % 3 else "") for i in range(90)]).result(10)
    writer.close()
    reader = open_reader(url, Config())
    assert {t.key: t.calls for t in reader.totals(T0, FAR, {}, ["customer"])} == {("",): 30, ("acme",): 60}
    assert {t.key: t.calls for t in reader.totals(T0 + 1, FAR, {}, ["customer", "model"])} == \
        {("", "gpt-4o"): 29, ("acme", "gpt-4o"): 60}
    assert reader.totals(T0, FAR, {"customer": ["acme"]})[0].calls == 60
    assert reader.totals(T0, FAR, {"customer": [""]})[0].calls == 30
    assert [(x.key, x.calls) for x in reader.latency(T0, FAR, {"customer": ["acme"]}, ["customer"])] == \
        [(("acme",), 60)]
    reader.close()


def test_sums_past_twenty_million_dollars_are_exact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    usd = "5000000.123456789012"  # per call below 2^63 pico; the sums pass $20M
    writer.submit([entry(i, T0 + i * DAY_NS, usd=usd) for i in range(5)]).result(10)
    writer.close()
    reader = open_reader(url, Config())
    for group_by in ([], ["model"]):
        [t] = reader.totals(T0, FAR, {}, group_by)
        assert t.cost_total_pico == 5 * sum(to_pico(v) for v in entry(0, T0, usd=usd).cost.by_type.values())
    reader.close()


def _raw(reader: LedgerReader, start: int, end: int, filters: dict[str, list[str]],
         group_by: list[str]) -> dict[tuple[str, ...], list[int]]:
    out: dict[tuple[str, ...], list[int]] = {}
    for _, key, sums in reader.source.aggregate("raw", start, end, filters, group_by, False):  # type: ignore[attr-defined]
        acc = out.setdefault(key, [0] * len(sums))
        for i, v in enumerate(sums):
            acc[i] += v
    return out


def test_field_rollups_answer_like_raw_rows_and_forget_erased_customers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = open_writer(url, Config())
    models = ["gpt-4o", "gpt-4o-mini", "claude"]
    writer.submit([entry(i, T0 + i * (DAY_NS // 37), model=models[i % 3], customer=["", "acme", "zeta", "x"][i % 4],
                         feature=["", "f1", "f2"][i % 3], status="ok" if i % 7 else "error") for i in range(700)]).result(30)
    late = [entry(10_000 + i, T0 + i * DAY_NS + 5, customer="zeta") for i in range(3)]  # into sealed days
    conn = open_write(tmp_path / "ledger.db", 5.0)
    while seal_days(conn, T0 + 30 * DAY_NS) < T0 + 19 * DAY_NS:
        pass
    conn.close()
    writer.submit(late).result(10)
    writer.close()
    reader = open_reader(url, Config())
    assert reader.source._conn.execute("SELECT COUNT(*) FROM rollup_field_day").fetchone()[0] > 0  # type: ignore[attr-defined]
    start, end = T0 + DAY_NS // 3, T0 + 17 * DAY_NS + 5
    cases: list[tuple[dict[str, list[str]], list[str]]] = [
        ({}, []), ({}, ["model"]), ({}, ["customer"]), ({"customer": ["zeta", "acme"]}, []),
        ({"customer": ["zeta"]}, ["customer"]), ({"model": ["claude"], "status": ["error"]}, ["model", "status"]),
        ({}, ["feature"]), ({"customer": [""]}, ["customer"]), ({"customer": ["acme"]}, ["model"])]
    for filters, group_by in cases:
        got = {t.key: t for t in reader.totals(start, end, filters, group_by)}
        want = _raw(reader, start, end, filters, group_by)
        if not group_by and not want:
            want = {(): [0] * 20}
        assert set(got) == set(want), (filters, group_by)
        for key, sums in want.items():
            t = got[key]
            assert (t.calls, t.errors, t.cost_total_pico, t.tokens_total) == \
                (sums[0], sums[1], sum(sums[10:16]), sum(sums[5:10])), (filters, group_by, key)
    reader.close()
    forget(url, Config(), customer="zeta")
    reader = open_reader(url, Config())
    by_customer = {t.key: t.calls for t in reader.totals(start, end, {}, ["customer"])}
    assert ("zeta",) not in by_customer
    assert by_customer == {k: v[0] for k, v in _raw(reader, start, end, {}, ["customer"]).items()}
    reader.close()
