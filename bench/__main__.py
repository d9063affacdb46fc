"""`make bench` runs every benchmark, `make bench BENCH=name` one of them.

Each figure is printed as one JSON line: {"bench": ..., "metric": ..., "value": ..., "unit": ...}.
`python -m bench --repeat N name` (`make bench BENCH=name REPEAT=N`) runs each benchmark N times
and prints, per metric, the median value and each run's value (`"runs": [...]`; bench/_repeat.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

from bench._repeat import medians

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if not m.name.startswith("_")
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of runs")
    return value


def print_figure(name: str, figure: dict[str, Any]) -> None:
    print(json.dumps({"bench": name, **figure}), flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--repeat", type=positive, default=1, help="runs per benchmark; prints medians"
    )
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if args.repeat == 1:
            for figure in module.run():
                print_figure(name, figure)
            continue
        runs = []
        for index in range(args.repeat):
            runs.append(list(module.run()))
            print(f"bench {name}: run {index + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        for figure in medians(runs):
            print_figure(name, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
