"""`make bench` runs every benchmark, `make bench BENCH=name` one of them.

Each figure is printed as one JSON line: {"bench": ..., "metric": ..., "value": ..., "unit": ...}.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        for figure in module.run():
            print(json.dumps({"bench": name, **figure}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
