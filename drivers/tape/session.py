"""One read of one tape: its data files become captures, every outcome goes to the journal.

The session is the tape's ``CaptureSink``: the pipeline calls ``ack`` once the instance is
durable in the spool (the journal then records the tape file as done, with its SOP Instance
UID) or ``reject`` with the reason. Tape files that are not handed on (label groups, empty
files, damaged files, files too large to be one image) are journaled as they are met. A
capture is handed on only when its whole tape file was read cleanly: an image with a missing
block is never sent, it is reported (and kept by ``--extract``).

Captures may wait for their verdicts in a group: the consumer stages several and commits them
together (one fsync'd spool commit per group, not per image), so the next tape file is read
before the previous verdict is in. ``captures`` yields None whenever the group must be committed
now (the end of the tape, a read that stopped, a stop request): a ``yields_idle`` driver.
Outcomes are journaled in tape order only, when the consumer comes back for the next capture
(a group's outcomes with one journal write): a verdict that comes while an earlier tape file
still waits for its own is held until that one is settled, so the journal's settled files always form
an unbroken run from the start and ``--resume`` never passes over a file that was staged but not
committed (re-reading a few is harmless: the spool de-duplicates by UID and digest).

A deferred capture (the spool failed) is offered again, from memory, before the next tape file
is read: an open capture keeps its bytes until its verdict (the consumer's group bounds how
many wait), unless the session is told nothing is ever offered again (``reoffer=False``,
``ingest-tape``, which stops at a storage failure and resumes from the journal).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
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


@dataclass
class _Open:
    """A tape file not journaled yet, in tape order: a capture waiting for its verdict, or any
    tape file whose outcome waits for an earlier capture's."""

    file: TapeFile
    capture: Capture | None = None  # a data file handed on (None: settled as it was met)
    status: str | None = None       # the verdict, once it is in
    sop: str | None = None
    reason: str | None = None
    deferred: bool = False


class TapeSession:
    def __init__(self, reader: TapeReader, source: str, *, journal: TapeJournal | None = None,
                 fingerprint: str | None = None, resume: bool = False, retry_damaged: bool = False,
                 extract_dir: Path | None = None, max_bytes: int = DEFAULT_MAX_FILE,
                 stop: threading.Event | None = None, on_outcome: Callable[[Outcome], None] | None = None,
                 reoffer: bool = True):
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
        self.reoffer = reoffer
        self.summary = SessionSummary()
        self._open: deque[_Open] = deque()  # in tape order; the first is the next to journal
        self._by_file: dict[int, _Open] = {}  # the captures among them, by tape file number
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

    def captures(self) -> Iterator[Capture | None]:
        """Each cleanly read data file of the tape as one capture, in tape order, and None when
        the captures that wait for verdicts must be committed now (see the module's docstring)."""
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
                self._met(tf)
                continue
            capture = self._capture(tf)
            self._hand_on(tf, capture)
            yield capture
            del capture
            self._handed(tf.number)
            self.journal_settled(quiet=True)
            yield from self._again()
        yield from self._end_of_group()
        self.journal_settled(quiet=True)
        pending = len(self._by_file)  # no verdict: not journaled, read again on resume
        if pending:
            self.summary.counts["pending"] = self.summary.counts.get("pending", 0) + pending
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

    # A verdict is noted here and journaled when the consumer comes back for the next capture
    # (or calls ``journal_settled``): a group's acks arrive together and cost one journal write.

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        entry = self._take(capture)
        if entry is not None:
            entry.status, entry.sop = "done", sop_instance_uid

    def reject(self, capture: Capture, reason: str) -> None:
        entry = self._take(capture)
        if entry is not None:
            entry.status, entry.reason = "rejected", reason

    def defer(self, capture: Capture) -> None:
        """Not durable (the spool failed): offer the same capture again before reading on."""
        entry = self._waiting(capture)
        if entry is None:
            return
        if self.reoffer:
            entry.deferred = True
        else:
            log.warning("event=tape_capture_not_offered_again origin=%s note='read again on resume'", capture.origin)

    # -- the open tape files --------------------------------------------------------------

    def _hand_on(self, tf: TapeFile, capture: Capture) -> None:
        entry = _Open(tf, capture)
        self._open.append(entry)
        self._by_file[tf.number] = entry

    def _handed(self, number: int) -> None:
        """The consumer has the capture (staged, rejected or failed). The tape file keeps no
        bytes; the capture keeps them only to be offered again (``reoffer``)."""
        entry = self._by_file.get(number)
        if entry is None or entry.capture is None:
            return
        entry.file.data = None
        if not self.reoffer:
            entry.capture = replace(entry.capture, data=b"", parts={})

    def _again(self) -> Iterator[Capture]:
        """Deferred captures again, in tape order, until none is deferred (or stop is asked)."""
        while not self.stop.is_set():
            waiting = [e for e in self._open if e.deferred]
            if not waiting:
                return
            for entry in waiting:
                entry.deferred = False
                if entry.capture is not None and entry.status is None:
                    yield entry.capture
                    self.journal_settled(quiet=True)

    def _end_of_group(self) -> Iterator[None]:
        """None (commit now) while captures wait for verdicts, then the deferred ones again."""
        while self._by_file and not self.stop.is_set():
            yield None
            self.journal_settled(quiet=True)
            if not any(e.deferred for e in self._open):
                return
            for capture in self._again():
                yield capture  # type: ignore[misc]
        if self._by_file:
            yield None  # stopping: the consumer commits what it holds before it goes
            self.journal_settled(quiet=True)

    def _met(self, tf: TapeFile) -> None:
        """A tape file that is not handed on (label, empty, damaged, oversize): its outcome is
        known now, journaled once every earlier tape file is."""
        self._open.append(_Open(tf, status=tf.kind, reason=_reason(tf)))
        self.journal_settled(quiet=True)

    def _waiting(self, capture: Capture) -> _Open | None:
        """The open tape file ``capture`` was handed on from (matched by origin, so a bare
        copy of the capture finds it too), while it waits for its verdict."""
        entry = self._by_file.get(capture.origin.details.get("tape_file", -1))
        if entry is None or entry.capture is None or entry.capture.origin != capture.origin:
            return None
        return entry

    def _take(self, capture: Capture) -> _Open | None:
        entry = self._waiting(capture)
        if entry is None:
            log.error("event=tape_verdict_unexpected origin=%s", capture.origin)
            return None
        del self._by_file[entry.file.number]
        entry.capture, entry.deferred = None, False
        return entry

    def journal_settled(self, quiet: bool = False) -> None:
        """Journal the open tape files from the first while their outcomes are known, all with
        one write and one fsync, then report each. Nothing leaves the open list before its line
        is written: a failed write raises (or, ``quiet``, is logged) and is tried again next time."""
        ready = []
        for entry in self._open:
            if entry.status is None:
                break
            ready.append(entry)
        if not ready:
            return
        if self.journal is not None:
            try:
                self.journal.record_all([(e.file.number, e.status, _facts(e)) for e in ready])
            except OSError as exc:
                if not quiet:
                    raise
                log.error("event=tape_journal_failed medium=%s files=%d error=%r note='written again later'",
                          self.reader.path, len(ready), str(exc))
                return
        for entry in ready:
            self._open.popleft()
            self._settled(entry.file, entry.status, entry.sop, entry.reason)

    def _settled(self, tf: TapeFile, status: str, sop: str | None, reason: str | None) -> None:
        tf.data = None  # settled: the outcome is kept, the bytes are not (memory stays bounded)
        outcome = Outcome(tf, status, sop, reason)
        self.summary.counts[status] = self.summary.counts.get(status, 0) + 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        level = logging.INFO if status in ("done", "label", "empty") else logging.WARNING
        log.log(level, "event=tape_file medium=%s tape_file=%d status=%s records=%d bytes=%d%s%s", self.reader.path,
                tf.number, status, tf.records, tf.size, f" sop={sop}" if sop else "",
                f" reason={reason!r}" if reason else "")


def _facts(entry: _Open) -> dict:
    """What the journal keeps of one settled tape file besides its number and status."""
    tf = entry.file
    return dict(
        sop=entry.sop, reason=entry.reason, records=tf.records, bytes=tf.size, offset=tf.offset,
        end_offset=tf.end_offset, terminated=tf.terminated, sha256=tf.sha256,
        bad=[{"record": b.record, "offset": b.offset, "reason": b.reason} for b in tf.bad] or None,
        labels=[label.kind for label in tf.labels] or None,
        extracted=str(tf.extracted) if tf.extracted else None,
    )


class _NothingLeft(Exception):
    pass


def _reason(tf: TapeFile) -> str | None:
    if tf.bad:
        unit = "byte offset"
        return "; ".join(f"{position_text(tf.number, b.record, b.offset, unit)}: {b.reason}" for b in tf.bad)
    return "; ".join(tf.notes) or None
