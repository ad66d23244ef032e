"""The per-call CSV from raw ledger columns (`render.call_csv`) is byte for byte the CSV formatted cell by cell
from each `CallRow` (call_csv_reference), for every kind of call, on SQLite and ClickHouse (chdb), through the
reader and through the service (filters, scopes, cursors, `bom=1`, the detailed report's `rows=calls`); the C
formatter and the pure reference alike."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_meter.config import Config
from genai_meter.contract import UNMETERED_CACHE_UNKNOWN, UNMETERED_NO_USAGE
from genai_meter.ledger import open_reader, open_writer
from genai_meter.ledger.model import Entry, LedgerReader
from genai_meter.records import Cost, LLMCall, TokenCounts
from genai_meter.reports.render import call_csv
from genai_meter.reports.render.call_csv import CallCsv, format_rows_pure
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.ranges import parse_time
from genai_meter.reports.service.readers import PerThreadReader
from genai_meter.reports.views.activity import call_lines
from tests.ledger.support import T0  # 2026-01-01T00:00:00Z, where the chdb harness seals its rollups
from tests.reports.conftest import ACME_TOKEN, auth, make_config
from tests.reports.render.call_csv_reference import reference_bytes

NS = 10**9
NOW_NS = T0 + 10 * 86400 * NS
SPAN = 3 * 86400 * NS
ODD = ['=HYPERLINK("http://x/?a="&A1)', "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1", "\n=1", "a,b", 'say "hi"',
       "line\nbreak", "-7.5", "+3", "", "zürich ☃", "plain", "x\r\ny", "-", "1e5", "'quoted"]
UNITS = ["input_audio_tokens", "output_image_tokens", "web_searches", "custom.pages", "custom.=evil,name"]
TIERS = ["", "default", "flex", "priority", "=tier"]
FORMATS: list[tuple[str, Callable[..., bytes]]] = [("pure", format_rows_pure)]
if call_csv._call_csv is not None:
    FORMATS.append(("c", call_csv._call_csv.format_rows))


def _cost(rnd: random.Random, entry: str) -> Cost:
    by = {c: Decimal(rnd.choice([0, 0, rnd.randrange(10**12), rnd.randrange(10**15)])) / 10**12
          for c in ("input", "cache_read", "cache_write", "output", "reasoning", "request")}
    return Cost(by_type=by, price_source="genai-prices", price_version="0.0.1", price_entry=entry,
                unit_prices={"input": Decimal("2.5"), "output": Decimal("10")})


def entries(seed: int = 11, n: int = 2600) -> list[Entry]:
    """Priced, unpriced, invalid, unmetered (both kinds), partly priced, estimated calls; billed units, tiers,
    batch; dimensions set or not; labels, conversations, users and unit names that need neutralising or quoting;
    end times on whole seconds, with trailing zeros and at full nanoseconds; durations from 0 to a day."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        odd = rnd.random() < 0.3
        pick: Callable[[list[str]], str] = rnd.choice
        end = T0 + rnd.randrange(SPAN)
        end -= end % rnd.choice([1, 1000, 10**6, NS])
        dims = {k: (pick(ODD) if odd else pick(["acme", "zeta", "x"])) for k in ("customer", "feature", "organization")
                if rnd.random() < 0.8}
        if rnd.random() < 0.5:
            dims["organization"] = pick(["acme", "globex"])
        tokens = TokenCounts(*(rnd.choice([0, rnd.randrange(5000), rnd.randrange(10**9)]) for _ in range(5)))
        call = LLMCall(service=pick(ODD) if odd else "svc", environment=pick(["prod", "dev"]),
                       provider=pick(["openai", "anthropic"]), model=pick(ODD) if odd else pick(["gpt-4o", "o3"]),
                       operation="chat", status=pick(["ok", "ok", "error"]), error_type=pick(["", "timeout", "=err"]),
                       duration_s=rnd.choice([0.0, 86400.0, rnd.randrange(10**10) / 10**6, rnd.random()]),
                       ttft_s=None, tokens=tokens, end_ns=end, dimensions=dims,
                       request_model=pick(ODD) if odd else "gpt-4o",
                       trace_id=hashlib.md5(f"t{seed}-{i}".encode()).digest(),
                       span_id=hashlib.md5(f"s{seed}-{i}".encode()).digest()[:8],
                       conversation_id=pick(ODD) if odd else pick(["", "conv-1", f"conv-{i}"]),
                       user_id=pick(ODD) if odd else pick(["", "alice"]),
                       unmetered=pick(["", "", "", UNMETERED_NO_USAGE, UNMETERED_CACHE_UNKNOWN]),
                       service_tier=pick(TIERS), batch=rnd.random() < 0.2)
        kind = rnd.random()
        if kind < 0.08:
            call.invalid = "negative token count"
            out.append(Entry(call, None))
            continue
        if kind < 0.16:
            out.append(Entry(call, None))  # no price matched
            continue
        cost = _cost(rnd, pick(["openai/gpt-4o", "anthropic/claude@2026-01-01", "=entry,with \"quotes\""]))
        if rnd.random() < 0.4:
            names = rnd.sample(UNITS, rnd.randrange(1, 4))
            call.units = {name: rnd.randrange(1, 10**6) for name in names}
            cost.unit_pico = {name: rnd.randrange(10**13) for name in names if not name.startswith("custom.")}
            if any(name.startswith("custom.") for name in names):
                cost.unpriced_units = tuple(sorted(name for name in names if name.startswith("custom.")))
        if call.service_tier == "priority" and rnd.random() < 0.5:
            cost.unpriced_units = ("tier:priority", *cost.unpriced_units)
        if rnd.random() < 0.1:
            call.estimate = "audio split assumed"
        out.append(Entry(call, cost))
    return out


ENTRIES = entries()


def _config(tmp: Path) -> Config:
    return make_config(tmp)  # dimensions customer, feature, organization; tokens ADMIN and ACME (organization acme)


@pytest.fixture(scope="module")
def sqlite_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, LedgerReader]]:
    tmp = tmp_path_factory.mktemp("calls-csv")
    config = _config(tmp)
    assert config.ledger.url is not None
    writer = open_writer(config.ledger.url, config)
    for i in range(0, len(ENTRIES), 500):
        writer.submit(ENTRIES[i:i + 500]).result(60)
    writer.close()
    reader = open_reader(config.ledger.url, config)
    yield config, reader
    reader.close()


def _new_bytes(reader: LedgerReader, filters: dict[str, list[str]], start: int | None, end: int | None,
               cursor: str = "", fmt: Callable[..., bytes] | None = None, page: int = 5000) -> bytes:
    formatter = CallCsv(reader.fields(), fmt)
    chunks = [(",".join(formatter.header) + "\r\n").encode()]
    while True:
        records = reader.call_records(filters, start_ns=start, end_ns=end, cursor=cursor, limit=page)
        chunks.append(formatter.lines(records))
        if not records.next_cursor:
            return b"".join(chunks)
        cursor = records.next_cursor


@pytest.mark.parametrize("name,fmt", FORMATS)
def test_every_kind_of_call_formats_as_the_rows_did(sqlite_ledger: tuple[Config, LedgerReader], name: str,
                                                    fmt: Callable[..., bytes]) -> None:
    _, reader = sqlite_ledger
    want = reference_bytes(reader, {}, None, None)
    assert want.count(b"\r\n") > len(ENTRIES)  # every call, some with line breaks inside quoted cells
    for page in (5000, 777, 2):
        assert _new_bytes(reader, {}, None, None, fmt=fmt, page=page) == want
    for kind in (b",incomplete,", b",partial,", b",upper_bound,", b",exact,", b"'=HYPERLINK", b'"a,b"',
                 "zürich".encode(), b'"\'=entry,with ""quotes"""', b"custom.pages="):
        assert kind in want, kind
    window = (T0 + 86400 * NS, T0 + 2 * 86400 * NS)
    for filters in ({}, {"organization": ["acme"]}, {"customer": ["", "zeta"]}, {"model": ["o3"], "status": ["error"]},
                    {"conversation": ["conv-1"]}, {"user": ["alice"]}, {"service_tier": ["flex"]}, {"batch": ["true"]}):
        assert _new_bytes(reader, filters, *window, fmt=fmt, page=333) == reference_bytes(reader, filters, *window)


def test_the_c_formatter_knows_the_contract_words() -> None:
    if call_csv._call_csv is None:
        pytest.skip("the C formatter is not built")
    assert (call_csv._call_csv.NO_USAGE, call_csv._call_csv.CACHE_UNKNOWN) == (UNMETERED_NO_USAGE,
                                                                               UNMETERED_CACHE_UNKNOWN)


def test_the_service_answers_the_same_bytes(sqlite_ledger: tuple[Config, LedgerReader]) -> None:
    config, reader = sqlite_ledger
    assert config.ledger.url is not None
    url = config.ledger.url
    per_thread = PerThreadReader(lambda: open_reader(url, config))  # the service's own reader
    client = create_app(config, per_thread, clock=lambda: NOW_NS).test_client()
    admin = auth()
    frm, to = "2026-01-01T12:00:00Z", "2026-01-03T18:00:00Z"
    start, end = parse_time("from", frm), parse_time("to", to)
    cases = [(f"/api/v1/events?format=csv&from={frm}&to={to}", admin, {}, (start, end)),
             (f"/api/v1/events?format=csv&from={frm}&to={to}&bom=1", admin, {}, (start, end)),
             (f"/api/v1/events?format=csv&from={frm}&to={to}&customer=zeta&model=o3", admin,
              {"customer": ["zeta"], "model": ["o3"]}, (start, end)),
             (f"/api/v1/events?format=csv&from={frm}&to={to}", auth(ACME_TOKEN),
              {"organization": ["acme"]}, (start, end)),
             (f"/api/v1/reports/detailed?format=csv&rows=calls&from={frm}&to={to}", admin, {}, (start, end)),
             ("/api/v1/events?format=csv", admin, {}, (None, NOW_NS + 86400 * NS))]
    for url, headers, filters, (a, b) in cases:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:300])
        body = response.get_data()
        want = reference_bytes(reader, filters, a, b)
        if "bom=1" in url:
            assert body.startswith("\ufeff".encode())
            body = body[3:]
        assert body == want, url
    page = reader.events({}, start_ns=start, end_ns=end, limit=100)
    url = f"/api/v1/events?format=csv&from={frm}&to={to}&cursor={page.next_cursor}"
    assert client.get(url, headers=admin).get_data() == reference_bytes(reader, {}, start, end, page.next_cursor)


def test_the_clickhouse_backend_formats_the_same_bytes(tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    from tests.ledger.chdb_harness import filled_chdb_reader  # chdb loads only where this test runs

    config = _config(tmp_path)
    reader = filled_chdb_reader(tmp_path, config, ENTRIES[:900])
    try:
        want = reference_bytes(reader, {}, None, None)
        assert want.count(b"\r\n") > 900
        for _, fmt in FORMATS:
            assert _new_bytes(reader, {}, None, None, fmt=fmt, page=250) == want
            assert _new_bytes(reader, {"organization": ["acme"]}, T0, T0 + 86400 * NS, fmt=fmt) == \
                reference_bytes(reader, {"organization": ["acme"]}, T0, T0 + 86400 * NS)
        assert b"".join(x if isinstance(x, bytes) else x.encode() for x in call_lines(reader, {}, None, None)) == want
    finally:
        reader.close()


TEXT = st.one_of(st.sampled_from(ODD), st.text(max_size=12))
INT64 = st.integers(-2**63, 2**63 - 1)


@st.composite
def generated_rows(draw: st.DrawFn) -> tuple[list[tuple[object, ...]], dict[tuple[object, ...], tuple[object, ...]]]:
    """Rows of RECORD_COLUMNS with any 64-bit numbers and any text, and rendered units for some of them."""
    rows, units = [], {}
    for _ in range(draw(st.integers(0, 6))):
        row = (draw(INT64), draw(st.binary(max_size=16)), draw(st.binary(max_size=8)), draw(st.integers(0, 3)),
               draw(TEXT), draw(TEXT), draw(st.one_of(st.integers(0, 86_400_000_000), INT64)),
               *draw(st.lists(INT64, min_size=11, max_size=11)), draw(st.integers(0, 2)), draw(st.integers(0, 1)),
               draw(st.sampled_from(["", UNMETERED_NO_USAGE, UNMETERED_CACHE_UNKNOWN, "other"])),
               draw(st.sampled_from(["", "negative"])))
        rows.append(row)
        if draw(st.booleans()):
            units[row[:3]] = (draw(TEXT), draw(INT64), draw(TEXT), draw(st.booleans()))
    return rows, units


def run_format(fmt: Callable[..., bytes], rows: list[tuple[object, ...]],
               units: dict[tuple[object, ...], tuple[object, ...]]) -> bytes | str:
    """The bytes `fmt` formats (label set i: labels from ODD, dimensions, tier, batch), or the exception's type."""
    def label_miss(i: int) -> tuple[str, str, str]:
        dims = {"customer": ODD[i], "service_tier": ODD[-i], "batch": "true" if i % 2 else ""}
        return call_csv.label_cells(tuple(ODD[i:i + 8]), dims, ["customer", "feature"])

    try:
        return fmt(rows, {}, {}, units, label_miss, lambda p: call_csv.csv_field(ODD[p]), call_csv.csv_field)
    except (TypeError, OverflowError, ValueError) as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(generated_rows())
def test_generated_rows_format_alike(case: tuple[list[tuple[object, ...]], dict[tuple[object, ...],
                                                                                tuple[object, ...]]]) -> None:
    if call_csv._call_csv is None:
        pytest.skip("the C formatter is not built")
    rows, units = case
    want = run_format(format_rows_pure, rows, units)
    got = run_format(call_csv._call_csv.format_rows, rows, units)
    assert got == want or (isinstance(got, str) and got in ("TypeError", "OverflowError"))


DIM_KEYS = st.sampled_from(["customer", "feature", "service_tier", "batch", "organization", "cüstomer", ""])
DIM_VALUES = st.one_of(TEXT, st.sampled_from(["true", "false", "😀", "a\x00b", "\x7f", "€\u2028"]))
SEPARATORS = [(",", ":"), (", ", ": "), (" ,\t", "\n:\r ")]


@st.composite
def dimension_texts(draw: st.DrawFn) -> str:
    """A label set's dimensions as JSON: as any ledger writes it (separators, ASCII or not, key order, repeated
    keys), and texts json.loads reads otherwise or refuses (non-string values, escapes, surrogates, junk)."""
    dims = draw(st.dictionaries(DIM_KEYS, DIM_VALUES, max_size=5))
    item, colon = draw(st.sampled_from(SEPARATORS))
    ascii_only = draw(st.booleans())
    members = [json.dumps(k, ensure_ascii=ascii_only) + colon + json.dumps(v, ensure_ascii=ascii_only)
               for k, v in dims.items()]
    members += draw(st.lists(st.sampled_from(ODD_MEMBERS), max_size=2))
    members = draw(st.permutations(members))
    text = draw(st.sampled_from(["", " ", "\n"])) + "{" + item.join(members) + "}" + draw(st.sampled_from(["", " \r\n"]))
    if draw(st.booleans()):
        return text
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + draw(st.sampled_from(["", '"', "\\", "\\u12", ",", "}", "x", "\x01", "{}"])) + text[cut:]


ODD_MEMBERS = ['"customer":"\\ud83d\\ude00"', '"customer":"\\ud83d"', '"feature":"\\udc00x"', '"batch":"tr\\u0075e"',
               '"service_tier":"\\"\\/\\b\\f\\n\\r\\t\\\\"', '"cu\\u0073tomer":"escaped key"', '"customer":1',
               '"feature":null', '"batch":true', '"customer":["a"]', '"organization":{"a":"b"}', '"c\\ud800":"x"',
               '"feature":"\\u00e9\\u20AC"', '"customer":"\\x41"', '"feature":"tab\there"']


def _label_row(labels: list[str], text: str) -> tuple[object, ...]:
    return (7, *(labels + ODD)[:8], text)


def _rendered(render: Callable[[], object]) -> object:
    try:
        return render()
    except (ValueError, TypeError, UnicodeError) as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=8), dimension_texts())
def test_label_rows_render_alike(labels: list[str], text: str) -> None:
    if call_csv._call_csv is None:
        pytest.skip("the C formatter is not built")
    row, dimensions = _label_row(labels, text), ["customer", "feature"]
    want = _rendered(lambda: call_csv.label_row_cells(row, dimensions))
    (got,) = call_csv._call_csv.label_rows([row], dimensions, call_csv.csv_field)
    if got is None:  # left to json.loads: only a text it reads otherwise than a flat object of strings
        members = _rendered(lambda: json.loads(text, object_pairs_hook=list))  # [] for "{}"
        assert not (isinstance(members, list) and text.strip()[:1] == "{" and all(
            isinstance(v, str) and _utf8(k) and _utf8(v) for k, v in members)), text
    else:
        assert got == want, text
    assert _rendered(lambda: call_csv.label_rows_c([row], dimensions)) == \
        _rendered(lambda: call_csv.label_rows_pure([row], dimensions))


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def test_label_rows_take_what_the_ledgers_write() -> None:
    if call_csv._call_csv is None:
        pytest.skip("the C formatter is not built")
    dims = {"customer": "zürich ☃", "feature": '=say "hi", 😀', "service_tier": "flex", "batch": "true"}
    rows = [(i, *ODD[i:i + 8], json.dumps(dims, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only))
            for i, ascii_only in enumerate([True, False])]
    got = call_csv._call_csv.label_rows(rows, ["customer", "feature", "organization"], call_csv.csv_field)
    want = [call_csv.label_row_cells(row, ["customer", "feature", "organization"]) for row in rows]
    assert got == want and want[0][1:] == (',zürich ☃,"\'=say ""hi"", 😀",', "flex,1")
    with pytest.raises(TypeError):
        call_csv._call_csv.label_rows([(1, "a", "b")], ["customer"], call_csv.csv_field)
    with pytest.raises(TypeError):
        call_csv._call_csv.label_rows([(1, *ODD[:7], 5, "{}")], ["customer"], call_csv.csv_field)


def test_an_export_past_the_label_set_bound_never_loads_the_whole_dictionary(
        sqlite_ledger: tuple[Config, LedgerReader], monkeypatch: pytest.MonkeyPatch) -> None:
    config, reader = sqlite_ledger
    assert config.ledger.url is not None
    monkeypatch.setattr(call_csv, "CACHED_LABEL_SETS", 5)  # far fewer than a page's label sets
    read: list[int] = []
    fresh = open_reader(config.ledger.url, config)
    source = fresh.source  # type: ignore[attr-defined]
    label_rows = source._label_rows
    monkeypatch.setattr(source, "_label_rows", lambda ids: read.append(len(ids)) or label_rows(ids))
    try:
        assert _new_bytes(fresh, {}, None, None, page=300) == reference_bytes(reader, {}, None, None)
        assert source._labelsets == {} and read and max(read) <= 300  # one page's at a time, never all
    finally:
        fresh.close()
