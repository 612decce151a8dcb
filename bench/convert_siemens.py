"""Conversion throughput of the Siemens / ACR-NEMA formats against the I/O floor, same run.

The same shape as the GE helper's ``bench/convert.py`` (not on a branch we can merge yet):
for each entry, N copies of one file are written to a temporary folder. The *floor* reads
every copy's bytes and writes an already finished dataset with pydicom (what any converter
must at least do); the *conversion* reads, identifies, decodes, normalises and writes each
copy, in this one process. Printed: images/s for both and their ratio (target: at most 2x).
When ``bench/convert.py`` lands, these entries belong in its ``ENTRIES``.

    python bench/convert_siemens.py [--copies 200] [--only NAME] [--repeat 3] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import decoders  # noqa: E402
from gateway.normalize import SiteRules, normalize  # noqa: E402

SAMPLES = next((p / "shared" / "samples" for p in Path(__file__).resolve().parents
                if (p / "shared" / "samples").is_dir()), Path("shared/samples"))


@dataclass(frozen=True)
class Entry:
    name: str
    source: Callable[[], bytes]
    target_ratio: float | None = 2.0


def _sample(relative: str) -> Callable[[], bytes]:
    return lambda: (SAMPLES / relative).read_bytes()


def _simulated(fmt: str, **options) -> Callable[[], bytes]:
    def make() -> bytes:
        from gateway.simulate import SimOptions, generate

        extra = options.pop("extra", {})
        return next(iter(generate(fmt, 1, SimOptions(extra=extra, **options), seed=1))).data

    return make


ENTRIES = [
    Entry("acr-nema CT 512x512 (CT-MONO2-12-lomb-an2)", _sample("acr_nema/CT-MONO2-12-lomb-an2.acr")),
    Entry("siemens-spi MR 256x256 (mr.001)", _sample("siemens_spi_acrnema/mr.001")),
    Entry("acr-nema 512 little (simulated)", _simulated("acrnema", byte_order="little", extra={"size": 512})),
    Entry("acr-nema 512 big (simulated)", _simulated("acrnema", byte_order="big", extra={"size": 512})),
    Entry("acr-nema 512 badbig (simulated)", _simulated("acrnema", byte_order="badbig", extra={"size": 512})),
    Entry("acr-nema 512 big, packed 12-bit (simulated)", _simulated("acrnema", byte_order="big", variant="packed12", extra={"size": 512})),
    Entry("spi 256 big (simulated)", _simulated("spi", byte_order="big", extra={"size": 256})),
    Entry("somatom-plus 512 (simulated)", _simulated("somatom-plus", extra={"size": 512})),
    Entry("vision-ima 256 (simulated)", _simulated("vision-ima", extra={"size": 256})),
]


def _convert(path: Path, out: Path, rules: SiteRules) -> None:
    data = path.read_bytes()
    ds = normalize(decoders.decode(data), rules, origin=str(path))
    ds.save_as(out / f"{path.name}.dcm", enforce_file_format=True)


def _floor(path: Path, out: Path, finished) -> None:
    path.read_bytes()
    finished.save_as(out / f"{path.name}.dcm", enforce_file_format=True)


def run_entry(entry: Entry, copies: int, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    data = entry.source()
    rules = SiteRules()
    with tempfile.TemporaryDirectory(prefix="lgw-bench-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        paths = [src / f"copy{i:04d}" for i in range(copies)]
        for p in paths:
            p.write_bytes(data)
        finished = normalize(decoders.decode(data), rules, origin="bench")  # also warms caches
        best_floor = best_convert = float("inf")
        for _ in range(repeat):  # alternate, keep the best of each: least disturbed by others
            t0 = clock()
            for p in paths:
                _floor(p, out, finished)
            best_floor = min(best_floor, clock() - t0)
            t0 = clock()
            for p in paths:
                _convert(p, out, rules)
            best_convert = min(best_convert, clock() - t0)
    return best_floor, best_convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; the best of each counts")
    parser.add_argument("--only", help="run only entries whose name contains this")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    failed = False
    print(f"{'entry':<46} {'floor img/s':>12} {'convert img/s':>14} {'ratio':>6}  target")
    for entry in ENTRIES:
        if args.only and args.only not in entry.name:
            continue
        floor, convert = run_entry(entry, args.copies, args.repeat, clock)
        ratio = convert / floor
        verdict = ""
        if entry.target_ratio is not None:
            ok = ratio <= entry.target_ratio
            failed |= not ok
            verdict = f"<= {entry.target_ratio:g}x {'met' if ok else 'MISSED'}"
        print(f"{entry.name:<46} {args.copies / floor:>12.0f} {args.copies / convert:>14.0f} {ratio:>6.2f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
