"""CPU per file of ``send``'s conversion (``files.read_capture`` and ``pipeline.prepare``: read,
decode, normalise, encode; not the staging write, which is I/O).

Each round times that over every file of FOLDER with ``time.process_time`` (after
a warm-up on the first 20 files) and the best round is printed with the load average, as the
machine is shared. With ``--against DIR`` (another checkout, e.g. the main worktree) the same
measurement runs in a child process per side, the sides alternating round by round, and the
ratio of the two best rounds is printed too: judge a change by that ratio, not by one number.

    python bench/prepare.py /work/sendtest/files [--rounds 5] [--against /work/main]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(folder: Path, rounds: int) -> float:
    """Best per-file CPU milliseconds over ``rounds`` rounds, in this process."""
    sys.path.insert(0, os.getcwd())
    from gateway.dicom.normalize import SiteRules
    from gateway.files import read_capture
    from gateway.pipeline import prepare

    def convert(path: Path) -> None:
        prepare(read_capture(path, "send"), SiteRules())  # raises DecodeError if it cannot

    files = sorted(p for p in folder.iterdir() if p.is_file())
    for path in files[:20]:
        convert(path)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for path in files:
            convert(path)
        best = min(best, (time.process_time() - start) / len(files) * 1000)
    return best


def _child(checkout: Path, folder: Path) -> float:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "prepare.py"), str(folder), "--rounds", "1",
                          "--bare"], cwd=checkout, check=True, capture_output=True, text=True).stdout
    return float(out.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout to compare with, round by round")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # a child: the number only
    args = parser.parse_args()
    if args.bare:
        print(measure(args.folder, args.rounds))
        return
    if args.against is None:
        print(f"{measure(args.folder, args.rounds):.3f} ms/file  load {os.getloadavg()[0]:.2f}")
        return
    ours, theirs = [], []
    for turn in range(args.rounds):
        sides = [(ROOT, ours), (args.against, theirs)]
        for checkout, results in sides if turn % 2 == 0 else reversed(sides):
            results.append(_child(checkout, args.folder.resolve()))
        print(f"round {turn + 1}: this {ours[-1]:.3f} ms/file, {args.against} {theirs[-1]:.3f} ms/file, "
              f"load {os.getloadavg()[0]:.2f}")
    print(f"best: this {min(ours):.3f}, {args.against} {min(theirs):.3f} ms/file, "
          f"ratio {min(ours) / min(theirs):.2f}")


if __name__ == "__main__":
    main()
