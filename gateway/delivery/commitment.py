"""Storage Commitment results (N-EVENT-REPORT) from destinations that keep our files' fate.

After the C-STOREs of a batch, the forwarder sends an N-ACTION naming the instances under a
new Transaction UID and moves their rows to ``committing``. The PACS answers later with an
N-EVENT-REPORT: on the same association if it is still open, or, as most PACS do (Orthanc
1.10 always does), on a new association it opens to our AE title, looked up in its own list
of modalities. So the gateway listens (``commitment.host``/``port`` in the configuration) and
the PACS must know our AE title with that address. Reports are matched by Transaction UID in
the spool, so one arriving after a restart still counts. Committed instances are delivered;
failed ones are sent again, or dead-lettered when the PACS says it will never take them.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification

from gateway.delivery.outcomes import Outcome, classify_commitment_failure
from gateway.delivery.spool import Spool

log = logging.getLogger("gateway.delivery.commitment")

SUCCESS, PROCESSING_FAILURE = 0x0000, 0x0110


class ReportHandler:
    """Records what an N-EVENT-REPORT says; bound to our listener and to our own associations."""

    def __init__(self, spool: Spool, on_result: Callable[[str, str, bool], None] | None = None):
        self.spool = spool
        self.on_result = on_result  # (destination, sop_instance_uid, committed)

    def __call__(self, event) -> tuple[int, None]:
        try:
            return self.handle(event.event_type, event.event_information), None
        except Exception:  # noqa: BLE001 - a malformed report must not kill the association
            log.exception("event=commitment_report_error")
            return PROCESSING_FAILURE, None

    def handle(self, event_type: int, info) -> int:
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
        done = self.spool.committed(transaction, committed)
        failed = self.spool.commitment_failed(transaction, failures, next_attempt=time.time())
        log.info("event=commitment_report transaction=%s committed=%d failed=%d unknown=%d", transaction,
                 len(done), len(failed), len(committed) + len(failures) - len(done) - len(failed))
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
        self.server = ae.start_server((self.host, self.port), block=False,
                                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.handler)])
        log.info("event=commitment_listener_started ae=%s address=%s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
