#!/usr/bin/env python3
"""Command-line start-up: wall time of short commands against ``python -c pass`` (issue #15).

Each command runs as a fresh ``python -m gateway`` process, as an operator's shell starts it;
rounds alternate the commands (so a burst of load on this shared machine hits all of them
alike) after one warm-up round (bytecode compiled, files in the page cache). Printed per
command: the median wall time, and that minus the median of ``python -c pass`` (the
interpreter's own start), which is what the gateway adds. Targets: ``--version`` and
``identify`` under 0.3 s over ``python -c pass``. ``run --help`` and ``send --help`` import
the command's module and stop: how long those commands take before they start working.
``check-config`` and ``status`` are for information (they read the configuration and so load
its validator, not pydicom; ``status`` also the spool, and may answer that there is none).

Usage: python bench/startup.py [--rounds 15] [--file SAMPLE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.samples import SAMPLES  # noqa: E402

CONFIG = ROOT / "etc" / "legacy-gateway.yaml"
TARGET = 0.3  # seconds over python -c pass
TARGETED = ("--version", "identify FILE")


def commands(sample: Path) -> dict[str, list[str]]:
    gw = [sys.executable, "-m", "gateway"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--version": [*gw, "--version"],
        "--help": [*gw, "--help"],
        "identify FILE": [*gw, "identify", str(sample)],
        "check-config": [*gw, "check-config", str(CONFIG)],
        "status": [*gw, "-c", str(CONFIG), "status"],
        "run --help": [*gw, "run", "--help"],
        "send --help": [*gw, "send", "--help"],
    }


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--file", type=Path, default=SAMPLES / "ge_genesis" / "E07733S002I009.MR",
                        help="the file identify names (default: a real Genesis sample)")
    args = parser.parse_args()
    runs = commands(args.file)
    times: dict[str, list[float]] = {name: [] for name in runs}
    print(f"before: {load()}")
    for argv in runs.values():  # warm-up: bytecode and page cache
        wall(argv)
    for _ in range(args.rounds):
        for name, argv in runs.items():
            times[name].append(wall(argv))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median s':>9} {'over pass':>10}  ({args.rounds} rounds)")
    for name, samples in times.items():
        median = statistics.median(samples)
        verdict = ""
        if name in TARGETED:
            verdict = "  ok" if median - base < TARGET else f"  OVER the {TARGET} s target"
        print(f"{name:<16} {median:9.3f} {median - base:10.3f}{verdict}")
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
