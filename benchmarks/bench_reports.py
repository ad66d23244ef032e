"""Reports at scale: every question answered by genai-meter and by the engines, same files, same run.

    python -m benchmarks reports [--dir DIR] [--sizes 1M:10k,1M:100k,10M:10k,10M:100k]
                                 [--engines genai,api,sql,proto,duckdb,chdb] [--questions a,b] [--repeat N]

Data sets (`reports_data`): N calls over 90 days, C customers with Zipf-like sizes, cached under
`--dir` (or $BENCH_DIR) and reused; generation time is printed once. Per data set and question, each
engine answers in a child process of its own (time of the answer alone; peak RSS of the child from
/proc VmHWM, and the part of it the answer added over the child's RSS after setup), best of
`--repeat` children:

  genai   the real `LedgerReader` (open_reader), top-k cut in Python where asked
  api     the report service's endpoint through the Flask app (JSON / CSV read back; a CSV export is
          timed by the service's own work, the benchmark's check parsing it back left out)
  sql     the best plain SQL on the raw calls of the same SQLite file: the reference
  proto   the SQLite read path prototype: per-field rollups, grouping and top-k in SQLite
  duckdb  DuckDB over a Parquet copy of the ledger (written by chdb from the SQLite file)
  chdb    chdb (ClickHouse) over the same Parquet copy

Every answer is compared to the reference to the last digit (calls, failures, tokens, cost in
10^-12 USD, per group), and every grouped answer must add up to the ungrouped total of its range.
genai-meter's and the service's answers to exports and top-k are compared the same way: a missing
remainder or a capped table shows as a mismatch, with the table's note.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.reports_data import NOW_NS, ensure, ensure_parquet
from benchmarks.reports_questions import BY_NAME, QUESTIONS, Question, total_of

ENGINES = ("genai", "api", "sql", "proto", "duckdb", "chdb")
REFERENCE = "sql"
CHILD_TIMEOUT_S = 1200
PYTHON_AS_LIMIT = 8 << 30  # genai/api children: a runaway answer fails instead of taking the machine


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def child(directory: Path, name: str, engine: str) -> None:
    """Answer one question with one engine; print one JSON line (seconds, RSS, answer)."""
    from benchmarks import reports_columnar, reports_ledger, reports_sqlite, reports_topk

    q = BY_NAME[name]
    db = directory / "ledger.db"
    scratch = directory / "scratch"
    scratch.mkdir(exist_ok=True)
    client = reports_ledger.service(directory) if engine == "api" else None
    if engine == "duckdb":
        import duckdb  # noqa: F401  (loaded before the clock starts, like a running service)
    if engine == "chdb":
        import chdb  # noqa: F401
    base = _status_kib("VmRSS")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if engine == "genai":
        answer = reports_ledger.answer_reader(directory, q, NOW_NS)
    elif engine == "api":
        answer = reports_ledger.answer_service(client, q)
    elif engine == "sql":
        answer = reports_sqlite.answer_plain(db, q, NOW_NS)
    elif engine == "proto" and q.group == "day_customer":
        answer = reports_topk.answer_per_day(db, q, NOW_NS)
    elif engine == "proto":
        answer = reports_sqlite.answer_proto(db, q, NOW_NS)
    elif engine == "duckdb":
        answer = reports_columnar.answer_duckdb(directory / "parquet", q, NOW_NS, scratch)
    else:
        answer = reports_columnar.answer_chdb(directory / "parquet", q, NOW_NS, scratch)
    seconds = time.perf_counter() - t0
    extra: dict[str, object] = {"cpu_s": time.process_time() - cpu0}  # all threads: DuckDB and chdb use two
    if engine == REFERENCE and "groups" in answer and q.group:  # the ungrouped total of the same range
        whole = Question("total", "", q.days, customer=q.customer)
        extra["total"] = reports_sqlite.answer_plain(db, whole, NOW_NS)["groups"][""]  # type: ignore[index]
    print(json.dumps({"seconds": seconds, "base_kib": base, "peak_kib": _status_kib("VmHWM"),
                      "answer": answer, **extra}))


def run_child(directory: Path, q: Question, engine: str, timeout_s: float = CHILD_TIMEOUT_S) -> dict[str, object]:
    def limit() -> None:
        if engine in ("genai", "api"):
            resource.setrlimit(resource.RLIMIT_AS, (PYTHON_AS_LIMIT, PYTHON_AS_LIMIT))

    cmd = [sys.executable, "-m", "benchmarks.bench_reports", "--child", str(directory), q.name, engine]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout_s:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed: {last[:160]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _same(a: list[int | None], b: list[int]) -> bool:
    return all(x is None or x == y for x, y in zip(a, b))


def check(q: Question, result: dict[str, object], reference: dict[str, object]) -> str:
    """'ok', or what differs from the reference (to the last digit), or what does not add up."""
    answer, ref = result.get("answer"), reference.get("answer")
    if not isinstance(answer, dict) or not isinstance(ref, dict):
        return str(result.get("error") or (answer or {}).get("error", "no answer"))
    if "error" in answer:
        return str(answer["error"])
    if q.export:
        keys = ("rows", "calls", "cost")
        diff = [f"{k} {answer.get(k)} != {ref.get(k)}" for k in keys if answer.get(k) != ref.get(k)]
        return "; ".join(diff) or "ok"
    got, want = answer["groups"], ref["groups"]
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and not _same(got[k], want[k])]
    notes = f" (note: {answer['note']})" if answer.get("note") else ""
    if missing or extra or wrong:
        return f"{len(missing)} groups missing, {len(extra)} extra, {len(wrong)} differ{notes}"
    if "total" in reference and not _same(total_of(got), reference["total"]):  # type: ignore[arg-type]
        return f"groups do not add up to the total{notes}"
    return "ok"


def _fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def bench_size(root: Path, calls: int, customers: int, engines: list[str], questions: list[Question],
               repeat: int, timeout_s: float) -> list[dict[str, object]]:
    directory, took, fresh = ensure(root, calls, customers)
    from benchmarks.reports_sqlite import add_proto

    proto_s = add_proto(directory / "ledger.db") if "proto" in engines else 0.0
    parquet_s = ensure_parquet(directory)[1] if {"duckdb", "chdb"} & set(engines) else 0.0
    size_gb = (directory / "ledger.db").stat().st_size / 1e9
    print(f"\n== {calls:,} calls, {customers:,} customers ({directory}; ledger {size_gb:.1f} GB)")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in took.items())
    extra = (f"; proto tables {proto_s:.0f} s" if proto_s else "") \
        + (f"; parquet {parquet_s:.0f} s" if parquet_s else "")
    print(f"  generation {'now' if fresh else '(cached)'}: {steps}{extra}")
    print(f"  {'question':<28} {'engine':<7} {'time':>9} {'x sql':>7} {'CPU':>9} {'peak RSS':>9} {'+answer':>8} "
          f"{'rows/s':>9}  check")
    results = []
    for q in questions:
        runs: dict[str, dict[str, object]] = {}
        for engine in [REFERENCE] + [e for e in engines if e != REFERENCE]:
            if engine == "api" and not q.api:
                continue
            best: dict[str, object] = {}
            for _ in range(repeat):
                got = run_child(directory, q, engine, CHILD_TIMEOUT_S if engine == REFERENCE else timeout_s)
                if "error" in got or not best or float(got["seconds"]) < float(best["seconds"]):  # type: ignore[arg-type]
                    best = got
                if "error" in got:
                    break
            runs[engine] = best
        ref_s = float(runs[REFERENCE].get("seconds", 0) or 0)  # type: ignore[arg-type]
        for engine, r in runs.items():
            verdict = check(q, r, runs[REFERENCE])
            row = {"calls": calls, "customers": customers, "question": q.name, "engine": engine, "check": verdict}
            if "seconds" in r:
                answer = r["answer"] if isinstance(r["answer"], dict) else {}
                s = float(answer.get("served_s") or r["seconds"])  # type: ignore[arg-type]
                rows = int(answer.get("rows", 0) or 0)
                row.update(seconds=s, cpu_s=r.get("cpu_s"), peak_mib=int(r["peak_kib"]) / 1024,  # type: ignore[call-overload]
                           answer_mib=(int(r["peak_kib"]) - int(r["base_kib"])) / 1024,  # type: ignore[call-overload]
                           rows_per_s=rows / s if rows and s else None)
                rate = f"{rows / s:,.0f}" if rows and s else ""
                cpu = _fmt_s(float(r["cpu_s"])) if r.get("cpu_s") is not None else "-"  # type: ignore[arg-type]
                print(f"  {q.name:<28} {engine:<7} {_fmt_s(s):>9} {s / ref_s if ref_s else 0:>6.2f}x {cpu:>9} "
                      f"{row['peak_mib']:>6.0f} MiB {row['answer_mib']:>5.0f} MiB {rate:>9}  {verdict}")
            else:
                print(f"  {q.name:<28} {engine:<7} {'-':>9} {'':>7} {'':>9} {'':>9} {'':>8} {'':>9}  {verdict}")
            results.append(row)
    return results


def markdown(results: list[dict[str, object]]) -> str:
    """The figures as a Markdown table: per question and data set, each engine's time (rows/s for
    exports), its ratio to the reference, and a mark where the answer was not exact or complete."""
    engines = [e for e in ENGINES if any(r["engine"] == e for r in results)]
    lines = ["| question | calls / customers | " + " | ".join(engines) + " |", "|---|---|" + "---|" * len(engines)]
    cells: dict[tuple[object, object, object], dict[str, str]] = {}
    for r in results:
        key = (r["question"], r["calls"], r["customers"])
        if "seconds" not in r:
            text = "**none** (" + str(r["check"])[:40] + ")"
        else:
            s = float(r["seconds"])  # type: ignore[arg-type]
            ref = next(float(x["seconds"]) for x in results  # type: ignore[arg-type]
                       if (x["question"], x["calls"], x["customers"]) == key and x["engine"] == REFERENCE)
            rate = f", {float(r['rows_per_s']) / 1000:.0f}k rows/s" if r.get("rows_per_s") else ""  # type: ignore[arg-type]
            text = f"{_fmt_s(s)}{rate} ({s / ref:.2f}x)" if r["engine"] != REFERENCE else f"{_fmt_s(s)}{rate}"
            if r["check"] != "ok":
                text += " **wrong/incomplete**"
        cells.setdefault(key, {})[str(r["engine"])] = text
    for (question, calls, customers), row in cells.items():
        size = f"{int(calls) / 1e6:g}M / {int(customers) // 1000}k"  # type: ignore[call-overload]
        lines.append(f"| {question} | {size} | " + " | ".join(row.get(e, "") for e in engines) + " |")
    peak: dict[tuple[object, object], dict[str, float]] = {}
    for r in results:
        if "answer_mib" in r:
            at = peak.setdefault((r["calls"], r["customers"]), {})
            at[str(r["engine"])] = max(at.get(str(r["engine"]), 0.0), float(r["answer_mib"]))  # type: ignore[arg-type]
    for (calls, customers), row in peak.items():
        size = f"{int(calls) / 1e6:g}M / {int(customers) // 1000}k"  # type: ignore[call-overload]
        lines.append(f"| largest RSS added by one answer | {size} | "
                     + " | ".join(f"{row[e]:.0f} MiB" if e in row else "" for e in engines) + " |")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    def num(t: str) -> int:
        t = t.strip().lower()
        mult = {"k": 1000, "m": 1_000_000}.get(t[-1], 1)
        return int(float(t.rstrip("km")) * mult)

    calls, customers = text.split(":")
    return num(calls), num(customers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "benchdata")))
    parser.add_argument("--sizes", default="1M:10k,1M:100k", help="calls:customers, comma-separated")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--questions", default=",".join(q.name for q in QUESTIONS))
    parser.add_argument("--repeat", type=int, default=1, help="children per answer; the fastest counts")
    parser.add_argument("--timeout", type=float, default=CHILD_TIMEOUT_S,
                        help="seconds an answer may take (the reference always gets %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--markdown", type=Path, nargs="+", default=None,
                        help="only print the Markdown table of these --json files")
    parser.add_argument("--child", nargs=3, metavar=("DIR", "QUESTION", "ENGINE"), help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        child(Path(ns.child[0]), ns.child[1], ns.child[2])
        return
    if ns.markdown:
        print(markdown([r for path in ns.markdown for r in json.loads(path.read_text())]))
        return
    engines = [e for e in ns.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    questions = [BY_NAME[n] for n in ns.questions.split(",") if n]
    results = []
    for text in ns.sizes.split(","):
        calls, customers = _size(text)
        results += bench_size(ns.dir, calls, customers, engines, questions, ns.repeat, ns.timeout)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=1))
    print("\n" + markdown(results))


if __name__ == "__main__":
    main()
