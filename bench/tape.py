#!/usr/bin/env python3
"""Tape reading speed and ingest memory on a 1 GB SIMH image (a benchmark, not a test).

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

Usage: python bench/tape.py [--size-mb 1024] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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


def build_image(path: Path, size: int) -> int:
    """Write the image; returns the number of images on it."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from gateway.delivery.spool import encode
    from gateway.dicom.iods import CT_IMAGE_STORAGE

    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyInstanceUID = "2.25.1000"
    ds.Modality = "CT"
    ds.PatientName = "BENCH^TAPE"
    ds.PatientID = "BENCH"
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelData = np.random.default_rng(1).integers(0, 4096, 512 * 512, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    count = 0
    with open(path, "wb", buffering=CHUNK) as f:
        w = SimhWriter(f)
        write_file(w, b"GE DAT TAPE HEADER FILE".ljust(2048, b"\0"), RECORD)
        while f.tell() < size:
            series = count // 100
            ds.SeriesInstanceUID = f"2.25.2000{series}"
            ds.SeriesNumber = series + 1
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.3000{count}"
            ds.InstanceNumber = count % 100 + 1
            ds.FrameOfReferenceUID = f"2.25.4000{series}"
            ds.ImagePositionPatient = [0, 0, float(count % 100)]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", type=Path, help="build the image in DIR and keep it")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-tape-"))
    work.mkdir(parents=True, exist_ok=True)
    image = work / "bench.tap"
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
