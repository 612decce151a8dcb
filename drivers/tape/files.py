"""Tape files: the records between two filemarks, joined, described and optionally saved.

A tape file is the unit of everything above the record stream: one capture per tape file
(GE consoles write one image per tape file: Signa 4.x after a leading header file, Genesis DAT
files whose records joined give the decoders' tape variant), one journal entry per tape file,
one extract per tape file. Label groups (``drivers.tape.labels``) are recognised here and
never handed on as data; an ``EOF1`` block count is checked against the data file before it.

Memory stays bounded: the records of a tape file are kept only up to ``max_bytes`` (a file
larger than that is still read through, saved by the extract writer, and reported as too
large to be one image). Extracts are written as the records arrive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from drivers.tape.labels import LABEL_SIZE, Label, parse_label
from drivers.tape.records import BAD, END, FILEMARK, RECORD, RECORDS, TapeEvent, TapeReader, position_text

log = logging.getLogger("drivers.tape")

DEFAULT_MAX_FILE = 64 << 20  # far above any single image of the era

LABEL, EMPTY, DAMAGED, OVERSIZE, DATA = "label", "empty", "damaged", "oversize", "data"


@dataclass(frozen=True)
class BadSpot:
    record: int
    offset: int | None
    reason: str


@dataclass
class TapeFile:
    """One tape file as read. ``data`` is None when the file was too large to keep or skipped."""

    number: int
    offset: int | None = None  # byte offset of its first object in an image
    end_offset: int | None = None  # where the next tape file starts (after the filemark)
    records: int = 0
    size: int = 0
    min_record: int = 0
    max_record: int = 0
    data: bytes | None = None
    bad: list[BadSpot] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    terminated: bool = False  # ended by a filemark (not by the end of the tape)
    oversize: bool = False
    skipped: bool = False  # read through without keeping anything (already journaled)
    sha256: str | None = None
    extracted: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.bad:
            return DAMAGED
        if self.labels:
            return LABEL
        if self.records == 0:
            return EMPTY
        if self.oversize:
            return OVERSIZE
        return DATA

    @property
    def location(self) -> str:
        """'tape file 3 records 0-17' (stable across re-reads: it goes into the instance)."""
        if not self.records:
            return f"tape file {self.number} (empty)"
        return f"tape file {self.number} records 0-{self.records - 1}"

    def describe(self) -> str:
        where = position_text(self.number, None, self.offset)
        sizes = f"{self.min_record}" if self.min_record == self.max_record else f"{self.min_record}-{self.max_record}"
        return f"{where}: {self.records} record(s) of {sizes} bytes, {self.size} bytes"


class TapeFiles:
    """Iterate the tape files of a reader, from where it is positioned.

    ``skip(n)`` says a file needs no data (already done, per the journal): it is still read
    through (positions stay right) but nothing is kept or extracted. ``stop`` (an Event) ends
    the iteration between records; the file in hand is then abandoned, never half-reported.
    After iteration, ``end`` is the END event (its ``error`` says why reading stopped early),
    ``interrupted`` tells whether ``stop`` ended it and ``volume`` holds the VOL1 serial.
    """

    def __init__(self, reader: TapeReader, *, max_bytes: int = DEFAULT_MAX_FILE, extract_dir: Path | None = None,
                 skip: Callable[[int], bool] | None = None, stop: threading.Event | None = None):
        self.reader = reader
        self.max_bytes = max_bytes
        self.extract = Extractor(Path(extract_dir)) if extract_dir else None
        self.skip = skip or (lambda n: False)
        self.stop = stop
        self.end: TapeEvent | None = None
        self.interrupted = False
        self.volume: str | None = None
        self._last_data: TapeFile | None = None

    def __iter__(self) -> Iterator[TapeFile]:
        reader, stop, max_bytes = self.reader, self.stop, self.max_bytes
        current: TapeFile | None = None
        parts: list = []
        writer = None
        for ev in reader.events():
            if stop is not None and stop.is_set():
                self.interrupted = True
                if writer is not None:
                    writer.abandon()
                return
            if current is None:
                current = TapeFile(ev.file, offset=ev.offset, skipped=self.skip(ev.file))
                parts = []
                writer = self.extract.begin(current) if self.extract and not current.skipped else None
            kind = ev.kind
            if kind == RECORD:
                n = len(ev.data)
                if not current.records or n < current.min_record:
                    current.min_record = n
                if n > current.max_record:
                    current.max_record = n
                current.records += 1
                current.size += n
                if current.skipped:
                    continue
                if writer is not None:
                    writer.write(ev.data)
                if not current.oversize:
                    if current.size > max_bytes:
                        current.oversize, parts = True, []
                    else:
                        parts.append(ev.data)
            elif kind == RECORDS:
                run = ev.data
                if not current.records or run.last < current.min_record:  # the last is the shortest
                    current.min_record = run.last
                if run.size > current.max_record:
                    current.max_record = run.size
                current.records += run.count
                current.size += run.nbytes
                if current.skipped:
                    continue
                if writer is not None:
                    for data in run:
                        writer.write(data)
                if not current.oversize:
                    if current.size > max_bytes:
                        current.oversize, parts = True, []
                    else:
                        parts.extend(run)
            elif kind == BAD:
                current.bad.append(BadSpot(ev.record, ev.offset, ev.error or "bad record"))
                current.records += 1
                if writer is not None and ev.data is not None:
                    writer.write(ev.data)
                    writer.note_bad(ev)
            elif kind == FILEMARK:
                current.terminated = True
                yield self._finish(current, parts, writer, self._after(ev))
                current, writer = None, None
            elif kind == END:
                self.end = ev
                if ev.error:
                    log.warning("event=tape_end_early medium=%s %s reason=%r", reader.path,
                                ev.where(reader.unit).replace(", ", " "), ev.error)
                if current.records or current.bad:
                    current.notes.append("not ended by a filemark")
                    yield self._finish(current, parts, writer, None)  # where a next file starts is unknown
                elif writer is not None:
                    writer.abandon()
                return

    def _after(self, ev: TapeEvent) -> int | None:
        """The offset just after a filemark: where the next tape file starts."""
        if ev.offset is None:
            return None
        return ev.offset + (6 if self.reader.kind == "aws" else 4)

    def _finish(self, tf: TapeFile, parts: list, writer: "ExtractWriter | None", end_offset: int | None) -> TapeFile:
        tf.end_offset = end_offset
        if not tf.skipped and not tf.oversize and not tf.bad:
            if tf.records and len(parts) == tf.records and all(len(p) == LABEL_SIZE for p in parts):
                labels = [parse_label(p) for p in parts]
                if all(labels):
                    tf.labels = labels  # type: ignore[assignment]
            if not tf.labels:
                tf.data = b"".join(parts)
        if tf.labels:
            self._note_labels(tf)
        elif tf.records or tf.bad:
            self._last_data = tf
        if writer is not None:
            writer.finish(tf)
        if tf.oversize:
            tf.notes.append(f"larger than {self.max_bytes} bytes: not kept in memory"
                            + (" (saved by --extract)" if writer else ""))
        return tf

    def _note_labels(self, tf: TapeFile) -> None:
        for label in tf.labels:
            log.info("event=tape_label medium=%s tape_file=%d label=%s encoding=%s %s", self.reader.path, tf.number,
                     label.kind, label.encoding, " ".join(f"{k}={v!r}" for k, v in label.public().items()))
            log.debug("event=tape_label_private tape_file=%d label=%s file_id=%r owner=%r", tf.number, label.kind,
                      label.fields.get("file_id"), label.fields.get("owner"))
            if label.kind == "VOL1" and self.volume is None:
                self.volume = label.fields.get("volume_serial") or None
            count = label.number("block_count")
            if label.kind in ("EOF1", "EOV1") and count is not None and self._last_data is not None:
                data = self._last_data
                if count != data.records % 1_000_000:
                    note = (f"{label.kind} says {count} blocks but tape file {data.number} held {data.records} "
                            "records: blocks may be missing or the label is wrong")
                    tf.notes.append(note)
                    log.warning("event=tape_block_count_mismatch medium=%s tape_file=%d label_count=%d records=%d",
                                self.reader.path, data.number, count, data.records)


class Extractor:
    """Writes each tape file to ``DIR/fileNNNN.bin`` as it is read, plus ``manifest.jsonl``.

    A file in progress is ``fileNNNN.bin.part`` until its filemark; damaged files are named
    ``fileNNNN.damaged.bin`` and label groups ``fileNNNN.label``. Each manifest line gives the
    tape file number, kind, records, bytes, SHA-256 and any bad records with their positions.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def begin(self, tf: TapeFile) -> "ExtractWriter":
        return ExtractWriter(self, tf.number)

    def manifest(self, entry: dict) -> None:
        with open(self.directory / "manifest.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


class ExtractWriter:
    def __init__(self, extractor: Extractor, number: int):
        self.extractor = extractor
        self.number = number
        self.part = extractor.directory / f"file{number:04d}.bin.part"
        self.f = open(self.part, "wb")
        self.hash = hashlib.sha256()
        self.bad: list[dict] = []

    def write(self, data) -> None:
        self.f.write(data)
        self.hash.update(data)

    def note_bad(self, ev: TapeEvent) -> None:
        self.bad.append({"record": ev.record, "offset": ev.offset, "reason": ev.error, "bytes": len(ev.data or b"")})

    def abandon(self) -> None:
        self.f.close()
        self.part.unlink(missing_ok=True)

    def finish(self, tf: TapeFile) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        suffix = {LABEL: ".label", DAMAGED: ".damaged.bin"}.get(tf.kind, ".bin")
        final = self.extractor.directory / f"file{self.number:04d}{suffix}"
        os.replace(self.part, final)
        tf.sha256 = self.hash.hexdigest()
        tf.extracted = final
        self.extractor.manifest({
            "file": tf.number, "name": final.name, "kind": tf.kind, "records": tf.records, "bytes": tf.size,
            "sha256": tf.sha256, "offset": tf.offset, "terminated": tf.terminated, "bad": self.bad,
        })
