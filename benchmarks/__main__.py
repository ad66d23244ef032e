"""Run the benchmarks named on the command line, or all of the light ones.

    python -m benchmarks [NAME ...] [--option ...]

Options after the names go to the one benchmark named (e.g. `python -m benchmarks reports --sizes
10M:100k`). `reports` fills ledgers of millions of calls: it runs only when named.
"""

from __future__ import annotations

import importlib
import inspect
import sys

BENCHMARKS = {
    "processor": "benchmarks.bench_processor",
    "exposition": "benchmarks.bench_exposition",
    "receiver": "benchmarks.bench_receiver",
    "stages": "benchmarks.stages",
    "reports": "benchmarks.bench_reports",
    "insights": "benchmarks.bench_insights",
}
BY_NAME_ONLY = {"reports"}


def main(argv: list[str]) -> int:
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = argv[:split], argv[split:]
    names = names or [name for name in BENCHMARKS if name not in BY_NAME_ONLY]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    if options and len(names) != 1:
        print("options go to one benchmark: name exactly one", file=sys.stderr)
        return 2
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ModuleNotFoundError as exc:
            print(f"\n== {name}: not available ({exc})")
            continue
        if inspect.signature(module.main).parameters:
            module.main(options)
        elif options:
            print(f"{name} takes no options", file=sys.stderr)
            return 2
        else:
            module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
