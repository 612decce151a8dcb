"""Conversion throughput against the I/O floor, measured in the same run.

For each entry, N copies of one vendor file are written to a temporary folder, twice: one set
for each side. The *floor* reads every copy's bytes and writes an already finished dataset with
pydicom (what any converter must at least do); the *conversion* reads, identifies, decodes,
normalises and writes each copy, all in this one process, alternating with the floor copy by
copy (and which goes first, copy by copy) so both see the same load and the same caches. The
script prints images/s for both (best round) and the median ratio over the rounds (target:
conversion at most 2x the floor, for every format; the issues name the GE DPCM sample and the
ACR-NEMA and SPI samples).

Adding a format is one more ``Entry`` in ``ENTRIES`` (a name and a function returning the bytes).
An object of several files (an Interfile header and its data file) gives ``companions``: each
copy then has its own data file, which the floor reads too and the conversion reads the way
``convert`` does (``gateway.files.read_capture``: the header names it).

    python bench/convert.py [--copies 200] [--only NAME] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import formats  # noqa: E402
from gateway.dicom.normalize import SiteRules, normalize  # noqa: E402
from gateway.files import read_capture  # noqa: E402

SAMPLES = next((p / "shared" / "samples" for p in Path(__file__).resolve().parents
                if (p / "shared" / "samples").is_dir()), Path("shared/samples"))


@dataclass(frozen=True)
class Entry:
    name: str
    source: Callable[[], bytes]
    target_ratio: float | None = 2.0  # issues #6 and #7: every format at most 2x the floor
    companions: Callable[[], dict[str, bytes]] | None = None  # data file name in the header -> bytes


def _sample(relative: str) -> Callable[[], bytes]:
    return lambda: (SAMPLES / relative).read_bytes()


def _simulated(fmt: str, **options) -> Callable[[], bytes]:
    def make() -> bytes:
        from gateway.simulate import SimOptions, generate

        return next(iter(generate(fmt, 1, SimOptions(**options), seed=1))).data

    return make


def _interfile(header: str) -> tuple[Callable[[], bytes], float, Callable[[], dict[str, bytes]]]:
    path = SAMPLES / "interfile" / "stir" / header

    def companions() -> dict[str, bytes]:
        return {name: (path.parent / name).read_bytes() for name in formats.companions(path.read_bytes()) or []}

    return (lambda: path.read_bytes()), 2.0, companions


ENTRIES = [
    Entry("ge-genesis DPCM (E07733S002I009.MR)", _sample("ge_genesis/E07733S002I009.MR")),
    Entry("ge-genesis raster (heart.1)", _sample("ge_genesis/heart.1")),
    Entry("ge-genesis DPCM+packed 256x256 (simulated)", _simulated("genesis", compression=4)),
    Entry("ge-signa4x 256x256 (simulated)", _simulated("signa4x")),
    Entry("ge-ct9800 512 byte code + map (simulated)",
          _simulated("ge9800", extra={"kind": "axial", "size": 512, "map": True})),
    Entry("acr-nema CT 512 (CT-MONO2-12-lomb-an2.acr)", _sample("acr_nema/CT-MONO2-12-lomb-an2.acr")),
    Entry("siemens-spi MR 256 (mr.001)", _sample("siemens_spi_acrnema/mr.001")),
    Entry("acr-nema 512 big-endian (simulated)", _simulated("acrnema", byte_order="big", extra={"size": 512})),
    Entry("acr-nema 512 bad-big-endian (simulated)", _simulated("acrnema", byte_order="badbig", extra={"size": 512})),
    Entry("acr-nema 512 packed 12-bit BE (simulated)",
          _simulated("acrnema", byte_order="big", variant="packed12", extra={"size": 512})),
    Entry("somatom-plus 512 (simulated)", _simulated("somatom-plus", extra={"size": 512})),
    Entry("vision-ima 256 (simulated)", _simulated("vision-ima", extra={"size": 256})),
    Entry("interfile PET 60x60x31 float (init.hv+.v)", *_interfile("examples/recon_demo/init.hv")),
]


def _convert(path: Path, out: Path, rules: SiteRules) -> None:
    capture = read_capture(path, "bench")  # the object and the companion files it names
    ds = normalize(formats.decode(capture.data, capture.parts), rules, origin=str(path))
    ds.save_as(out / f"{path.name}.dcm", enforce_file_format=True)


def _floor(paths: list[Path], out: Path, finished) -> None:
    for p in paths:
        p.read_bytes()
    finished.save_as(out / f"{paths[0].name}.dcm", enforce_file_format=True)


def _copies(entry: Entry, data: bytes, src: Path, copies: int) -> list[list[Path]]:
    """Per copy, its files (the object first); a companion is renamed per copy in the header."""
    parts = entry.companions() if entry.companions else {}
    result = []
    for i in range(copies):
        body, files = data, []
        for name, blob in parts.items():
            own = f"copy{i:04d}-{name}"
            body = body.replace(name.encode(), own.encode())
            files.append(src / own)
            files[-1].write_bytes(blob)
        main = src / f"copy{i:04d}"
        main.write_bytes(body)
        result.append([main] + files)
    return result


def run_entry(entry: Entry, copies: int, repeat: int) -> tuple[float, float, float]:
    """(best floor seconds, best conversion seconds, median ratio) over ``repeat`` rounds.

    Floor and conversion alternate copy by copy, so both see the same machine load (other
    processes share the cores); each round's ratio compares the two sums of that round. Each
    side reads its own copies (reading the other's file just before would leave it in the CPU
    caches), and which side goes first alternates too (whatever ran just before leaves its
    traces in the caches).
    """
    data = entry.source()
    rules = SiteRules()
    with tempfile.TemporaryDirectory(prefix="lgw-bench-") as tmp:
        dirs = [Path(tmp) / d for d in ("in-floor", "in-conv", "floor", "conv")]
        for d in dirs:
            d.mkdir()
        src_floor, src_conv, out_floor, out_conv = dirs
        pairs = list(zip(_copies(entry, data, src_floor, copies), _copies(entry, data, src_conv, copies)))
        first = read_capture(pairs[0][1][0], "bench")
        finished = normalize(formats.decode(first.data, first.parts), rules, origin="bench")  # also warms caches

        def floor_step(i: int) -> None:
            _floor(pairs[i][0], out_floor, finished)

        def convert_step(i: int) -> None:
            _convert(pairs[i][1][0], out_conv, rules)

        for i in range(copies):  # one uncounted round: file cache, allocator and CPU warmed alike
            floor_step(i)
            convert_step(i)
        floors, converts, ratios = [], [], []
        for _ in range(repeat):
            spent = {floor_step: 0.0, convert_step: 0.0}
            for i in range(copies):
                for step in ((floor_step, convert_step) if i % 2 == 0 else (convert_step, floor_step)):
                    t0 = time.perf_counter()
                    step(i)
                    spent[step] += time.perf_counter() - t0
            floors.append(spent[floor_step])
            converts.append(spent[convert_step])
            ratios.append(spent[convert_step] / spent[floor_step])
    return min(floors), min(converts), statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the median ratio is reported")
    parser.add_argument("--only", help="run only entries whose name contains this")
    args = parser.parse_args(argv)
    failed = False
    print("load average %.2f %.2f %.2f (the machine should be idle)" % os.getloadavg())
    print(f"{'entry':<44} {'floor img/s':>12} {'convert img/s':>14} {'ratio':>6}  target")
    for entry in ENTRIES:
        if args.only and args.only not in entry.name:
            continue
        floor, convert, ratio = run_entry(entry, args.copies, args.repeat)
        verdict = ""
        if entry.target_ratio is not None:
            ok = ratio <= entry.target_ratio
            failed |= not ok
            verdict = f"<= {entry.target_ratio:g}x {'met' if ok else 'MISSED'}"
        print(f"{entry.name:<44} {args.copies / floor:>12.0f} {args.copies / convert:>14.0f} {ratio:>6.2f}  {verdict}")
    print("load average %.2f %.2f %.2f" % os.getloadavg())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
