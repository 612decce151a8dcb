"""What the operator sees, as plain data: the console's JSON API and ``status --json`` share it.

Everything here reads what is on disk (the spool database, quarantine folders, tape journals,
the running service's state file) or what the running service hands in (destination health,
recent arrivals), and returns JSON-ready dicts. Patient names, IDs and birth dates are never
part of it, except the name of a recent arrival when the configuration asks for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from gateway.config import Config
from gateway.delivery.spool import COMMITTING, DEAD, IN_FLIGHT, QUEUED, Spool, pid_alive

ARRIVALS = 50            # recent arrivals kept in memory for the console
QUARANTINE_LISTED = 200  # newest quarantined captures listed per source


@dataclass
class Arrival:
    """One instance that became durable in the spool, as the console lists it."""

    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    format: str
    source: str
    origin: str
    received: float
    destinations: tuple[str, ...]
    patient_name: str | None = None  # only when the configuration shows names


class Arrivals:
    """The last ``ARRIVALS`` instances with their thumbnails (kept here, since a delivered spool
    file is gone a moment later)."""

    def __init__(self, keep: int = ARRIVALS):
        self._items: deque[tuple[Arrival, bytes | None]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, arrival: Arrival, preview: bytes | None) -> None:
        with self._lock:
            self._items.appendleft((arrival, preview))

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**asdict(a), "preview": p is not None} for a, p in self._items]

    def preview(self, sop_instance_uid: str) -> bytes | None:
        with self._lock:
            return next((p for a, p in self._items if a.sop_instance_uid == sop_instance_uid), None)


# -- destinations ---------------------------------------------------------------------------


def destinations(config: Config, spool: Spool, live: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    """Per configured destination: counts, and a state an operator can act on.

    ``live`` is the running service's view (``{name: {"up": bool, "reason": str, "since": t}}``);
    without it the state is judged from the spool alone.
    """
    counts = {st.destination: st for st in spool.status()}
    out = []
    for dest in config.destinations:
        st = counts.get(dest.name)
        row: dict[str, Any] = {
            "name": dest.name, "address": dest.address, "enabled": dest.enabled,
            "queued": st.queued if st else 0, "in_flight": st.in_flight if st else 0,
            "delivered": st.delivered if st else 0, "dead": st.dead if st else 0,
            "committing": st.committing if st else 0, "oldest_waiting": st.oldest_waiting if st else None,
        }
        row["last_error"] = st.last_error if st else None
        row["last_error_at"] = st.last_error_at if st else None
        row["state"], row["detail"] = _state(dest.enabled, (live or {}).get(dest.name), _last_outcome(spool, dest.name))
        out.append(row)
    return out


def _last_outcome(spool: Spool, destination: str) -> dict[str, Any] | None:
    """The delivery row of this destination that changed last (its state and reason)."""
    rows = spool.deliveries(destination=destination, limit=1, newest_first=True)
    return rows[0] if rows else None


def _state(enabled: bool, live: dict | None, last: dict | None) -> tuple[str, str]:
    if not enabled:
        return "disabled", ""
    if live is not None and not live.get("up", True):
        return "unreachable", live.get("reason", "")
    if last is None:
        return ("up" if live else "unknown"), ""
    if last["state"] == DEAD:
        return "refusing", last["reason"] or ""
    if last["state"] == QUEUED and last["attempts"]:
        return "retrying", last["reason"] or ""
    return "up", ""  # its last outcome was a success (or is under way)


# -- the queue --------------------------------------------------------------------------------


def queue(spool: Spool, states: Iterable[str] = (QUEUED, IN_FLIGHT, COMMITTING, DEAD), destination: str | None = None,
          limit: int = 200) -> list[dict[str, Any]]:
    """Delivery rows an operator may act on; UIDs, places and reasons, never patient data."""
    keys = ("sop_instance_uid", "destination", "state", "attempts", "status", "reason", "queued_at", "updated",
            "next_attempt", "study_uid", "series_uid", "source", "origin")
    return [{k: row.get(k) for k in keys} for row in spool.rows(destination, list(states), limit=limit)]


# -- quarantine -------------------------------------------------------------------------------


def quarantine(config: Config) -> list[dict[str, Any]]:
    """Per folder source: how many captures are quarantined, the newest with their reasons."""
    out = []
    for source in config.sources:
        if source.type != "folder" or "path" not in source.options:
            continue
        folder = Path(source.options.get("quarantine_dir") or Path(source.options["path"]) / "quarantine")
        files = sorted((p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".reason.txt")),
                       key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
        listed = [{"file": str(p.relative_to(folder)), "time": p.stat().st_mtime, "reason": _reason(p)}
                  for p in files[:QUARANTINE_LISTED]]
        out.append({"source": source.name, "folder": str(folder), "count": len(files), "files": listed})
    return out


def _reason(path: Path) -> str:
    note = path.with_name(path.name + ".reason.txt")
    try:
        text = note.read_text(errors="replace")
    except OSError:
        return "(no reason recorded)"
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("reason:")),
                text.strip())


# -- tapes ----------------------------------------------------------------------------------------


def tapes(state_dir: Path) -> list[dict[str, Any]]:
    """Every tape read so far (its journal): progress by outcome, and what failed where."""
    out = []
    for journal in sorted((Path(state_dir) / "tape").glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True):
        counts: dict[str, int] = {}
        failures, medium, sessions, last = [], "", 0, 0.0
        for entry in _entries(journal):
            if "session" in entry:
                sessions, medium = max(sessions, int(entry["session"])), entry.get("medium", medium)
            elif "status" in entry:
                counts[entry["status"]] = counts.get(entry["status"], 0) + 1
                last = max(last, float(entry.get("time", 0)))
                if entry["status"] in ("rejected", "damaged", "oversize"):
                    failures.append({"file": entry.get("file"), "status": entry["status"],
                                     "reason": entry.get("reason", "")})
        out.append({"journal": journal.name, "medium": medium, "sessions": sessions, "files": sum(counts.values()),
                    "by_outcome": counts, "failures": failures[-50:], "last_update": last or journal.stat().st_mtime})
    return out


def _entries(path: Path) -> Iterable[dict]:
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


# -- the running service ------------------------------------------------------------------------

SERVICE_FILE = "service.json"
STALE_AFTER = 30.0  # a state file not refreshed this long belongs to a service that is gone


def write_service_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Atomically replace the running service's state file (read by ``status`` elsewhere)."""
    path = Path(state_dir) / SERVICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**state, "updated": time.time()}))
    tmp.replace(path)


def read_service_state(state_dir: Path) -> dict[str, Any] | None:
    """The running service's last state, or None when no service is running on this state."""
    try:
        state = json.loads((Path(state_dir) / SERVICE_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if time.time() - state.get("updated", 0) > STALE_AFTER or not (isinstance(pid, int) and pid_alive(pid)):
        return None
    return state


def intake(spool: Spool) -> dict[str, Any]:
    """Whether the spool takes new instances: paused at the free-space floor (read from the disk,
    so it is true whether or not a service runs)."""
    room = spool.space.room()
    paused = room.free < room.floor
    return {"paused": paused, "free_bytes": room.free, "floor_bytes": room.floor,
            "reason": (room.describe() + "; sources are not acknowledged until space is freed") if paused
            else room.describe()}


# -- all of it ------------------------------------------------------------------------------------


def overview(config: Config, spool: Spool, service: dict[str, Any] | None) -> dict[str, Any]:
    """The whole picture, and whether anything needs the operator's attention (and what)."""
    live = (service or {}).get("destinations")
    dests = destinations(config, spool, live)
    quarantined = quarantine(config)
    attention = []
    if service is None:
        attention.append("no service is running on this spool")
    for d in dests:
        if d["state"] in ("unreachable", "refusing", "retrying"):
            attention.append(f"destination {d['name']} is {d['state']}" + (f": {d['detail']}" if d["detail"] else ""))
        if d["dead"]:
            attention.append(f"destination {d['name']} has {d['dead']} dead-lettered instance(s)")
    for s in (service or {}).get("sources", []):
        if s.get("state") not in ("running", "watching", "idle", "reading"):
            attention.append(f"source {s['name']} is {s.get('state')}"
                             + (f": {s['detail']}" if s.get("detail") else ""))
    paused = intake(spool)
    if paused["paused"]:
        attention.append(f"intake is paused: {paused['reason']}")
    for q in quarantined:
        if q["count"]:
            attention.append(f"source {q['source']} has {q['count']} quarantined capture(s)")
    return {
        "service": {"running": service is not None, "pid": (service or {}).get("pid"),
                    "started": (service or {}).get("started"), "config": str(config.path)},
        "destinations": dests,
        "sources": (service or {}).get("sources", [{"name": s.name, "type": s.type, "state": "unknown", "detail": ""}
                                                    for s in config.sources if s.enabled]),
        "intake": paused,
        "quarantine": quarantined,
        "tapes": tapes(config.state_dir),
        "attention": attention,
    }
