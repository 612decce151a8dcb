"""The durable spool: Part-10 files plus one SQLite row per (instance, destination).

An instance is durable before anyone is told it was received (DESIGN.md, step 5): the file is
written under a temporary name, fsynced, renamed, the directory fsynced, and only then are its
delivery rows committed (WAL, synchronous=FULL). A file is removed only once every destination
has it. Delivered rows are kept as history, so re-ingesting the same tape sends nothing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from pydicom.dataset import Dataset

QUEUED, IN_FLIGHT, DELIVERED, DEAD = "queued", "in_flight", "delivered", "dead"
STATES = (QUEUED, IN_FLIGHT, DELIVERED, DEAD)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid    TEXT NOT NULL,
    transfer_syntax  TEXT NOT NULL,
    study_uid        TEXT,
    series_uid       TEXT,
    path             TEXT,            -- relative to the spool; NULL once removed
    size             INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    source           TEXT,
    origin           TEXT,
    received         REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    sop_instance_uid TEXT NOT NULL REFERENCES instances(sop_instance_uid),
    destination      TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'in_flight', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_at        REAL NOT NULL,
    next_attempt     REAL NOT NULL,
    updated          REAL NOT NULL,
    last_status      TEXT,
    reason           TEXT,
    PRIMARY KEY (sop_instance_uid, destination)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, next_attempt);
"""


@dataclass(frozen=True)
class Item:
    """One instance waiting for one destination."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    destination: str
    path: Path
    size: int
    attempts: int
    queued_at: float


@dataclass(frozen=True)
class Added:
    sop_instance_uid: str
    queued: tuple[str, ...]  # destinations newly queued (empty: all already had it)


@dataclass(frozen=True)
class DestinationStatus:
    destination: str
    queued: int
    in_flight: int
    delivered: int
    dead: int
    oldest_waiting: float | None  # queued_at of the oldest undelivered item
    last_error: str | None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode(ds: Dataset) -> bytes:
    """The Part-10 bytes of a normalised dataset."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class Spool:
    def __init__(self, directory: str | Path, durable: bool = True):
        self.directory = Path(directory)
        self.files = self.directory / "files"
        self.tmp = self.directory / "tmp"
        self.durable = durable
        for d in (self.directory, self.files, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.directory / "spool.db", timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- intake ---------------------------------------------------------------------------

    def add(self, ds: Dataset, destinations: Iterable[str], source: str = "", origin: str = "") -> Added:
        """Make ``ds`` durable and queue it for each destination that does not have it yet."""
        return self.add_bytes(encode(ds), ds, destinations, source, origin)

    def add_bytes(self, data: bytes, ds: Dataset, destinations: Iterable[str], source: str = "",
                  origin: str = "") -> Added:
        uid = str(ds.SOPInstanceUID)
        digest = hashlib.sha256(data).hexdigest()
        rel = self._relpath(uid, digest)
        now = time.time()
        with self._lock:
            row = self._db.execute("SELECT sha256, path FROM instances WHERE sop_instance_uid=?", (uid,)).fetchone()
            same = row is not None and row[0] == digest
            queued = [d for d in dict.fromkeys(destinations) if not (same and self._has(uid, d))]
            if not queued:
                return Added(uid, ())  # every destination has it, or will: nothing is sent twice
            kept = same and row[1] and (self.directory / row[1]).exists()
            if not kept:
                self._write(rel, data)
            with self._tx() as db:
                if same:
                    db.execute("UPDATE instances SET path=? WHERE sop_instance_uid=?", (row[1] if kept else rel, uid))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (uid, str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID),
                         str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")),
                         rel, len(data), digest, source, origin, now),
                    )
                db.executemany(
                    "INSERT OR REPLACE INTO deliveries VALUES (?,?,?,0,?,?,?,NULL,NULL)",
                    [(uid, dest, QUEUED, now, now, now) for dest in queued],
                )
            if row is not None and row[1] and not kept and row[1] != rel:
                self._unlink(row[1])  # a changed object replaces the old file
        return Added(uid, tuple(queued))

    def _has(self, uid: str, destination: str) -> bool:
        row = self._db.execute(
            "SELECT state FROM deliveries WHERE sop_instance_uid=? AND destination=?", (uid, destination)
        ).fetchone()
        return row is not None and row[0] in (DELIVERED, QUEUED, IN_FLIGHT)

    def _relpath(self, uid: str, digest: str) -> str:
        return f"files/{digest[:2]}/{uid}.{digest[:8]}.dcm"

    def _write(self, rel: str, data: bytes) -> None:
        final = self.directory / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{final.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, final)
        if self.durable:
            _fsync_dir(final.parent)

    def _unlink(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / rel).unlink()

    # -- delivery -------------------------------------------------------------------------

    def recover(self) -> int:
        """After a crash, whatever was in flight is due again now."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET state=?, next_attempt=?, updated=? WHERE state=?",
                (QUEUED, time.time(), time.time(), IN_FLIGHT),
            )
            return cur.rowcount

    def claim(self, destination: str, limit: int, now: float | None = None) -> list[Item]:
        """Mark up to ``limit`` due items in flight and return them, oldest first."""
        now = time.time() if now is None else now
        with self._tx() as db:
            rows = db.execute(
                """SELECT d.sop_instance_uid, i.sop_class_uid, i.transfer_syntax, i.path, i.size,
                          d.attempts, d.queued_at
                   FROM deliveries d JOIN instances i USING (sop_instance_uid)
                   WHERE d.destination=? AND d.state=? AND d.next_attempt<=?
                   ORDER BY d.next_attempt, d.queued_at LIMIT ?""",
                (destination, QUEUED, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET state=?, updated=? WHERE sop_instance_uid=? AND destination=?",
                [(IN_FLIGHT, now, r[0], destination) for r in rows],
            )
        return [Item(r[0], r[1], r[2], destination, self.directory / r[3], r[4], r[5], r[6]) for r in rows]

    def next_due(self, destination: str) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_attempt) FROM deliveries WHERE destination=? AND state=?", (destination, QUEUED)
        ).fetchone()
        return row[0]

    def delivered(self, item: Item, status: str) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE deliveries SET state=?, attempts=attempts+1, updated=?, last_status=?, reason=NULL
                   WHERE sop_instance_uid=? AND destination=?""",
                (DELIVERED, time.time(), status, item.sop_instance_uid, item.destination),
            )
        self._remove_if_done(item.sop_instance_uid)

    def retry(self, item: Item, status: str, reason: str, next_attempt: float, count_attempt: bool = True) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE deliveries SET state=?, attempts=attempts+?, next_attempt=?, updated=?,
                   last_status=?, reason=? WHERE sop_instance_uid=? AND destination=?""",
                (QUEUED, 1 if count_attempt else 0, next_attempt, time.time(), status, reason,
                 item.sop_instance_uid, item.destination),
            )

    def dead(self, item: Item, status: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE deliveries SET state=?, attempts=attempts+1, updated=?, last_status=?, reason=?
                   WHERE sop_instance_uid=? AND destination=?""",
                (DEAD, time.time(), status, reason, item.sop_instance_uid, item.destination),
            )

    def _remove_if_done(self, uid: str) -> None:
        """Drop the file once every destination has the instance (dead letters keep it)."""
        with self._tx() as db:
            pending = db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE sop_instance_uid=? AND state!=?", (uid, DELIVERED)
            ).fetchone()[0]
            if pending:
                return
            row = db.execute("SELECT path FROM instances WHERE sop_instance_uid=?", (uid,)).fetchone()
            if row is None or row[0] is None:
                return
            db.execute("UPDATE instances SET path=NULL WHERE sop_instance_uid=?", (uid,))
        self._unlink(row[0])

    # -- inspection -----------------------------------------------------------------------

    def status(self) -> list[DestinationStatus]:
        with self._lock:
            rows = self._db.execute(
                """SELECT destination,
                          SUM(state='queued'), SUM(state='in_flight'), SUM(state='delivered'), SUM(state='dead'),
                          MIN(CASE WHEN state IN ('queued', 'in_flight') THEN queued_at END)
                   FROM deliveries GROUP BY destination ORDER BY destination"""
            ).fetchall()
            result = []
            for dest, q, f, d, x, oldest in rows:
                err = self._db.execute(
                    """SELECT reason FROM deliveries WHERE destination=? AND reason IS NOT NULL
                       ORDER BY updated DESC LIMIT 1""",
                    (dest,),
                ).fetchone()
                result.append(DestinationStatus(dest, q or 0, f or 0, d or 0, x or 0, oldest, err[0] if err else None))
            return result

    def pending(self, destination: str | None = None) -> int:
        """Items not yet delivered nor dead-lettered."""
        sql = "SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'in_flight')"
        args: tuple = ()
        if destination:
            sql += " AND destination=?"
            args = (destination,)
        with self._lock:
            return self._db.execute(sql, args).fetchone()[0]

    def deliveries(self, destination: str | None = None, state: str | None = None, limit: int = 1000) -> list[dict]:
        sql = "SELECT * FROM deliveries WHERE 1=1"
        args: list = []
        if destination:
            sql += " AND destination=?"
            args.append(destination)
        if state:
            sql += " AND state=?"
            args.append(state)
        sql += " ORDER BY queued_at LIMIT ?"
        args.append(limit)
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def files_on_disk(self) -> list[Path]:
        return sorted(p for p in self.files.rglob("*.dcm"))
