"""Helpers shared by the forwarding tests: destinations with short backoffs, a running
forwarder, spooling synthetic instances, waiting for a condition, Orthanc's stored UIDs."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator

import yaml

from gateway.config import Destination, DicomWeb, RetryPolicy, TLSConfig
from gateway.delivery.forwarder import Forwarder
from gateway.delivery.spool import Spool
from tests.support.instances import ct_instance

FAST = RetryPolicy(initial_delay=0.1, max_delay=0.5, give_up_after=3600)


def destination(name: str, port: int, called_ae: str = "ANY", **kw) -> Destination:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout", 5.0)
    return Destination(name=name, host=kw.pop("host", "127.0.0.1"), port=port, called_ae=called_ae,
                       calling_ae=kw.pop("calling_ae", "LEGACYGW"), **kw)


def stow_destination(name: str, url: str, batch: int = 8, connections: int = 1, **web) -> Destination:
    """A ``type: dicomweb`` destination (``web``: DicomWeb's ca, verify, bearer_file, ...)."""
    return Destination(name=name, host="127.0.0.1", port=0, called_ae="", calling_ae="LEGACYGW", type="dicomweb",
                       batch=batch, associations=connections, max_per_association=1 << 30, retry=FAST, timeout=10.0,
                       web=DicomWeb(url=url, **web))


def spool_instances(spool: Spool, count: int, destinations: list[str], **kw) -> list[str]:
    return [spool.add(ct_instance(i, **kw), destinations).sop_instance_uid for i in range(count)]


@contextlib.contextmanager
def forwarding(spool: Spool, destinations: list[Destination], **kw) -> Iterator[Forwarder]:
    forwarder = Forwarder(destinations, spool, "LEGACYGW", **kw)
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def orthanc_uids(orthanc) -> list[str]:
    """SOP Instance UIDs Orthanc stores, one entry per stored instance (one request)."""
    found = orthanc.post("/tools/find", {"Level": "Instance", "Query": {}, "Expand": True})
    return [entry["MainDicomTags"]["SOPInstanceUID"] for entry in found]


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port that completes TCP handshakes (the kernel's backlog) but never answers: a hung
    PACS, the worst kind of down."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def write_config(path: Path, spool_dir: Path, destinations: list[dict], **blocks) -> Path:
    """A service configuration with no sources and no built-in archive."""
    config = {
        "gateway": {"ae_title": "LEGACYGW", "spool_dir": str(spool_dir), "state_dir": str(spool_dir.parent / "state"),
                    "durable": True, "watchdog": False, "log_level": "INFO"},
        "destinations": destinations,
        "sources": [],
        "archive": {"enabled": False},
        **blocks,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tls_config(**kw) -> TLSConfig:
    return TLSConfig(**kw)


def delivery_rows(spool_dir: Path) -> list[tuple[str, str, str]]:
    """(instance, destination, state) of every delivery row, as another process sees them: a
    fresh connection to the spool's database."""
    db = sqlite3.connect(spool_dir / "spool.db")
    try:
        return sorted(db.execute("SELECT sop_instance_uid, destination, state FROM deliveries"))
    finally:
        db.close()
