"""The tape journal: one line per tape file outcome, so an interrupted ingest resumes exactly.

It lives in the state directory as ``tape/<fingerprint>.jsonl`` (the fingerprint identifies
the tape by its first MiB, so a tape moved to another drive or an image copied elsewhere
finds its journal, and a different tape never does). Each line is a JSON object; the lines of
one group of outcomes (those a spool commit settled together) are written with one ``write``
and fsynced once: after a crash or SIGKILL at most the last line is torn, and a torn line is
ignored on load. An outcome is journaled only once it is final (the instance durable in the
spool, a rejection, a label group, a damaged file) and in tape order, so a tape file
interrupted in flight, or staged in a group not yet committed, is simply read again and, its
UIDs being deterministic, sent nothing twice.

A new ingest (without ``--resume``) keeps the previous journal beside it, renamed with its
start time, so the history of every read of a tape stays on disk.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

VERSION = 1
FINAL = ("done", "rejected", "label", "empty", "damaged", "oversize", "skipped")


class TapeJournal:
    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = path
        self.header = header
        self.entries: dict[int, dict[str, Any]] = {}
        self.sessions = 0

    @classmethod
    def open(cls, state_dir: Path | str, fingerprint: str, medium: str, kind: str, resume: bool) -> "TapeJournal":
        directory = Path(state_dir) / "tape"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{fingerprint}.jsonl"
        if path.exists() and not resume:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(path.stat().st_mtime))
            os.replace(path, _free_name(directory / f"{fingerprint}.{stamp}.jsonl"))
        journal = cls(path, {"journal": VERSION, "tape": fingerprint, "kind": kind})
        if path.exists():
            journal._load()
        journal._append({**journal.header, "session": journal.sessions + 1, "medium": medium,
                         "resume_at": journal.resume_point()[0] if resume else 0})
        journal.sessions += 1
        return journal

    @staticmethod
    def previous(state_dir: Path | str, fingerprint: str) -> Path | None:
        """The journal of an earlier read of this tape, if there is one."""
        path = Path(state_dir) / "tape" / f"{fingerprint}.jsonl"
        return path if path.exists() else None

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            raw = f.read()
        for line in raw.split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn line from a crash while writing
            if not isinstance(entry, dict):
                continue
            if "session" in entry:
                self.sessions = max(self.sessions, int(entry["session"]))
            elif isinstance(entry.get("file"), int) and entry.get("status") in FINAL:
                self.entries[entry["file"]] = entry
        if raw and not raw.endswith(b"\n"):
            with open(self.path, "ab") as f:
                f.write(b"\n")  # the torn fragment stays a line of its own

    def _append(self, *entries: dict[str, Any]) -> None:
        data = b"".join((json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n").encode() for e in entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:  # a regular file takes it in one write; a short one is finished, not lost
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def record(self, file: int, status: str, **facts: Any) -> None:
        """Journal the final outcome of tape file ``file`` (durably, before going on)."""
        self.record_all([(file, status, facts)])

    def record_all(self, outcomes: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Journal final outcomes (file, status, facts), in the order given, with one write and
        one fsync: a group's tape files cost one journal flush, not one each."""
        now = round(time.time(), 3)
        entries = []
        for file, status, facts in outcomes:
            if status not in FINAL:
                raise ValueError(f"not a final status: {status!r}")
            entries.append({"file": file, "status": status, "time": now,
                            **{k: v for k, v in facts.items() if v is not None}})
        self._append(*entries)
        for entry in entries:
            self.entries[entry["file"]] = entry

    def done(self, file: int, retry_damaged: bool = False) -> bool:
        """True if the file needs no more reading (a damaged one may be read again on request)."""
        entry = self.entries.get(file)
        return entry is not None and not (retry_damaged and entry["status"] == "damaged")

    def resume_point(self, retry_damaged: bool = False) -> tuple[int, int | None]:
        """(tape file, byte offset) of the first tape file without a final outcome.

        The offset (None for a drive, which spaces over filemarks instead) is where the
        preceding file's journal entry says the next file starts.
        """
        n = 0
        while self.done(n, retry_damaged):
            n += 1
        if n == 0:
            return 0, 0
        return n, self.entries[n - 1].get("end_offset")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    return candidate
