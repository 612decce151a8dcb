"""A C-STORE streamed from its spool file (gateway.delivery.store_request) arrives byte for byte.

DCMTK's storescp, bit-preserving, keeps the data set exactly as it came. Its PDU limit is set
so that fragments do not divide the mapped window, and the window is made small enough that
an instance takes several; a spool file gone before its turn is one bad item, not a lost
association."""

from __future__ import annotations

import pytest
from pydicom import dcmread

from gateway.delivery import store_request
from gateway.delivery.spool import DEAD, DELIVERED, Spool
from gateway.delivery.store_request import data_set_offset
from tests.support.forwarding import destination, forwarding, wait_until
from tests.support.instances import ct_instance
from tests.support.peers import StoreSCP


def _data_set(path) -> bytes:
    return path.read_bytes()[data_set_offset(path):]


@pytest.mark.parametrize("max_pdu, window", [(4100, None), (16384, None), (4100, 100_000), (16384, 250_000)])
def test_streamed_instances_arrive_bit_for_bit(tmp_path, monkeypatch, max_pdu, window):
    size = 768  # 768 x 768 x 16 bit: ~1.2 MB, more than a PDU of the largest size we write
    assert 2 * size * size > store_request.CHUNK
    if window:  # mapped a piece at a time: fragments cross the pieces' ends
        monkeypatch.setattr(store_request, "WINDOW", window)
    peer = StoreSCP(tmp_path / "scp", args=("--bit-preserving", "--max-pdu", str(max_pdu))).start()
    try:
        spool = Spool(tmp_path / "spool")
        for i, pixels in enumerate((size, 16, 200)):
            spool.add(ct_instance(i, size=pixels), ["pacs"])
        sent = {row["sop_instance_uid"]: _data_set(spool.directory / row["path"]) for row in spool.rows()}
        with forwarding(spool, [destination("pacs", peer.port, peer.aet)]):
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
        assert {r["state"] for r in spool.rows()} == {DELIVERED}
        received = {}
        for path in peer.received():
            received[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = _data_set(path)
        assert received.keys() == sent.keys()
        for uid, data in sent.items():
            assert received[uid] == data, f"{uid}: {len(received[uid])} bytes arrived of {len(data)}"
    finally:
        peer.stop()


def test_a_spool_file_gone_is_dead_lettered_and_the_rest_still_go(tmp_path):
    peer = StoreSCP(tmp_path / "scp").start()
    try:
        spool = Spool(tmp_path / "spool")
        uids = [spool.add(ct_instance(i), ["pacs"]).sop_instance_uid for i in range(3)]
        gone = spool.rows(uids=[uids[1]])[0]["path"]
        (spool.directory / gone).unlink()
        (spool.directory / gone).mkdir()  # not even a file: opening it fails otherwise than "missing"
        with forwarding(spool, [destination("pacs", peer.port, peer.aet)]) as forwarder:
            assert wait_until(lambda: spool.pending("pacs") == 0, 30)
            assert forwarder.metrics.association_failures.labels("pacs")._value.get() == 0
        states = {r["sop_instance_uid"]: (r["state"], r["reason"]) for r in spool.rows()}
        assert states[uids[0]][0] == states[uids[2]][0] == DELIVERED
        assert states[uids[1]][0] == DEAD and "missing or unreadable" in states[uids[1]][1]
        assert len(peer.received()) == 2
    finally:
        peer.stop()
