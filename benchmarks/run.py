"""Run every benchmark in this folder, one after another, each in a process of its own.

    python benchmarks/run.py [--rows N] [--backends sqlite,postgresql] [...]

Options are passed to every ``bench_*.py`` unchanged. Each prints its table and saves
``benchmarks/results/<name>.json`` and ``.txt``. A process each, so that one
benchmark's memory, caches and connections never colour the next one's figures.
Exits non-zero when any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(arguments: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"== {script.name} {' '.join(arguments)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *arguments])
        print(f"== {script.name}: exit {code} after {time.perf_counter() - started:.0f} s\n")
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    print(f"{len(scripts)} benchmark(s) done; results in {HERE / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
