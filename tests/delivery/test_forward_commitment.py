"""Storage commitment: files are kept until the PACS confirms them by N-EVENT-REPORT.

Orthanc 1.10 (the real peer here) answers the N-ACTION at once and sends its report later on a
new association to the AE title it finds in its DicomModalities, so the gateway listens.
"""

from __future__ import annotations

import threading
import time

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

from gateway.config import Commitment
from gateway.delivery.commitment import ReportHandler
from gateway.delivery.spool import COMMITTING, DEAD, DELIVERED, QUEUED, Settlement, Spool
from tests.support.forwarding import destination, forwarding, orthanc_uids, spool_instances, wait_until
from tests.support.instances import ct_instance
from tests.support.peers import Orthanc, free_port
from tests.support.status_scp import storage_ae


def test_storage_commitment_with_orthanc(tmp_path):
    listen = free_port()
    pacs = Orthanc(tmp_path / "orthanc", extra={"DicomModalities": {"gateway": ["LEGACYGW", "127.0.0.1", listen]}})
    pacs.start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 12, ["pacs"])
        dest = destination("pacs", pacs.dicom_port, called_ae="ORTHANC", storage_commitment=True)
        with forwarding(spool, [dest], commitment=Commitment("127.0.0.1", listen)) as fwd:
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
            # counted as delivered only once committed (just after the rows change)
            assert wait_until(lambda: fwd.metrics.delivered.labels("pacs")._value.get() == 12, 5)
        rows = spool.rows("pacs")
        assert {(r["state"], r["last_status"]) for r in rows} == {(DELIVERED, "committed")}
        assert sorted(orthanc_uids(pacs)) == sorted(uids)
        assert spool.files_on_disk() == []
    finally:
        pacs.stop()


def test_unconfirmed_instances_are_kept_and_sent_again_after_the_commitment_timeout(tmp_path):
    # Orthanc knows our AE title, but at an address where nothing listens: its reports never
    # arrive, so nothing is ever confirmed.
    nowhere = free_port()
    pacs = Orthanc(tmp_path / "orthanc", extra={"DicomModalities": {"gateway": ["LEGACYGW", "127.0.0.1", nowhere]}})
    pacs.start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 4, ["pacs"])
        dest = destination("pacs", pacs.dicom_port, called_ae="ORTHANC", storage_commitment=True,
                           commitment_timeout=1.0)
        with forwarding(spool, [dest], commitment=Commitment("127.0.0.1", free_port())) as fwd:
            assert wait_until(lambda: {r["state"] for r in spool.rows("pacs")} == {COMMITTING}, 10)
            assert len(spool.files_on_disk()) == len(uids)  # sent, not confirmed: kept
            assert wait_until(lambda: all(r["attempts"] >= 2 for r in spool.rows("pacs")), 20)
            assert len(spool.files_on_disk()) == len(uids)
            # re-sent because the commitment timed out (the sweep counts them as retried)
            assert fwd.metrics.retried.labels("pacs")._value.get() >= len(uids)
            assert fwd.metrics.delivered.labels("pacs")._value.get() == 0
        assert sorted(orthanc_uids(pacs)) == sorted(uids)  # sent twice, stored once
    finally:
        pacs.stop()


def test_commitment_request_refused_keeps_files_and_retries(tmp_path):
    # This Orthanc does not know our AE title: it aborts our N-ACTION.
    pacs = Orthanc(tmp_path / "orthanc").start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 3, ["pacs"])
        dest = destination("pacs", pacs.dicom_port, called_ae="ORTHANC", storage_commitment=True)
        with forwarding(spool, [dest], commitment=Commitment("127.0.0.1", free_port())):
            assert wait_until(lambda: all(r["attempts"] >= 2 for r in spool.rows("pacs")), 20)
            assert len(spool.files_on_disk()) == len(uids)
        reasons = {r["reason"] for r in spool.rows("pacs")}
        assert any("does it know our AE title LEGACYGW" in (why or "") for why in reasons), reasons
        assert DELIVERED not in {r["state"] for r in spool.rows("pacs")}
    finally:
        pacs.stop()


class _SameAssociationSCP:
    """A Storage SCP that reports commitment on the association the request came on."""

    def __init__(self):
        self.port = free_port()
        ae = storage_ae("SYNCPACS", StorageCommitmentPushModel)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=[
            (evt.EVT_C_STORE, lambda event: 0x0000), (evt.EVT_N_ACTION, self._on_action)])

    def _on_action(self, event):
        request = event.action_information
        assoc = event.assoc

        def report():
            time.sleep(0.2)  # after our N-ACTION-RSP went out
            info = Dataset()
            info.TransactionUID = request.TransactionUID
            info.ReferencedSOPSequence = request.ReferencedSOPSequence
            assoc.send_n_event_report(info, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")

        threading.Thread(target=report, daemon=True).start()
        return 0x0000, None

    def stop(self):
        self.server.shutdown()


def test_report_on_the_same_association_is_handled(tmp_path):
    pacs = _SameAssociationSCP()
    try:
        spool = Spool(tmp_path / "spool")
        spool_instances(spool, 5, ["pacs"])
        dest = destination("pacs", pacs.port, storage_commitment=True)
        # Nothing listens at the commitment port: the report can only come on our association.
        with forwarding(spool, [dest], commitment=Commitment("127.0.0.1", free_port())):
            assert wait_until(lambda: spool.pending("pacs") == 0, 20)
        assert {(r["state"], r["last_status"]) for r in spool.rows("pacs")} == {(DELIVERED, "committed")}
        assert spool.files_on_disk() == []
    finally:
        pacs.stop()


def test_report_failures_are_resent_or_dead_lettered_by_reason(tmp_path):
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 3, ["pacs"])
    items = spool.claim("pacs", 10)
    spool.settle(Settlement(i, COMMITTING, "0x0000", transaction_uid="1.2.3.4") for i in items)
    info = Dataset()
    info.TransactionUID = "1.2.3.4"
    ok = Dataset()
    ok.ReferencedSOPClassUID, ok.ReferencedSOPInstanceUID = items[0].sop_class_uid, items[0].sop_instance_uid
    info.ReferencedSOPSequence = [ok]
    failed = []
    for item, reason in ((items[1], 0x0112), (items[2], 0x0122)):  # no such instance; class not supported
        f = Dataset()
        f.ReferencedSOPClassUID, f.ReferencedSOPInstanceUID = item.sop_class_uid, item.sop_instance_uid
        f.FailureReason = reason
        failed.append(f)
    info.FailedSOPSequence = failed
    assert ReportHandler(spool).handle(2, info, {"pacs"}) == 0x0000
    rows = {r["sop_instance_uid"]: r for r in spool.rows("pacs")}
    assert sorted(rows) == sorted(uids)
    assert rows[items[0].sop_instance_uid]["state"] == DELIVERED
    assert rows[items[1].sop_instance_uid]["state"] == QUEUED
    assert "no such object instance" in rows[items[1].sop_instance_uid]["reason"]
    assert rows[items[2].sop_instance_uid]["state"] == DEAD
    assert "not supported" in rows[items[2].sop_instance_uid]["reason"]
    # A report for a transaction we do not know changes nothing.
    other = Dataset()
    other.TransactionUID = "9.9.9"
    other.ReferencedSOPSequence = [ok]
    assert ReportHandler(spool).handle(1, other, {"pacs"}) == 0x0000
    assert spool.rows("pacs", uids=[items[1].sop_instance_uid])[0]["state"] == QUEUED
    assert len(spool.files_on_disk()) == 2  # the committed one's file is gone, the others kept


def _forge(port: int, ae_title: str, transaction: str, refs: list[tuple[str, str]],
           bind: str = "127.0.0.1") -> int | None:
    """Send an N-EVENT-REPORT to our listener as ``ae_title`` from ``bind``: its status, or
    None when the association itself is refused."""
    ae = AE(ae_title)
    ae.add_requested_context(StorageCommitmentPushModel, [ImplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="LEGACYGW", bind_address=(bind, 0))
    if not assoc.is_established:
        return None
    try:
        info = Dataset()
        info.TransactionUID = transaction
        seq = []
        for sop_class, sop_instance in refs:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
            seq.append(ref)
        info.ReferencedSOPSequence = seq
        status, _ = assoc.send_n_event_report(info, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


def test_forged_commitment_reports_change_nothing(tmp_path):
    # Orthanc's own reports go nowhere: every report the listener gets comes from the test.
    pacs = Orthanc(tmp_path / "orthanc",
                   extra={"DicomModalities": {"gateway": ["LEGACYGW", "127.0.0.1", free_port()]}}).start()
    listen = free_port()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 4, ["pacs"])
        # A second destination that uses commitment too: its AE title may associate, but it may
        # not settle what was sent to Orthanc. Its instances sit queued (nothing listens there).
        others = [spool.add(ct_instance(100 + i), ["other"]).sop_instance_uid for i in range(2)]
        dests = [destination("pacs", pacs.dicom_port, called_ae="ORTHANC", storage_commitment=True,
                             commitment_hosts=("127.0.0.1",)),
                 destination("other", free_port(), called_ae="OTHERPACS", storage_commitment=True)]
        with forwarding(spool, dests, commitment=Commitment("127.0.0.1", listen)) as fwd:
            assert wait_until(lambda: {r["state"] for r in spool.rows("pacs")} == {COMMITTING}, 15)
            rows = spool.rows("pacs")
            (transaction,) = {r["transaction_uid"] for r in rows}
            assert transaction.startswith("2.25.") and len(transaction) >= 40
            refs = [(r["sop_class_uid"], r["sop_instance_uid"]) for r in rows]
            outside = [(r["sop_class_uid"], r["sop_instance_uid"]) for r in spool.rows("other")]
            # an unknown AE title (even knowing the transaction) cannot associate
            assert _forge(listen, "FORGER", transaction, refs) is None
            # the other destination did not receive this transaction
            assert _forge(listen, "OTHERPACS", transaction, refs) == 0x0110
            # Orthanc's AE title from an address that is not Orthanc's
            assert _forge(listen, "ORTHANC", transaction, refs, bind="127.0.0.2") == 0x0110
            # a transaction we never issued
            assert _forge(listen, "ORTHANC", "2.25.1234567890", refs) == 0x0000
            # instances outside the transaction, alone or beside the real ones
            assert _forge(listen, "ORTHANC", transaction, outside) == 0x0110
            assert _forge(listen, "ORTHANC", transaction, refs + outside[:1]) == 0x0110
            time.sleep(0.5)
            assert {r["state"] for r in spool.rows("pacs")} == {COMMITTING}
            assert {r["state"] for r in spool.rows("other")} == {QUEUED}
            assert len(spool.files_on_disk()) == len(uids) + len(others)
            assert fwd.metrics.delivered.labels("pacs")._value.get() == 0
            # The destination's own report, as Orthanc would send it, is taken.
            assert _forge(listen, "ORTHANC", transaction, refs) == 0x0000
            assert wait_until(lambda: spool.pending("pacs") == 0, 5)
        assert {r["state"] for r in spool.rows("pacs")} == {DELIVERED}
        assert len(spool.files_on_disk()) == len(others)
    finally:
        pacs.stop()
