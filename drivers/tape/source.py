"""The tape source of the service (``type: tape``): for sites that load tapes into a drive.

It waits until a tape is loaded (the drive reports itself online; for an image path, until
the file is there and has stopped growing), reads it with a ``TapeSession`` that always
resumes from the tape's journal (a restart of the service, or the same tape loaded again,
never reads or sends twice what is settled), then rewinds and, when configured, ejects it
(MTOFFL) so the operator sees that it is done. A tape that stays loaded after it is done is
not read again; the next tape is taken once the drive has been emptied (or the image file
replaced).

The driver is a ``drivers.driver.Driver`` that ``yields_idle``: the service stages its captures
in groups sharing one spool commit, committed at the group's bounds and whenever the session
yields None (the end of a tape, a read that stopped); the journal records each tape file once
its group is durable. Its ``defer`` offers a capture the spool could not take again.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path
from typing import Iterator

from drivers.driver import Driver
from drivers.tape.device import TapeDevice
from drivers.tape.files import DEFAULT_MAX_FILE
from drivers.tape.journal import TapeJournal
from drivers.tape.medium import open_tape
from drivers.tape.records import ErrorPolicy, TapeError, TapeReader
from drivers.tape.session import TapeSession
from gateway.capture import Capture

log = logging.getLogger("drivers.tape")


class TapeDriver(Driver):
    uses_state_dir = True  # the service passes gateway.state_dir (where tape journals live)
    yields_idle = True     # tape files are spooled in groups; a tape waits for its acks

    def __init__(self, name: str, device: str, state_dir: str | Path = "./var/state", format: str = "auto",
                 block_size: int = 0, retries: int = 3, on_error: str = "skip", eject: bool = True,
                 poll_interval: float = 5.0, max_file_size: int = DEFAULT_MAX_FILE, extract_dir: str | None = None,
                 past_eot: bool = False):
        self.name = name
        self.device = device
        self.state_dir = Path(state_dir)
        self.format = format
        self.block_size = block_size
        self.policy = ErrorPolicy(retries=retries, on_error=on_error, past_eot=past_eot)
        self.eject = eject
        self.poll_interval = poll_interval
        self.max_file_size = max_file_size
        self.extract_dir = Path(extract_dir) if extract_dir else None
        self.session: TapeSession | None = None
        self.reader: TapeReader | None = None
        self._done_with: str | None = None  # what is loaded and finished: do not read it again
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, name: str, options: dict) -> "TapeDriver":
        return cls(name, **{k: v for k, v in options.items() if v is not None})

    def start(self) -> None:
        """A device path that can never hold a tape is an error; a missing one (a drive not
        yet attached, an image not yet copied) is waited for, and reported as degraded."""
        if os.path.isdir(self.device):
            raise IsADirectoryError(f"tape device {self.device} is a directory, not a tape drive or tape image")
        if self._is_drive() and os.path.exists(self.device) and not self._answers_as_tape():
            raise OSError(f"tape device {self.device} is a character device but not a tape drive "
                          "(it does not answer the tape status request)")
        log.info("event=source_started source=%s device=%s eject=%s", self.name, self.device, self.eject)

    def _answers_as_tape(self) -> bool:
        try:
            fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return True  # busy or no medium: a drive, but not ours to judge now
        try:
            return TapeDevice(self.device, fd=fd, policy=self.policy).status() is not None
        except TapeError:
            return True  # a drive that failed to answer is still a drive
        finally:
            os.close(fd)

    def degraded(self) -> str | None:
        """Why no tape can be read now, if it is not the ordinary wait for the next tape."""
        if not os.path.exists(self.device):
            return f"tape device {self.device} does not exist"
        return None

    def stop(self) -> None:
        with self._lock:
            if self.reader is not None:
                self.reader.close()
                self.reader = None

    # -- waiting for a tape ---------------------------------------------------------------

    def _is_drive(self) -> bool:
        try:
            return stat.S_ISCHR(os.stat(self.device).st_mode) or self.format == "device"
        except OSError:
            return self.format == "device"

    def _loaded(self) -> str | None:
        """A token that changes when another tape is loaded, or None while there is none."""
        if self._is_drive():
            try:
                fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                return None
            try:
                st = TapeDevice(self.device, fd=fd, policy=self.policy).status()
            except TapeError:
                return None
            finally:
                os.close(fd)
            return "loaded" if st is None or (st.online and not st.door_open) else None
        try:
            st = os.stat(self.device)
        except OSError:
            return None
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"

    def _wait(self, stop: threading.Event) -> str | None:
        """Block until a tape not yet done is there; None when told to stop."""
        previous = None
        while not stop.is_set():
            token = self._loaded()
            if token is None:
                self._done_with = None  # the drive was emptied: the next tape is new
            elif token != self._done_with:
                if self._is_drive() or token == previous:  # an image must stop changing first
                    return token
            previous = token
            stop.wait(self.poll_interval)
        return None

    def open_reader(self) -> TapeReader:
        """The reader of the loaded tape (tests put a double of ``st`` here)."""
        return open_tape(self.device, self.format, block_size=self.block_size or None, policy=self.policy)

    # -- reading --------------------------------------------------------------------------

    def captures(self, stop: threading.Event) -> Iterator[Capture | None]:
        while not stop.is_set():
            token = self._wait(stop)
            if token is None:
                return
            try:
                reader = self.open_reader()
            except (TapeError, OSError) as exc:
                log.error("event=tape_open_failed source=%s device=%s error=%r", self.name, self.device, str(exc))
                stop.wait(self.poll_interval)
                continue
            with self._lock:
                self.reader = reader
            try:
                yield from self._read(reader, stop)
            except TapeError as exc:
                log.error("event=tape_failed source=%s device=%s error=%r", self.name, self.device, str(exc))
                yield None  # what this tape's session has staged is committed now ...
                if self.session is not None:
                    self.session.journal_settled(quiet=True)  # ... and journaled
                stop.wait(self.poll_interval)
                continue
            finally:
                self.stop()
            if not stop.is_set():
                self._done_with = token if not self._is_drive() else self._done_with

    def _read(self, reader: TapeReader, stop: threading.Event) -> Iterator[Capture | None]:
        fingerprint = reader.fingerprint()
        journal = TapeJournal.open(self.state_dir, fingerprint, self.device, reader.kind, resume=True)
        self.session = session = TapeSession(reader, self.name, journal=journal, fingerprint=fingerprint, resume=True,
                                             extract_dir=self.extract_dir, max_bytes=self.max_file_size, stop=stop)
        log.info("event=tape_loaded source=%s device=%s tape=%s", self.name, self.device, fingerprint)
        yield from session.captures()
        s = session.summary
        if stop.is_set() or s.interrupted:
            return
        counts = s.counts
        log.info("event=tape_done source=%s tape=%s volume=%s resumed_at=%d %s%s", self.name, fingerprint,
                 s.volume or "-", s.resumed_at, " ".join(f"{k}={v}" for k, v in sorted(counts.items())),
                 f" end={s.end_reason!r}" if s.end_reason else "")
        if isinstance(reader, TapeDevice):
            reader.rewind()
            if self.eject:
                reader.unload()
                log.info("event=tape_ejected source=%s device=%s", self.name, self.device)
            else:
                self._done_with = "loaded"  # stays in the drive: wait until it is taken out

    # -- verdicts -------------------------------------------------------------------------

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        if self.session is not None:
            self.session.ack(capture, sop_instance_uid)

    def reject(self, capture: Capture, reason: str) -> None:
        if self.session is not None:
            self.session.reject(capture, reason)

    def defer(self, capture: Capture) -> None:
        if self.session is not None:
            self.session.defer(capture)
