"""Delivery of spooled instances to each destination over C-STORE (DESIGN.md, step 6).

The network lives here alone. Each destination has its own worker thread, so a failing PACS
never delays another. A worker claims due items, opens one association for a batch (contexts
proposed from what is queued), classifies every outcome with ``gateway.outcomes`` and records
it in the spool; retryable failures come back after capped exponential backoff with full
jitter, permanent ones (and items older than the give-up age) are dead-lettered.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.presentation import build_context

from gateway.config import Destination
from gateway.outcomes import (
    ASSOCIATION_ABORTED,
    ASSOCIATION_REJECTED,
    CONNECTION_FAILED,
    CONTEXT_NOT_ACCEPTED,
    FILE_MISSING,
    NO_RESPONSE,
    Outcome,
    Rule,
    classify_status,
)
from gateway.spool import Item, Spool

log = logging.getLogger("gateway.forwarder")

MAX_CONTEXTS = 127  # PS3.8: at most 128 presentation contexts (odd IDs 1..255)
# Send from the spool file without decoding it (pynetdicom reads the Part-10 file in chunks).
_config.STORE_SEND_CHUNKED_DATASET = True
logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def backoff(attempts: int, initial: float, cap: float, rng: random.Random = random.Random()) -> float:
    """Full jitter: a uniform wait up to the capped exponential (AWS architecture blog's form)."""
    return rng.uniform(0, min(cap, initial * (2 ** max(0, attempts))))


def propose_contexts(items: list[Item]) -> list:
    """Per SOP class: one context for each stored transfer syntax exactly (so the file can be
    streamed as it is), and one with the uncompressed little-endian syntaxes as a fallback
    for a peer that refuses the stored one (the instance is then re-encoded)."""
    contexts: dict[tuple[str, tuple[str, ...]], object] = {}
    fallback = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    for item in items:
        for syntaxes in ((item.transfer_syntax,), fallback):
            key = (item.sop_class_uid, syntaxes)
            if key not in contexts and len(contexts) < MAX_CONTEXTS:
                contexts[key] = build_context(item.sop_class_uid, list(syntaxes))
    return list(contexts.values())


class DestinationWorker(threading.Thread):
    def __init__(self, dest: Destination, spool: Spool, ae_title: str, batch: int = 64):
        super().__init__(name=f"forward-{dest.name}", daemon=True)
        self.dest = dest
        self.spool = spool
        self.ae_title = ae_title
        self.batch = batch
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.rng = random.Random()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                sent = self.deliver_due()
            except Exception:  # noqa: BLE001 - a worker must outlive any one failure
                log.exception("event=forward_error destination=%s", self.dest.name)
                sent = 0
            if sent:
                continue
            due = self.spool.next_due(self.dest.name)
            wait = 5.0 if due is None else max(0.0, min(5.0, due - time.time()))
            self.wake.wait(wait)
            self.wake.clear()

    def deliver_due(self) -> int:
        """Send one batch of due items; returns how many were attempted."""
        items = self.spool.claim(self.dest.name, min(self.batch, self.dest.max_per_association))
        if not items:
            return 0
        items = [i for i in items if self._expire_or_keep(i)]
        if items:
            self._send_batch(items)
        return len(items) or 1

    def _expire_or_keep(self, item: Item) -> bool:
        if time.time() - item.queued_at > self.dest.retry.give_up_after:
            self.spool.dead(item, "expired", f"gave up after {self.dest.retry.give_up_after:.0f}s of failures")
            log.warning("event=dead_letter destination=%s sop=%s reason=expired", self.dest.name, item.sop_instance_uid)
            return False
        return True

    def _associate(self, items: list[Item]):
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.dest.timeout
        ae.connection_timeout = self.dest.timeout
        ae.requested_contexts = propose_contexts(items)
        return ae.associate(self.dest.host, self.dest.port, ae_title=self.dest.called_ae)

    def _send_batch(self, items: list[Item]) -> None:
        try:
            assoc = self._associate(items)
        except (OSError, RuntimeError) as exc:
            self._fail_all(items, CONNECTION_FAILED, str(exc))
            return
        if not assoc.is_established:
            rule = ASSOCIATION_REJECTED if assoc.is_rejected else (
                ASSOCIATION_ABORTED if assoc.is_aborted else CONNECTION_FAILED)
            self._fail_all(items, rule, rule.meaning)
            return
        _nodelay(assoc)
        try:
            for index, item in enumerate(items):
                if not assoc.is_established:
                    self._fail_all(items[index:], ASSOCIATION_ABORTED, "association ended mid-batch")
                    return
                self._send_one(assoc, item)
        finally:
            if assoc.is_established:
                assoc.release()

    def _send_one(self, assoc, item: Item) -> None:
        if not Path(item.path).exists():
            self._record(item, FILE_MISSING, "", f"{item.path} missing")
            return
        try:
            status = assoc.send_c_store(self._payload(assoc, item))
        except ValueError as exc:  # no accepted context for this SOP class / transfer syntax
            self._record(item, CONTEXT_NOT_ACCEPTED, "", str(exc))
            return
        except (OSError, RuntimeError) as exc:
            self._record(item, CONNECTION_FAILED, "", str(exc))
            return
        if "Status" not in status:
            self._record(item, NO_RESPONSE, "", NO_RESPONSE.meaning)
            return
        code = int(status.Status)
        rule = classify_status(code)
        comment = str(status.get("ErrorComment", "") or "")
        self._record(item, rule, f"0x{code:04X}", f"{rule.meaning}{': ' + comment if comment else ''}")

    @staticmethod
    def _payload(assoc, item: Item):
        """The file path when the peer accepted the stored syntax (streamed unchanged), else
        the decoded dataset, which pynetdicom re-encodes in an accepted syntax."""
        for cx in assoc.accepted_contexts:
            if cx.abstract_syntax == item.sop_class_uid and cx.transfer_syntax[0] == item.transfer_syntax:
                return item.path
        return dcmread(item.path)

    def _fail_all(self, items: list[Item], rule: Rule, detail: str) -> None:
        for item in items:
            self._record(item, rule, "", detail)

    def _record(self, item: Item, rule: Rule, status: str, detail: str) -> None:
        name, sop = self.dest.name, item.sop_instance_uid
        if rule.outcome is Outcome.DELIVERED:
            self.spool.delivered(item, status or "0x0000")
            if status not in ("", "0x0000"):
                log.warning("event=delivered_with_warning destination=%s sop=%s status=%s detail=%r", name, sop, status, detail)
            else:
                log.info("event=delivered destination=%s sop=%s", name, sop)
        elif rule.outcome is Outcome.RETRY:
            delay = backoff(item.attempts, self.dest.retry.initial_delay, self.dest.retry.max_delay, self.rng)
            self.spool.retry(item, status or rule.meaning, detail, time.time() + delay)
            log.warning("event=retry destination=%s sop=%s status=%s in=%.1fs detail=%r", name, sop, status, delay, detail)
        else:
            self.spool.dead(item, status or rule.meaning, detail)
            log.error("event=dead_letter destination=%s sop=%s status=%s detail=%r", name, sop, status, detail)


def _nodelay(assoc) -> None:
    """Our side never waits for Nagle: each PDU goes out at once."""
    try:
        sock = assoc.dul.socket.socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


class Forwarder:
    """All destination workers; ``notify`` wakes them when something new is spooled."""

    def __init__(self, destinations: list[Destination] | tuple[Destination, ...], spool: Spool, ae_title: str):
        self.spool = spool
        self.workers = {d.name: DestinationWorker(d, spool, ae_title) for d in destinations if d.enabled}

    def start(self) -> None:
        self.spool.recover()
        for worker in self.workers.values():
            worker.start()

    def notify(self, destinations: tuple[str, ...] | list[str] | None = None) -> None:
        for name, worker in self.workers.items():
            if destinations is None or name in destinations:
                worker.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            if worker.is_alive():
                worker.join(timeout)

    def drain(self, timeout: float, destinations: list[str] | None = None) -> bool:
        """Wait until nothing is pending (for one-shot commands); True if drained."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = destinations or list(self.workers)
            if all(self.spool.pending(n) == 0 for n in names):
                return True
            time.sleep(0.1)
        return False
