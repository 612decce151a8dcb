"""Export-folder driver: files a console or a copy job drops into a folder become captures.

A file is taken only when it is complete: its size and mtime unchanged for the settle time, and
no process holding it open for writing. Hidden files, ``*.partial`` and ``*.tmp`` are never
taken. Files already present at start are taken too (catch-up after downtime). A file leaves
the folder only after the pipeline's verdict: ``ack`` (instance durable in the spool) moves it
to ``done/`` (or deletes or keeps it), ``reject`` moves it to ``quarantine/`` beside a
``.reason.txt`` (written first, so a crash never leaves a quarantined file without its reason;
a start-up sweep gives one to any file an older version left without). A file larger than
``max_file_size`` is quarantined unread; others are read one at a time and the bytes are let go
once the verdict is in. inotify is the default; shares (NFS, CIFS) need the polling observer because
changes made by other hosts raise no inotify events.

Objects of several files (an Interfile header and its data file) are grouped by
``drivers.grouping`` with a callable the service gives (``companions``): the group is taken
once every file of it has settled and leaves the folder as one, on ack or reject.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from drivers.driver import Driver
from drivers.grouping import Companions, Grouping
from gateway.capture import Capture, Origin

log = logging.getLogger("drivers.folder")

SKIPPED_SUFFIXES = (".partial", ".tmp", ".reason.txt")
REASON_SUFFIX = ".reason.txt"
DEFAULT_MAX_FILE_SIZE = 2 << 30  # 2 GiB: far above any single image, far below a disk's worth
RESCAN_INTERVAL = 30.0  # a full look even with inotify, in case an event was lost (queue overflow)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    stable_since: float


class FolderDriver(FileSystemEventHandler, Driver):
    wants_companions = True  # the service passes ``companions`` (gateway.formats.companions)
    yields_idle = True       # the files ready at one look are spooled as one group

    def __init__(
        self,
        name: str,
        path: str | Path,
        create: bool = False,
        observer: str = "inotify",
        poll_interval: float = 2.0,
        settle_time: float = 2.0,
        recursive: bool = False,
        after_success: str = "move",
        done_dir: str | Path | None = None,
        quarantine_dir: str | Path | None = None,
        orphan_time: float = 60.0,
        companions: Companions | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ):
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.create = create
        self.observer_kind = observer
        self.poll_interval = poll_interval
        self.settle_time = settle_time
        self.recursive = recursive
        self.after_success = after_success
        self.done_dir = Path(done_dir) if done_dir else self.path / "done"
        self.quarantine_dir = Path(quarantine_dir) if quarantine_dir else self.path / "quarantine"
        self.max_file_size = max_file_size
        self._candidates: dict[Path, _Seen | None] = {}
        self._kept: dict[Path, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._observer = None
        self._groups = Grouping(companions, orphan_time) if companions is not None else None

    @classmethod
    def from_options(cls, name: str, options: dict, companions: Companions | None = None) -> "FolderDriver":
        return cls(name, **options, companions=companions)

    # -- watching -------------------------------------------------------------------------

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for attr in ("src_path", "dest_path"):
            p = getattr(event, attr, None)
            if p:
                self._note(Path(os.fsdecode(p)))

    def _note(self, path: Path) -> None:
        if self._eligible_name(path):
            with self._lock:
                self._candidates.setdefault(path, None)
            self._changed.set()

    def _eligible_name(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.path)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        if path.name.endswith(SKIPPED_SUFFIXES):
            return False
        if _inside(path, self.done_dir) or _inside(path, self.quarantine_dir):
            return False
        return self.recursive or len(rel.parts) == 1

    def _scan(self) -> None:
        pattern = "**/*" if self.recursive else "*"
        for p in self.path.glob(pattern):
            if p.is_file() and not p.is_symlink():
                self._note(p)

    @property
    def exclusive_path(self) -> Path:
        """What one process alone may watch (the service locks it)."""
        return self.path

    def start(self) -> None:
        """Watch the folder (created if missing and ``create``); a path that is not a folder, or a
        missing one without ``create``, is an error."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"folder path {self.path} exists but is not a directory")
        if not self.path.exists() and not self.create:
            raise FileNotFoundError(f"folder path {self.path} does not exist (create it, or set create: true)")
        self.path.mkdir(parents=True, exist_ok=True)
        self._sweep_quarantine()
        obs = PollingObserver(timeout=self.poll_interval) if self.observer_kind == "polling" else Observer()
        obs.schedule(self, str(self.path), recursive=self.recursive)
        obs.daemon = True
        obs.start()
        self._observer = obs
        self._scan()  # catch up on what arrived while we were down
        log.info("event=source_started source=%s path=%s observer=%s", self.name, self.path, self.observer_kind)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None

    # -- taking files ---------------------------------------------------------------------

    def captures(self, stop: threading.Event) -> Iterator[Capture | None]:
        """Yield each complete file once, until ``stop`` is set; None after the files of one look
        (nothing more is ready now: the service commits what it holds before the next look,
        and before a full rescan could offer a file not yet acknowledged again)."""
        if self._observer is None:
            self.start()
        last_scan = time.monotonic()
        tick = max(0.05, min(self.poll_interval, self.settle_time or self.poll_interval) / 2)
        while not stop.is_set():
            ready = self._ready()
            for path in ready:
                if stop.is_set():
                    return
                capture = self._read(path) if self._groups is None else self._groups.take(path, ready, self)
                if capture is not None:
                    yield capture
                    capture = None  # this frame waits below: it must not keep the bytes meanwhile
            yield None
            if time.monotonic() - last_scan > RESCAN_INTERVAL:
                self._scan()
                last_scan = time.monotonic()
            self._changed.wait(tick)
            self._changed.clear()

    def _ready(self) -> list[Path]:
        now = time.monotonic()
        ready = []
        with self._lock:
            items = list(self._candidates.items())
        for path, seen in items:
            try:
                st = path.stat()
            except FileNotFoundError:
                with self._lock:
                    self._candidates.pop(path, None)
                continue
            key = (st.st_size, st.st_mtime_ns)
            if self._kept.get(path) == key:
                with self._lock:
                    self._candidates.pop(path, None)
                continue
            if seen is None or (seen.size, seen.mtime_ns) != key:
                with self._lock:
                    self._candidates[path] = _Seen(st.st_size, st.st_mtime_ns, now)
                continue
            if now - seen.stable_since < self.settle_time:
                continue
            if _open_for_writing(path):
                continue
            ready.append(path)
        return sorted(ready)

    def _read(self, path: Path) -> Capture | None:
        """The file as one capture; a file over ``max_file_size`` is quarantined, never read."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                too_large = st.st_size > self.max_file_size
                data = b"" if too_large else f.read()
        except OSError as exc:
            log.warning("event=read_failed source=%s file=%s error=%s", self.name, path, exc.strerror)
            return None
        with self._lock:
            self._candidates.pop(path, None)
        rel = str(path.relative_to(self.path))
        size = st.st_size if too_large else len(data)
        origin = Origin(self.name, rel, {"path": str(path), "size": size, "mtime_ns": st.st_mtime_ns})
        capture = Capture(data, origin)
        if too_large:
            try:
                self.reject(capture, f"file of {size} bytes is larger than max_file_size ({self.max_file_size} "
                                     "bytes): not read")
            except OSError as exc:  # it stays; the next full look offers it again
                log.error("event=quarantine_failed source=%s file=%s error=%r", self.name, rel, str(exc))
            return None
        return capture

    # -- verdicts -------------------------------------------------------------------------

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        for companion in self._companions(capture):  # the files of a group leave together
            self._after_success(companion)
        moved = self._after_success(Path(capture.origin.details["path"]))
        if moved is not None:
            log.info("event=done source=%s file=%s to=%s sop=%s", self.name, capture.origin.location, moved,
                     sop_instance_uid)
        else:
            log.info("event=done source=%s file=%s action=%s sop=%s", self.name, capture.origin.location,
                     self.after_success, sop_instance_uid)

    def defer(self, capture: Capture) -> None:
        """Not durable (storage failed): the file stays and is offered again (the service waits
        first, longer each time storage keeps failing)."""
        self._note(Path(capture.origin.details["path"]))

    def _after_success(self, path: Path) -> Path | None:
        """Delete, move or keep (remembered, so it is not offered again unless it changes) a
        file whose instance is durable; where it was moved to, if it was."""
        if self.after_success == "delete":
            _remove(path)
        elif self.after_success == "move":
            return _move(path, self.done_dir / path.relative_to(self.path))
        else:
            try:
                st = path.stat()
                self._kept[path] = (st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                pass
        return None

    def _companions(self, capture: Capture) -> list[Path]:
        """The other files of ``capture``'s group (none for a single file)."""
        return self._groups.release(capture) if self._groups is not None else []

    def reject(self, capture: Capture, reason: str) -> None:
        """Quarantine the file: its reason is durable first, then the file moves beside it."""
        companions = self._companions(capture)
        for companion in companions:  # each with its own reason, written first like the main file's
            where = companion.relative_to(self.path)
            dest = _free_name(self.quarantine_dir / where)
            _write_durably(_reason_path(dest), f"file: {where}\nsource: {self.name}\n"
                           f"reason: companion of {capture.origin.location}: {reason}\n")
            if _move(companion, dest) is None:
                _remove(_reason_path(dest))
        if companions:
            reason += "\nwith: " + ", ".join(str(p.relative_to(self.path)) for p in companions)
        if "orphan" in capture.origin.details:
            reason += f"\norphan: {capture.origin.details['orphan']}"
        path = Path(capture.origin.details["path"])
        if not path.exists():
            return
        dest = _free_name(self.quarantine_dir / capture.origin.location)
        size = capture.origin.details.get("size", capture.size)
        _write_durably(_reason_path(dest),
                       f"file: {capture.origin.location}\nsource: {self.name}\nsize: {size}\n"
                       f"quarantined: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\nreason: {reason}\n")
        if _move(path, dest) is None:  # gone meanwhile (someone took it): its reason goes too
            _remove(_reason_path(dest))
        log.warning("event=quarantined source=%s file=%s reason=%r", self.name, capture.origin.location, reason)

    def _sweep_quarantine(self) -> None:
        """Repair what a crash in the middle of ``reject`` left: a quarantined file without a
        reason gets one saying so; a reason whose file never arrived (the file is still in the
        folder and will be judged again) is removed."""
        if not self.quarantine_dir.is_dir():
            return
        for root, _, names in os.walk(self.quarantine_dir):
            present = set(names)
            for name in names:
                path = Path(root) / name
                if name.endswith(REASON_SUFFIX):
                    if name[: -len(REASON_SUFFIX)] not in present:
                        _remove(path)
                elif name.startswith("."):
                    if name.endswith(".tmp"):
                        _remove(path)  # a reason being written when the crash came
                elif name + REASON_SUFFIX not in present:
                    _write_durably(_reason_path(path),
                                   f"file: {path.relative_to(self.quarantine_dir)}\nsource: {self.name}\n"
                                   f"size: {path.stat().st_size}\nreason: unknown: the reason was lost in a crash "
                                   "while this file was quarantined (found by the start-up sweep)\n")
                    log.warning("event=quarantine_repaired source=%s file=%s", self.name, path)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _open_for_writing(path: Path) -> bool:
    """True if some process holds the file open for writing.

    A read lease is refused (EAGAIN) exactly when the file is open for writing anywhere on
    this host; where leases are not available (some file systems) we look through /proc.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                return True
    finally:
        os.close(fd)
    return _proc_writer(path)


def _proc_writer(path: Path) -> bool:
    target = str(path.resolve())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") != target:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = _flags(info.read())
                if flags & (os.O_WRONLY | os.O_RDWR):
                    return True
            except OSError:
                continue
    return False


def _flags(fdinfo: str) -> int:
    for line in fdinfo.splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason_path(path: Path) -> Path:
    return path.with_name(path.name + REASON_SUFFIX)


def _free_name(dest: Path) -> Path:
    """``dest``, or ``dest.1``, ``dest.2``...: the first name no earlier file (nor its reason) has."""
    candidate, n = dest, 1
    while candidate.exists() or _reason_path(candidate).exists():
        candidate = dest.with_name(f"{dest.name}.{n}")
        n += 1
    return candidate


def _write_durably(path: Path, text: str) -> None:
    """Write ``text`` under a temporary name, fsync, rename, fsync the folder: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _move(src: Path, dest: Path) -> Path | None:
    """Move without overwriting an earlier file of the same name; fsync both directories."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    candidate = _free_name(dest) if dest.exists() else dest
    try:
        os.replace(src, candidate)
    except FileNotFoundError:
        return None
    _private(candidate)
    _fsync_dir(candidate.parent)
    _fsync_dir(src.parent)
    return candidate


def _umask() -> int:
    """The process umask, read without changing it (other threads may be creating files)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o077


def _private(path: Path) -> None:
    """A file taken into done/ or quarantine/ keeps the mode the scanner gave it: give it the
    service's (the gateway sets a private umask, see gateway.private)."""
    try:
        os.chmod(path, 0o666 & ~_umask())
    except OSError as exc:
        log.warning("event=chmod_failed file=%s error=%s", path.name, exc.strerror)


def _remove(path: Path) -> None:
    try:
        path.unlink()
        _fsync_dir(path.parent)
    except FileNotFoundError:
        pass
