"""The forwarder against real peers: Orthanc, DCMTK's storescp, and a pynetdicom SCP whose
answers the test chooses. Backoffs are short so each test takes seconds."""

from __future__ import annotations

import time

from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian, RLELossless

from gateway.delivery.spool import DEAD, DELIVERED, QUEUED, Spool
from tests.support.forwarding import (
    black_hole,
    destination,
    forwarding,
    orthanc_uids,
    spool_instances,
    wait_until,
)
from tests.support.instances import ct_instance
from tests.support.peers import Orthanc, StoreSCP, free_port
from tests.support.status_scp import StatusSCP, storage_ae


def _states(spool: Spool, dest: str) -> dict[str, dict]:
    return {r["sop_instance_uid"]: r for r in spool.rows(dest, limit=100000)}


def test_pacs_down_for_a_while_then_up_everything_arrives_once(tmp_path):
    port = free_port()
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 40, ["pacs"])
    pacs = Orthanc(tmp_path / "orthanc", dicom_port=port)
    try:
        with forwarding(spool, [destination("pacs", port, associations=2)]) as fwd:
            time.sleep(2.0)  # nothing listens on the port: refused, again and again
            rows = _states(spool, "pacs")
            assert {r["state"] for r in rows.values()} == {QUEUED}
            # Probed, not hammered: no item was tried while the PACS was down ...
            assert all(r["attempts"] == 0 for r in rows.values())
            # ... yet the destination was probed more than once, with backoff.
            failures = fwd.metrics.association_failures.labels("pacs")._value.get()
            assert 2 <= failures <= 40
            assert fwd.metrics.up["pacs"] is False
            pacs.start()
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
        stored = orthanc_uids(pacs)
        assert sorted(stored) == sorted(uids)  # every one, each once
        assert spool.files_on_disk() == []
        assert all(r["state"] == DELIVERED for r in _states(spool, "pacs").values())
    finally:
        pacs.stop()


def test_rejected_sop_class_is_dead_lettered_with_reason_others_unaffected(orthanc, tmp_path):
    spool = Spool(tmp_path / "spool")
    unknown_class = "1.2.826.0.1.3680043.8.498.77.1"  # a valid UID that no PACS knows as storage
    odd = [spool.add(ct_instance(i, sop_class=unknown_class), ["pacs"]).sop_instance_uid for i in range(3)]
    good = spool_instances(spool, 12, ["pacs"])
    with forwarding(spool, [destination("pacs", orthanc.dicom_port)]):
        assert wait_until(lambda: spool.pending("pacs") == 0, 30)
    rows = _states(spool, "pacs")
    for uid in odd:
        assert rows[uid]["state"] == DEAD
        assert "not accept" in rows[uid]["reason"] and unknown_class in rows[uid]["reason"]
        assert rows[uid]["attempts"] == 1  # permanent: tried once, never again
    assert all(rows[uid]["state"] == DELIVERED for uid in good)
    assert sorted(orthanc_uids(orthanc)) == sorted(good)
    assert len(spool.files_on_disk()) == len(odd)  # dead letters keep their files


def test_out_of_resources_is_retried_then_delivered(tmp_path):
    scp = StatusSCP(policy=lambda uid, seen: 0xA700 if seen < 2 else 0x0000).start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 10, ["pacs"])
        with forwarding(spool, [destination("pacs", scp.port)]) as fwd:
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
            assert fwd.metrics.retried.labels("pacs")._value.get() == 20
        assert sorted(scp.stored()) == sorted(uids)  # each stored exactly once
        assert all(scp.offered[uid] == 3 for uid in uids)
        rows = _states(spool, "pacs")
        assert all(rows[uid]["state"] == DELIVERED and rows[uid]["attempts"] == 3 for uid in uids)
    finally:
        scp.stop()


def test_warnings_count_as_delivered_and_failures_are_classified(tmp_path):
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 4, ["pacs"])
    answers = dict(zip(uids, (0xB000, 0xA900, 0xC123, 0x0000)))
    scp = StatusSCP(policy=lambda uid, seen: answers[uid]).start()
    try:
        with forwarding(spool, [destination("pacs", scp.port)]):
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
        rows = _states(spool, "pacs")
        warned, mismatch, garbled, fine = (rows[u] for u in uids)
        assert (warned["state"], warned["last_status"]) == (DELIVERED, "0xB000")
        assert "coercion" in warned["reason"]  # the warning is recorded
        assert (mismatch["state"], mismatch["last_status"]) == (DEAD, "0xA900")
        assert "does not match SOP class" in mismatch["reason"]
        assert (garbled["state"], garbled["last_status"]) == (DEAD, "0xC123")
        assert "cannot understand" in garbled["reason"]
        assert (fine["state"], fine["last_status"], fine["reason"]) == (DELIVERED, "0x0000", None)
        assert all(scp.offered[u] == 1 for u in uids)  # nothing permanent is retried
    finally:
        scp.stop()


def test_one_destination_down_never_delays_another(orthanc, tmp_path):
    spool = Spool(tmp_path / "spool")
    with black_hole() as hung_port:
        uids = spool_instances(spool, 30, ["good", "hung"])
        hung = destination("hung", hung_port, timeout=10.0)
        start = time.monotonic()
        with forwarding(spool, [hung, destination("good", orthanc.dicom_port)]):
            assert wait_until(lambda: spool.pending("good") == 0, 30)
            elapsed = time.monotonic() - start
            # The hung PACS makes each association attempt wait its full 10 s timeout; the
            # good one was done long before the first of those timeouts ran out.
            assert elapsed < 8.0
            assert spool.pending("hung") == 30
    assert sorted(orthanc_uids(orthanc)) == sorted(uids)
    assert len(spool.files_on_disk()) == 30  # kept: "hung" does not have them yet


def test_parallel_associations_never_send_the_same_instance_twice(tmp_path):
    def slow(uid, seen):
        time.sleep(0.01)
        return 0x0000

    scp = StatusSCP(policy=slow).start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 90, ["pacs"])
        with forwarding(spool, [destination("pacs", scp.port, associations=3)]):
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
        assert scp.most_open == 3
        assert scp.concurrent_duplicates == 0
        assert sorted(scp.stored()) == sorted(uids)
        by_association = {assoc for _, assoc, _ in scp.receipts}
        assert len(by_association) == 3
    finally:
        scp.stop()


def test_associations_are_reused_across_batches_and_renewed_after_the_limit(tmp_path):
    scp = StatusSCP().start()
    try:
        spool = Spool(tmp_path / "spool")
        spool_instances(spool, 100, ["a"])
        with forwarding(spool, [destination("a", scp.port)]):
            assert wait_until(lambda: spool.pending("a") == 0, 30)
        assert scp.associations == 1  # 100 instances, several claimed batches, one association
        spool_instances(spool, 100, ["b"])
        with forwarding(spool, [destination("b", scp.port, max_per_association=25)]):
            assert wait_until(lambda: spool.pending("b") == 0, 30)
        assert scp.associations == 1 + 4
    finally:
        scp.stop()


def test_stored_syntax_refused_falls_back_to_uncompressed(tmp_path):
    """storescp accepts only uncompressed syntaxes by default, and only Implicit VR with +xi."""
    rle = ct_instance(0, 32)
    rle.compress(RLELossless, generate_instance_uid=False)
    explicit = ct_instance(1, 32)
    implicit_only = StoreSCP(tmp_path / "implicit", args=("+xi",)).start()
    plain = StoreSCP(tmp_path / "plain").start()
    try:
        spool = Spool(tmp_path / "spool")
        spool.add(rle, ["plain"])
        spool.add(explicit, ["implicit"])
        with forwarding(spool, [destination("plain", plain.port), destination("implicit", implicit_only.port)]):
            assert wait_until(lambda: spool.pending() == 0, 30)
        assert {r["state"] for r in spool.rows()} == {DELIVERED}
        (got_rle,) = [dcmread(p) for p in plain.received()]
        assert not got_rle.file_meta.TransferSyntaxUID.is_compressed
        assert got_rle.SOPInstanceUID == rle.SOPInstanceUID
        assert got_rle.PixelData == ct_instance(0, 32).PixelData  # decompressed, same pixels
        (got_implicit,) = [dcmread(p) for p in implicit_only.received()]
        assert got_implicit.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert got_implicit.PixelData == explicit.PixelData
    finally:
        implicit_only.stop()
        plain.stop()


def test_a_peer_taking_fewer_associations_than_configured_is_not_down(storescp, tmp_path, caplog):
    """DCMTK's storescp serves one association at a time. With a short timeout (1 s, also the
    DIMSE timeout: shorter ones make storescp's answers late under load), the extra lanes'
    association requests time out while the first lane sends: they wait their turn, holding no
    instance, and the destination is not declared down."""
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 2000, ["one"], size=64)  # > 1 s of sending, even at our fastest
    caplog.set_level("INFO", logger="gateway")
    with forwarding(spool, [destination("one", storescp.port, associations=3, timeout=1.0)]) as fwd:
        assert wait_until(lambda: spool.pending("one") == 0, 60)
        refused = fwd.metrics.association_failures.labels("one")._value.get()
    assert len(storescp.received()) == len(uids)
    assert all(r["attempts"] == 1 for r in spool.rows("one"))
    assert "event=destination_down" not in caplog.text
    assert refused >= 1 and "event=extra_association_refused" in caplog.text


def test_a_service_waits_for_the_forwarding_lock_instead_of_failing(tmp_path):
    """An operator's `send` holds the spool's forwarding lock: a service starting meanwhile
    waits for it (spooling goes on), then forwards; `send` itself never waits."""
    import subprocess
    import sys

    import pytest

    from gateway.delivery.forwarder import Forwarder
    from gateway.delivery.spool import SpoolBusy

    scp = StatusSCP().start()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from gateway.delivery.spool import Spool; s = Spool(sys.argv[1]); s.acquire_forwarding(); "
         "print('held', flush=True); time.sleep(60)", str(tmp_path / "spool")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        spool = Spool(tmp_path / "spool")
        uids = spool_instances(spool, 5, ["pacs"])
        with pytest.raises(SpoolBusy):
            Forwarder([destination("pacs", scp.port)], spool, "LEGACYGW").start(wait=False)
        with forwarding(spool, [destination("pacs", scp.port)]) as fwd:
            time.sleep(1.0)
            assert spool.pending("pacs") == 5 and scp.receipts == []
            assert all(worker.is_alive() for worker in fwd.workers.values())  # waiting is not failing
            holder.kill()
            holder.wait()
            assert wait_until(lambda: spool.pending("pacs") == 0, 20)
        assert sorted(scp.stored()) == sorted(uids)
    finally:
        holder.kill()
        holder.wait()
        scp.stop()


def test_no_response_in_time_is_retried_on_a_new_association(tmp_path, caplog):
    def late_once(uid, seen):
        if seen == 0:
            time.sleep(1.5)  # longer than the destination's timeout
        return 0x0000

    scp = StatusSCP(policy=late_once).start()
    try:
        spool = Spool(tmp_path / "spool")
        (uid,) = spool_instances(spool, 1, ["slow"])
        caplog.set_level("WARNING", logger="gateway")
        with forwarding(spool, [destination("slow", scp.port, timeout=1.0)]):
            assert wait_until(lambda: spool.pending("slow") == 0, 20)
        (row,) = spool.rows("slow")
        assert (row["state"], row["attempts"]) == (DELIVERED, 2)
        assert scp.offered[uid] == 2
        assert scp.associations == 3  # the one that timed out, the C-ECHO probe, the re-send
        assert "no response within 1s" in caplog.text  # named as such, not as an abort
        assert "event=destination_up" in caplog.text
    finally:
        scp.stop()


def test_a_batch_claimed_ahead_goes_back_unpenalised_when_the_association_is_lost(tmp_path):
    """The next batch is claimed while the last instance of a batch is on its way; the peer
    aborts the association instead of answering that one: the instance counts an attempt, the
    batch claimed ahead goes back as it was, and everything arrives."""
    from pynetdicom import evt
    from pynetdicom.sop_class import Verification

    from gateway.delivery.forwarder import BATCH

    received: list[str] = []

    def on_store(event):
        received.append(str(event.request.AffectedSOPInstanceUID))
        if len(received) == BATCH:  # the last of the first batch
            event.assoc.abort()
        return 0x0000

    port = free_port()
    ae = storage_ae("ABORTS", Verification)  # Verification: the probe after the abort
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    given_back: list[str] = []

    class Watched(Spool):
        def settle(self, settlements):
            settlements = list(settlements)
            given_back.extend(s.item.sop_instance_uid for s in settlements if s.reason == "claimed ahead, not sent")
            super().settle(settlements)

    try:
        spool = Watched(tmp_path / "spool")
        uids = spool_instances(spool, 3 * BATCH, ["pacs"])
        with forwarding(spool, [destination("pacs", port)]):
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
        rows = _states(spool, "pacs")
        broken = received[BATCH - 1]
        assert sorted(given_back) == sorted(uids[BATCH:2 * BATCH])
        assert {r["state"] for r in rows.values()} == {DELIVERED}
        assert rows[broken]["attempts"] == 2
        assert all(r["attempts"] == 1 for uid, r in rows.items() if uid != broken)
        assert sorted(set(received)) == sorted(uids) and len(received) == len(uids) + 1
    finally:
        server.shutdown()


def test_between_batches_pynetdicom_stays_quiet_and_the_association_goes_on(storescp, tmp_path):
    """A lane waiting for work keeps its association open (for ``IDLE_RELEASE``), but not
    pynetdicom's threads busy: left alone, its DUL looks at the socket every millisecond and
    its reactor at the DIMSE queue as often, CPU a ``send`` needs for converting. The next
    work goes out on the same association."""
    spool = Spool(tmp_path / "spool")
    spool_instances(spool, 4, ["a"])
    with forwarding(spool, [destination("a", storescp.port)]) as fwd:
        assert wait_until(lambda: spool.pending("a") == 0, 30)
        (lane,) = fwd.workers["a"].lanes
        assoc = lane.link.assoc
        looks = [0]
        look = assoc.dul._is_transport_event

        def counted() -> bool:
            looks[0] += 1
            return look()

        assoc.dul._is_transport_event = counted
        time.sleep(1.0)
        assert looks[0] < 400, f"the DUL looked {looks[0]} times in a second of waiting"
        assert not assoc._reactor_checkpoint.is_set()  # the reactor is paused too
        later = spool_instances(spool, 4, ["a"])
        fwd.notify(("a",), len(later))
        assert wait_until(lambda: spool.pending("a") == 0, 30)
        assert lane.link.assoc is assoc and assoc.is_established
    assert all(r["state"] == DELIVERED for r in _states(spool, "a").values())
