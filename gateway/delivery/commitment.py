"""Storage Commitment results (N-EVENT-REPORT) from destinations that keep our files' fate.

After the C-STOREs of a batch, the forwarder sends an N-ACTION naming the instances under a
new Transaction UID and moves their rows to ``committing``. The PACS answers later with an
N-EVENT-REPORT: on the same association if it is still open, or, as most PACS do (Orthanc
1.10 always does), on a new association it opens to our AE title, looked up in its own list
of modalities. So the gateway listens (``commitment.host``/``port`` in the configuration) and
the PACS must know our AE title with that address. Reports are matched by Transaction UID in
the spool, so one arriving after a restart still counts. Committed instances are delivered;
failed ones are sent again, or dead-lettered when the PACS says it will never take them.

A report makes the gateway delete patient data it holds, so it must not be forgeable:

- the listener accepts associations only from the AE titles of destinations that use
  commitment (``commitment_ae``, default ``called_ae``) and, where ``commitment_hosts`` is
  configured, only from those addresses; a report on our own association to a destination
  speaks for that destination alone;
- a report is applied only to the rows of the destination(s) it speaks for, only when the
  Transaction UID is one we issued to them, and only if every instance it names was in that
  transaction: a report naming anything else is refused whole;
- Transaction UIDs are ``2.25.`` + a random (version 4) UUID: 122 bits from the OS's random
  source, never guessed; they are logged at DEBUG only.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
import uuid
from typing import Callable, Iterable

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification

from gateway.config import Destination
from gateway.delivery.outcomes import Outcome, classify_commitment_failure
from gateway.delivery.spool import Spool
from gateway.errors import listen_error

log = logging.getLogger("gateway.delivery.commitment")

SUCCESS, PROCESSING_FAILURE = 0x0000, 0x0110


def new_transaction_uid() -> str:
    """A Transaction UID nobody can guess: ``2.25.`` and a random UUID as an integer."""
    return f"2.25.{uuid.uuid4().int}"


def report_ae(dest: Destination) -> str:
    """The AE title a destination's reports come from."""
    return dest.commitment_ae or dest.called_ae


def _addresses(hosts: Iterable[str]) -> set[str]:
    """The IP addresses of configured hosts (names resolved now; one that does not resolve
    matches nothing)."""
    found: set[str] = set()
    for host in hosts:
        try:
            found.add(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        try:
            found.update(info[4][0] for info in socket.getaddrinfo(host, None))
        except OSError:
            log.warning("event=commitment_host_unresolved host=%s", host)
    return found


class ReportHandler:
    """Records what an N-EVENT-REPORT says, for the destinations its sender may speak for.

    Called by our listener (the sender is known by its calling AE title and address) and, via
    ``for_destination``, by our own associations (the sender is the destination we opened to).
    """

    def __init__(self, spool: Spool, destinations: Iterable[Destination] = (),
                 on_result: Callable[[str, str, bool], None] | None = None):
        self.spool = spool
        self.on_result = on_result  # (destination, sop_instance_uid, committed)
        self.senders = [(d.name, report_ae(d), _addresses(d.commitment_hosts))
                        for d in destinations if d.storage_commitment]

    def calling_aes(self) -> list[str]:
        """The AE titles the listener accepts associations from."""
        return sorted({ae for _, ae, _ in self.senders})

    def speaks_for(self, ae_title: str, address: str) -> set[str]:
        """The destinations a report from ``ae_title`` at ``address`` may settle."""
        return {name for name, ae, hosts in self.senders if ae == ae_title and (not hosts or address in hosts)}

    def __call__(self, event) -> tuple[int, None]:
        """The listener's EVT_N_EVENT_REPORT handler."""
        peer = event.assoc.requestor
        ae_title, address = str(peer.ae_title).strip(), str(peer.address)
        allowed = self.speaks_for(ae_title, address)
        if not allowed:
            log.warning("event=commitment_report_refused calling_ae=%s address=%s reason=%r", ae_title, address,
                        "not the AE title and address of a destination using storage commitment")
            return PROCESSING_FAILURE, None
        return self._safely(event, allowed)

    def for_destination(self, name: str) -> Callable:
        """The handler for reports on our own association to destination ``name``."""
        return lambda event: self._safely(event, {name})

    def _safely(self, event, allowed: set[str]) -> tuple[int, None]:
        try:
            return self.handle(event.event_type, event.event_information, allowed), None
        except Exception:  # noqa: BLE001 - a malformed report must not kill the association
            log.exception("event=commitment_report_error")
            return PROCESSING_FAILURE, None

    def handle(self, event_type: int, info, allowed: set[str]) -> int:
        """Apply a report from a sender that may speak for the ``allowed`` destinations."""
        if event_type not in (1, 2) or info is None or "TransactionUID" not in info:
            log.warning("event=commitment_report_ignored event_type=%s", event_type)
            return SUCCESS
        transaction = str(info.TransactionUID)
        committed = [str(ref.ReferencedSOPInstanceUID) for ref in info.get("ReferencedSOPSequence", [])]
        failures = []
        for ref in info.get("FailedSOPSequence", []):
            code = int(ref.FailureReason) if "FailureReason" in ref else None
            rule = classify_commitment_failure(code)
            status = f"commitment failed 0x{code:04X}" if code is not None else "commitment failed"
            failures.append((str(ref.ReferencedSOPInstanceUID), status,
                             f"storage commitment failed: {rule.meaning}", rule.outcome is Outcome.PERMANENT))
        log.debug("event=commitment_report transaction=%s destinations=%s", transaction, ",".join(sorted(allowed)))
        members = self.spool.transaction(transaction)
        if not members:
            # Not one of ours, or one long settled and sent again since: nothing to change.
            log.warning("event=commitment_report_unknown destinations=%s named=%d", ",".join(sorted(allowed)),
                        len(committed) + len(failures))
            return SUCCESS
        mine = set().union(*(members.get(name, set()) for name in allowed))
        outside = [uid for uid in committed + [f[0] for f in failures] if uid not in mine]
        if not mine or outside:
            log.warning("event=commitment_report_refused destinations=%s named=%d outside=%d reason=%r",
                        ",".join(sorted(allowed)), len(committed) + len(failures), len(outside),
                        "names instances not sent to these destinations under that transaction")
            return PROCESSING_FAILURE
        done = self.spool.committed(transaction, committed, allowed)
        failed = self.spool.commitment_failed(transaction, failures, allowed, next_attempt=time.time())
        log.info("event=commitment_report committed=%d failed=%d unchanged=%d", len(done), len(failed),
                 len(committed) + len(failures) - len(done) - len(failed))
        if self.on_result:
            for uid, dest in done:
                self.on_result(dest, uid, True)
            for uid, dest in failed:
                self.on_result(dest, uid, False)
        return SUCCESS


class Listener:
    """Our Storage Commitment SCU's listening side: accepts the PACS's report associations."""

    def __init__(self, handler: ReportHandler, ae_title: str, host: str, port: int):
        self.handler = handler
        self.ae_title, self.host, self.port = ae_title, host, port
        self.server = None

    def start(self) -> None:
        ae = AE(ae_title=self.ae_title)
        # The PACS opens this association as the Storage Commitment SCP: accept either role
        # selection it proposes (PS3.4 J.3.3 asks it to propose SCP role).
        ae.add_supported_context(StorageCommitmentPushModel, [ImplicitVRLittleEndian, ExplicitVRLittleEndian],
                                 scu_role=True, scp_role=True)
        ae.add_supported_context(Verification)
        ae.require_called_aet = False
        # Only the destinations' own AE titles may even associate (the handler checks the rest).
        ae.require_calling_aet = self.handler.calling_aes() or ["-NO-DESTINATION-"]
        try:
            self.server = ae.start_server((self.host, self.port), block=False,
                                          evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.handler)])
        except (OSError, OverflowError) as exc:
            raise listen_error("storage commitment reports", self.host, self.port, exc) from None
        log.info("event=commitment_listener_started ae=%s address=%s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
