"""Simulated tapes: objects of any simulated format written as a SIMH or AWSTAPE image.

Each object is one tape file cut into records of ``record_size`` bytes, as GE consoles wrote
their tapes. Optionally the tape starts with a header file that is no image (as GE Signa
tapes do), carries ANSI labels (VOL1, HDR1/HDR2 before and EOF1/EOF2 after every data file,
with the block count) and has damaged records: in SIMH a record flagged as read with errors,
in AWSTAPE (which has no such flag) a chunk header with impossible flags.
"""

from __future__ import annotations

import datetime as _dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from drivers.tape.labels import julian, make_label
from drivers.tape.writers import AwsWriter, SimhWriter
from gateway.simulate import SimFile

HEADER_FILE = b"LEGACY-GATEWAY SIMULATED TAPE HEADER FILE (NOT AN IMAGE)".ljust(2048, b"\0")


@dataclass(frozen=True)
class TapeOptions:
    kind: str = "simh"  # or "aws"
    record_size: int = 8192
    labels: bool = False
    header_file: bool = False
    bad_records: int = 0
    volume: str = "SIM001"


@dataclass
class TapeWritten:
    path: Path
    files: int = 0  # tape files, labels included
    images: int = 0
    bad: list[tuple[int, int]] | None = None  # (tape file, record) of each damaged record


def write_tape(path: Path, objects: Iterable[SimFile], options: TapeOptions, seed: int = 1) -> TapeWritten:
    objects = list(objects)
    rng = random.Random(seed)
    total_records = sum(-(-len(o.data) // options.record_size) for o in objects)
    damaged = set(rng.sample(range(total_records), min(options.bad_records, total_records)))
    written = TapeWritten(Path(path), bad=[])
    today = julian(_dt.date.today())
    with open(path, "wb") as f:
        w = SimhWriter(f) if options.kind == "simh" else AwsWriter(f)
        file_no, record_no = 0, 0
        if options.labels:
            w.record(make_label("VOL1", volume_serial=options.volume, owner="LEGACYGW"))
        if options.header_file:
            if options.labels:
                w.mark()
                file_no += 1
            w.record(HEADER_FILE)
            w.mark()
            file_no += 1
        for seq, obj in enumerate(objects, 1):
            if options.labels:
                name = Path(obj.name).name.upper()[:17]
                w.record(make_label("HDR1", file_id=name, file_set=options.volume, section=1, sequence=seq,
                                    created=today, system="LEGACYGW"))
                w.record(make_label("HDR2", record_format="U", block_length=options.record_size, record_length=0))
                w.mark()
                file_no += 1
            blocks = 0
            for i in range(0, len(obj.data), options.record_size):
                chunk = obj.data[i:i + options.record_size]
                if record_no in damaged:
                    _damage(w, chunk)
                    written.bad.append((file_no, blocks))
                else:
                    w.record(chunk)
                blocks += 1
                record_no += 1
            w.mark()
            file_no += 1
            written.images += 1
            if options.labels:
                w.record(make_label("EOF1", file_id=Path(obj.name).name.upper()[:17], file_set=options.volume,
                                    section=1, sequence=seq, created=today, block_count=blocks, system="LEGACYGW"))
                w.record(make_label("EOF2", record_format="U", block_length=options.record_size, record_length=0))
                w.mark()
                file_no += 1
        w.end()
    written.files = file_no
    return written


def _damage(w: SimhWriter | AwsWriter, chunk: bytes) -> None:
    if isinstance(w, SimhWriter):
        w.record(chunk, bad=True)
        return
    start = w.f.tell()
    w.record(chunk)
    end = w.f.tell()
    w.f.seek(start + 4)
    w.f.write(b"\x13")  # flags nobody writes: the reader reports a corrupt chunk header here
    w.f.seek(end)
