"""One read of one tape: its data files become captures, every outcome goes to the journal.

The session is the tape's ``CaptureSink``: the pipeline calls ``ack`` once the instance is
durable in the spool (the journal then records the tape file as done, with its SOP Instance
UID) or ``reject`` with the reason. Tape files that are not handed on (label groups, empty
files, damaged files, files too large to be one image) are journaled as they are met. A
capture is handed on only when its whole tape file was read cleanly: an image with a missing
block is never sent, it is reported (and kept by ``--extract``).

Captures come one at a time: the next tape file is read only once the previous capture's
verdict is in (or it was deferred, in which case the same capture comes again).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from drivers.tape.files import DATA, DEFAULT_MAX_FILE, TapeFile, TapeFiles
from drivers.tape.journal import TapeJournal
from drivers.tape.records import END, FILEMARK, TapeReader, position_text
from gateway.capture import Capture, Origin

log = logging.getLogger("drivers.tape")


@dataclass
class Outcome:
    """What became of one tape file in this session."""

    file: TapeFile
    status: str  # done, rejected, label, empty, damaged, oversize, pending
    sop_instance_uid: str | None = None
    reason: str | None = None

    @property
    def where(self) -> str:
        return position_text(self.file.number, None, self.file.offset)


@dataclass
class SessionSummary:
    counts: dict[str, int] = field(default_factory=dict)  # tape files per status (not a list: tapes are long)
    skipped_before: int = 0  # tape files already done according to the journal
    end_reason: str | None = None  # why reading stopped early (None: end of the recorded data)
    interrupted: bool = False
    volume: str | None = None
    beyond_eot: tuple[int, int] | None = None
    resumed_at: int = 0


class TapeSession:
    def __init__(self, reader: TapeReader, source: str, *, journal: TapeJournal | None = None,
                 fingerprint: str | None = None, resume: bool = False, retry_damaged: bool = False,
                 extract_dir: Path | None = None, max_bytes: int = DEFAULT_MAX_FILE,
                 stop: threading.Event | None = None, on_outcome: Callable[[Outcome], None] | None = None):
        self.reader = reader
        self.source = source
        self.journal = journal
        self.fingerprint = fingerprint
        self.resume = resume
        self.retry_damaged = retry_damaged
        self.extract_dir = extract_dir
        self.max_bytes = max_bytes
        self.stop = stop or threading.Event()
        self.on_outcome = on_outcome
        self.summary = SessionSummary()
        self._pending: tuple[Capture, TapeFile] | None = None
        self._deferred = False
        self._seen_data = False
        self.files: TapeFiles | None = None

    # -- reading --------------------------------------------------------------------------

    def _position(self) -> None:
        if not (self.resume and self.journal):
            return
        file, offset = self.journal.resume_point(self.retry_damaged)
        self.summary.resumed_at = file
        if file == 0:
            return
        prev = self.journal.entries.get(file - 1, {})
        if self.reader.kind != "device" and offset is None:
            offset = self._next_file_after(file - 1, prev.get("offset"))
            if offset is None:
                log.info("event=tape_nothing_to_resume medium=%s note='nothing after tape file %d'",
                         self.reader.path, file - 1)
                raise _NothingLeft()
        self.reader.seek_file(file, offset)
        self._seen_data = any(e.get("status") not in ("label", "empty") for e in self.journal.entries.values()
                              if e["file"] < file)
        log.info("event=tape_resumed medium=%s tape_file=%d offset=%s previous=%s", self.reader.path, file, offset,
                 prev.get("status"))

    def _next_file_after(self, file: int, start: int | None) -> int | None:
        """Where tape file ``file + 1`` starts, found by reading ``file`` through to its filemark.

        Needed when ``file`` ended without one in the last session (the read stopped at a bad
        record by policy): its bad records are passed over here whatever the policy.
        """
        if start is None:
            return None
        policy = self.reader.policy
        self.reader.policy = replace(policy, on_error="skip")
        try:
            self.reader.seek_file(file, start)
            for ev in self.reader.events():
                if ev.kind == FILEMARK:
                    return ev.offset + (6 if self.reader.kind == "aws" else 4)
                if ev.kind == END:
                    return None
        finally:
            self.reader.policy = policy
        return None

    def captures(self) -> Iterator[Capture]:
        """Each cleanly read data file of the tape as one capture, in tape order."""
        try:
            self._position()
        except _NothingLeft:
            return
        done = (lambda n: self.journal.done(n, self.retry_damaged)) if self.journal else None
        files = self.files = TapeFiles(self.reader, max_bytes=self.max_bytes, extract_dir=self.extract_dir,
                                       skip=done, stop=self.stop)
        for tf in files:
            if tf.skipped:
                self.summary.skipped_before += 1
                continue
            if tf.kind != DATA:
                self._settle(tf, tf.kind, reason=_reason(tf))
                continue
            capture = self._capture(tf)
            self._pending, self._deferred = (capture, tf), False
            yield capture
            while self._deferred and not self.stop.is_set():
                self._deferred = False
                yield capture
            if self._pending is not None:  # no verdict: not journaled, read again on resume
                self.summary.counts["pending"] = self.summary.counts.get("pending", 0) + 1
                self._pending = None
        self.summary.end_reason = files.end.error if files.end is not None else None
        self.summary.interrupted = files.interrupted
        self.summary.volume = files.volume
        self.summary.beyond_eot = getattr(self.reader, "beyond_eot", None)

    def _capture(self, tf: TapeFile) -> Capture:
        leading = not self._seen_data
        self._seen_data = True
        details = {
            "medium": self.reader.path,
            "tape_kind": self.reader.kind,
            "tape": self.fingerprint,
            "tape_file": tf.number,
            "first_record": 0,
            "last_record": tf.records - 1,
            "records": tf.records,
            "bytes": tf.size,
            "byte_offset": tf.offset,
            "leading_file": leading,  # the first data file: GE tapes put a header file here
        }
        return Capture(tf.data or b"", Origin(self.source, tf.location, details))

    # -- verdicts (CaptureSink) -----------------------------------------------------------

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        tf = self._take(capture)
        if tf is not None:
            self._settle(tf, "done", sop=sop_instance_uid)

    def reject(self, capture: Capture, reason: str) -> None:
        tf = self._take(capture)
        if tf is not None:
            self._settle(tf, "rejected", reason=reason)

    def defer(self, capture: Capture) -> None:
        """Not durable (the spool failed): offer the same capture again."""
        if self._pending is not None and self._pending[0] is capture:
            self._deferred = True

    def _take(self, capture: Capture) -> TapeFile | None:
        if self._pending is None or self._pending[0] is not capture:
            log.error("event=tape_verdict_unexpected origin=%s", capture.origin)
            return None
        tf = self._pending[1]
        self._pending = None
        return tf

    def _settle(self, tf: TapeFile, status: str, sop: str | None = None, reason: str | None = None) -> None:
        tf.data = None  # settled: the outcome is kept, the bytes are not (memory stays bounded)
        if self.journal is not None:
            self.journal.record(
                tf.number, status, sop=sop, reason=reason, records=tf.records, bytes=tf.size, offset=tf.offset,
                end_offset=tf.end_offset, terminated=tf.terminated, sha256=tf.sha256,
                bad=[{"record": b.record, "offset": b.offset, "reason": b.reason} for b in tf.bad] or None,
                labels=[label.kind for label in tf.labels] or None,
                extracted=str(tf.extracted) if tf.extracted else None,
            )
        outcome = Outcome(tf, status, sop, reason)
        self.summary.counts[status] = self.summary.counts.get(status, 0) + 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        level = logging.INFO if status in ("done", "label", "empty") else logging.WARNING
        log.log(level, "event=tape_file medium=%s tape_file=%d status=%s records=%d bytes=%d%s%s", self.reader.path,
                tf.number, status, tf.records, tf.size, f" sop={sop}" if sop else "",
                f" reason={reason!r}" if reason else "")


class _NothingLeft(Exception):
    pass


def _reason(tf: TapeFile) -> str | None:
    if tf.bad:
        unit = "byte offset"
        return "; ".join(f"{position_text(tf.number, b.record, b.offset, unit)}: {b.reason}" for b in tf.bad)
    return "; ".join(tf.notes) or None
