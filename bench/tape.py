#!/usr/bin/env python3
"""Tape reading speed and ingest memory on a 1 GB SIMH image, and ingest speed of many small
images (a benchmark, not a test).

Builds, in a temporary directory deleted afterwards, a SIMH image of about 1 GB laid out as
GE consoles wrote DAT tapes: a header file, then one image per tape file in 8192-byte records.
The images are distinct synthetic CT instances (512 x 512, 16 bits), so that an ingest has
real work to do. Then it measures, in the same run:

1. a plain sequential read of the image file (1 MiB reads) and the SIMH record reader over
   the same file (every record and filemark, lengths checked at both ends), best of five
   each, alternating; it prints both in MB/s and their ratio (target: at least 0.8);
2. the same pair with the file evicted from the page cache before each read
   (posix_fadvise DONTNEED), i.e. from the disk, as an archivist's image usually is;
3. the peak resident memory of a full ``legacy-gateway ingest-tape --dry-run`` of the image
   (a child process; ``ru_maxrss``), target under 150 MB whatever the size of the tape.

With ``--ingest-images N`` it measures instead how many images a second ``ingest-tape`` spools
from a SIMH image of N small images (64 x 64 CT, one per tape file): a real ingest into a fresh
durable spool on the work directory's disk (fsyncs are real there; a tmpfs would hide them), its
destination absent (``--wait 0``: delivery is not measured). The net time subtracts a run over a
one-image tape (start-up and shut-down); the durability cost per image is the difference to a
``--dry-run`` of the same tape by the same code (conversion without spool and journal).
``--against DIR`` runs another checkout (e.g. the main branch) alternately with this one,
``--rounds`` times each, and prints the load average with each number and the ratio of the
medians.

Usage: python bench/tape.py [--size-mb 1024] [--keep DIR]
       python bench/tape.py --ingest-images 2000 [--against /work/main] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.tape.medium import open_tape  # noqa: E402 (sys.path must be set first)
from drivers.tape.records import RECORDS  # noqa: E402
from drivers.tape.writers import SimhWriter, write_file  # noqa: E402

RECORD = 8192
CHUNK = 1 << 20


def ct_template(size: int):
    """A synthetic CT slice of ``size`` x ``size`` 16-bit pixels (UIDs set per image by the caller)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from gateway.dicom.iods import CT_IMAGE_STORAGE

    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyInstanceUID = "2.25.1000"
    ds.Modality = "CT"
    ds.PatientName = "BENCH^TAPE"
    ds.PatientID = "BENCH"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelData = np.random.default_rng(1).integers(0, 4096, size * size, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def set_image(ds, count: int) -> None:
    """Make ``ds`` image ``count`` of the tape: series of 100, UIDs of its own."""
    series = count // 100
    ds.SeriesInstanceUID = f"2.25.2000{series}"
    ds.SeriesNumber = series + 1
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.3000{count}"
    ds.InstanceNumber = count % 100 + 1
    ds.FrameOfReferenceUID = f"2.25.4000{series}"
    ds.ImagePositionPatient = [0, 0, float(count % 100)]


def build_image(path: Path, size: int) -> int:
    """Write the image; returns the number of images on it."""
    from gateway.delivery.spool import encode

    ds = ct_template(512)
    count = 0
    with open(path, "wb", buffering=CHUNK) as f:
        w = SimhWriter(f)
        write_file(w, b"GE DAT TAPE HEADER FILE".ljust(2048, b"\0"), RECORD)
        while f.tell() < size:
            set_image(ds, count)
            write_file(w, encode(ds), RECORD)
            count += 1
        w.end()
    return count


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def plain_read(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return n
            n += len(b)


def record_read(path: Path) -> int:
    n = 0
    with open_tape(path, "simh") as reader:
        for ev in reader.events():
            data = ev[1]
            if data is not None:
                n += data.nbytes if ev[0] == RECORDS else len(data)
    return n


def timed(fn, path: Path, cold: bool) -> tuple[float, int]:
    if cold:
        evict(path)
    t = time.perf_counter()
    n = fn(path)
    return time.perf_counter() - t, n


def compare(path: Path, cold: bool, rounds: int = 5) -> tuple[float, float]:
    best = {plain_read: float("inf"), record_read: float("inf")}
    size = {}
    for _ in range(rounds):
        for fn in (plain_read, record_read):
            dt, n = timed(fn, path, cold)
            best[fn] = min(best[fn], dt)
            size[fn] = n
    return size[plain_read] / best[plain_read] / 1e6, size[record_read] / best[record_read] / 1e6


def ingest_rss(path: Path) -> tuple[float, float, str]:
    """Peak RSS (MB) and wall time of a dry-run ingest in a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gateway", "ingest-tape", str(path), "--dry-run", "--no-progress",
                           "-c", str(path.parent / "no-config.yaml")], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    dt = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = next((line for line in proc.stdout.splitlines() if line.startswith("Tape files read")),
                   proc.stdout[-300:])
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ingest failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return peak_kb / 1024, dt, summary


# -- ingest speed of many small images -------------------------------------------------------


def small_images_tape(path: Path, count: int) -> None:
    from gateway.delivery.spool import encode

    ds = ct_template(64)
    with open(path, "wb", buffering=CHUNK) as f:
        w = SimhWriter(f)
        for n in range(count):
            set_image(ds, n)
            write_file(w, encode(ds), RECORD)
        w.end()


def ingest_once(checkout: Path, tape: Path, work: Path, dry: bool = False) -> float:
    """Wall seconds of one real ingest of ``tape`` into a fresh spool (``dry``: only decoded),
    by ``checkout``'s code."""
    run = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    config = run / "gw.yaml"
    config.write_text(f"gateway:\n  spool_dir: {run / 'spool'}\n  state_dir: {run / 'state'}\n  log_level: WARNING\n"
                      "destinations:\n  - {name: absent, host: 127.0.0.1, port: 1, called_ae: NOBODY}\n"
                      "archive:\n  enabled: false\n")
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gateway", "ingest-tape", str(tape), "-c", str(config),
                           "--no-progress", "--wait", "0", *(["--dry-run"] if dry else [])],
                          env=env, cwd=checkout, capture_output=True, text=True)
    dt = time.perf_counter() - t
    shutil.rmtree(run, ignore_errors=True)
    if proc.returncode not in (0, 3):  # 3: all read, delivery pending (the destination is absent)
        raise SystemExit(f"ingest by {checkout} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dt


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def ingest_speed(work: Path, count: int, against: Path | None, rounds: int) -> None:
    tape, one = work / "small.tap", work / "one.tap"
    small_images_tape(tape, count)
    small_images_tape(one, 1)
    arms = [("this", ROOT)] + ([("against", against.resolve())] if against else [])
    print(f"ingest-tape of {count} images of 64x64x16 ({tape.stat().st_size / 1e6:.1f} MB SIMH), "
          f"a fresh durable spool in {work} each run")
    rates: dict[str, list[float]] = {name: [] for name, _ in arms}
    costs: dict[str, list[float]] = {name: [] for name, _ in arms}
    for r in range(rounds):
        for name, checkout in (arms if r % 2 == 0 else arms[::-1]):  # alternated: A B, B A, ...
            base = ingest_once(checkout, one, work)
            dt = ingest_once(checkout, tape, work)
            dry = ingest_once(checkout, tape, work, dry=True)
            rate = count / max(dt - base, 1e-9)
            rates[name].append(rate)
            costs[name].append((dt - dry) / count * 1e3)
            print(f"  {name:8s} {checkout}: {dt:6.2f} s (start-up {base:4.2f} s) -> {rate:6.0f} images/s; "
                  f"--dry-run {dry:6.2f} s: spool and journal {costs[name][-1]:5.2f} ms/image   {load()}")
    for name in rates:
        print(f"  median {name:8s} {statistics.median(rates[name]):6.0f} images/s, "
              f"spool and journal {statistics.median(costs[name]):5.2f} ms/image")
    if against:
        print(f"  ratio this/against {statistics.median(rates['this']) / statistics.median(rates['against']):.2f} "
              f"images/s, {statistics.median(costs['this']) / statistics.median(costs['against']):.2f} "
              "spool and journal time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", type=Path, help="build the image in DIR and keep it")
    ap.add_argument("--ingest-images", type=int, metavar="N", help="measure ingest speed of N small images instead")
    ap.add_argument("--against", type=Path, metavar="DIR", help="with --ingest-images: another checkout, alternated")
    ap.add_argument("--rounds", type=int, default=3, help="with --ingest-images: runs of each (default 3)")
    ap.add_argument("--dir", type=Path, help="work directory (default: a new one under the system's temp)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-tape-", dir=args.dir))
    work.mkdir(parents=True, exist_ok=True)
    image = work / "bench.tap"
    if args.ingest_images:
        try:
            ingest_speed(work, args.ingest_images, args.against, args.rounds)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        t = time.perf_counter()
        images = build_image(image, args.size_mb << 20)
        size = image.stat().st_size
        print(f"image: {size / 1e6:.0f} MB, {images} images of 512x512x16 in {RECORD}-byte records "
              f"(built in {time.perf_counter() - t:.1f} s)")
        for cold in (False, True):
            plain, reader = compare(image, cold)
            where = "from disk (page cache evicted before each read)" if cold else "from the page cache"
            print(f"{where}:\n  plain sequential read {plain:8.0f} MB/s\n  SIMH record reader    {reader:8.0f} MB/s"
                  f"\n  ratio reader/plain    {reader / plain:8.2f}   (target >= 0.8)")
        peak, dt, summary = ingest_rss(image)
        print(f"ingest-tape --dry-run: peak RSS {peak:.0f} MB (target < 150 MB), {dt:.1f} s, "
              f"{size / dt / 1e6:.0f} MB/s\n  {summary}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
