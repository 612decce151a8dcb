"""A small pynetdicom Storage SCP whose answers a test chooses (0xA700, warnings, 0xA900 ...).

Real peers cannot be told to run out of resources on demand, so tests of the retry and
warning paths use this one. It records every C-STORE it receives (SOP Instance UID, which
association, the status it answered) and the most associations it had open at once.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from tests.support.peers import free_port

# policy(sop_instance_uid, how many times this UID was offered before) -> status to answer
Policy = Callable[[str, int], int]


def storage_ae(aet: str, *services: str) -> AE:
    """A pynetdicom AE that accepts every storage SOP class, and ``services`` (Verification,
    Storage Commitment), in implicit or explicit VR little endian: a test's own small peer."""
    ae = AE(ae_title=aet)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    for service in services:
        ae.add_supported_context(service, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    return ae


@dataclass
class StatusSCP:
    policy: Policy = lambda uid, seen: 0x0000
    aet: str = "STATUSSCP"
    port: int = 0
    max_associations: int = 10
    receipts: list[tuple[str, int, int]] = field(default_factory=list)  # (uid, association id, status)
    associations: int = 0
    open_now: int = 0
    most_open: int = 0
    in_progress: set = field(default_factory=set)
    concurrent_duplicates: int = 0  # the same UID being received on two associations at once

    def __post_init__(self):
        self.lock = threading.Lock()
        self.offered: Counter = Counter()
        self.server = None

    def _on_open(self, event) -> None:
        with self.lock:
            self.associations += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            event.assoc.test_id = self.associations

    def _on_close(self, event) -> None:
        with self.lock:
            self.open_now -= 1

    def _on_store(self, event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        with self.lock:
            if uid in self.in_progress:
                self.concurrent_duplicates += 1
            self.in_progress.add(uid)
            seen = self.offered[uid]
            self.offered[uid] += 1
        try:
            status = self.policy(uid, seen)
        finally:
            with self.lock:
                self.in_progress.discard(uid)
                self.receipts.append((uid, getattr(event.assoc, "test_id", 0), status))
        return status

    def start(self) -> "StatusSCP":
        self.port = self.port or free_port()
        ae = storage_ae(self.aet, Verification)
        ae.maximum_associations = self.max_associations
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_ESTABLISHED, self._on_open),
                    (evt.EVT_RELEASED, self._on_close), (evt.EVT_ABORTED, self._on_close)]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        self.server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def stored(self) -> list[str]:
        """UIDs answered with success or a warning (what a PACS would have kept), with repeats."""
        return [uid for uid, _, status in self.receipts if status in (0x0000, 0xB000, 0xB006, 0xB007)]
