"""C-STORE responses read by the sending thread (gateway.delivery.store_response): what is taken, what is left
to pynetdicom, and that a peer's abort, an N-EVENT-REPORT before the answer and an abort from
another thread still end the wait as they did through pynetdicom."""

from __future__ import annotations

import struct
import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.dimse_messages import C_ECHO_RSP, C_STORE_RSP, N_EVENT_REPORT_RQ
from pynetdicom.dimse_primitives import C_ECHO, C_STORE, N_EVENT_REPORT
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import StorageCommitmentPushModel

from gateway.delivery import pynetdicom_internals as internals
from gateway.delivery import store_response
from gateway.delivery.association import Link, LinkError
from gateway.delivery.outcomes import FAILURE_RULES, Failure, Outcome
from gateway.delivery.spool import Spool
from gateway.delivery.store_response import parse_c_store_rsp
from tests.support.forwarding import destination, spool_instances
from tests.support.peers import free_port
from tests.support.status_scp import StatusSCP, storage_ae

SOP_INSTANCE = "1.2.826.0.1.3680043.8.498.1"


def _pdus(message, context_id: int, max_pdu: int = 16382) -> list[bytes]:
    """The P-DATA-TF PDUs pynetdicom itself would send for ``message``."""
    pdus = []
    for primitive in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        pdus.append(pdu.encode())
    return pdus


def _c_store_rsp(message_id: int, status: int, **optional) -> C_STORE_RSP:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = CTImageStorage
    rsp.AffectedSOPInstanceUID = SOP_INSTANCE
    rsp.Status = status
    for keyword, value in optional.items():
        setattr(rsp, keyword, value)
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    return message


@pytest.mark.parametrize("status, optional", [
    (0x0000, {}),
    (0xB000, {"ErrorComment": "coerced", "OffendingElement": [0x00100010]}),
    (0xA900, {"ErrorComment": "does not match SOP class", "OffendingElement": [0x00100010, 0x00100020]}),
])
def test_a_response_pynetdicom_encodes_is_read(status, optional):
    (pdu,) = _pdus(_c_store_rsp(7, status, **optional), 3)
    parsed = parse_c_store_rsp(pdu[6:], 3, 7)
    assert parsed is not None and parsed.Status == status
    assert str(parsed.get("ErrorComment", "")) == optional.get("ErrorComment", "")
    element = parsed["OffendingElement"] if "OffendingElement" in parsed else None
    tags = [] if element is None else list(element.value) if element.VM > 1 else [element.value]
    assert [int(tag) for tag in tags] == optional.get("OffendingElement", [])


def _patched(pdu: bytes, element: int, value: bytes) -> bytes:
    """``pdu`` with the value of command element (0000,element) replaced (same length)."""
    key = struct.pack("<HHL", 0x0000, element, len(value))
    at = pdu.index(key) + len(key)
    return pdu[:at] + value + pdu[at + len(value):]


def test_anything_but_the_awaited_response_is_left_alone():
    (ours,) = _pdus(_c_store_rsp(7, 0x0000), 3)
    assert parse_c_store_rsp(ours[6:], 3, 7) is not None
    assert parse_c_store_rsp(ours[6:], 3, 8) is None  # another request's (stale) answer
    assert parse_c_store_rsp(ours[6:], 5, 7) is None  # on another presentation context
    assert parse_c_store_rsp(ours[6:-1], 3, 7) is None  # cut short
    with_data = _patched(ours, 0x0800, struct.pack("<H", 0x0000))  # "a data set follows"
    assert parse_c_store_rsp(with_data[6:], 3, 7) is None
    two_pdvs = ours[6:] + ours[6:]
    assert parse_c_store_rsp(two_pdvs, 3, 7) is None
    # a command in fragments (each PDU then holds a part, the first not marked last)
    fragments = _pdus(_c_store_rsp(7, 0x0000, ErrorComment="x" * 60), 3, max_pdu=64)
    assert len(fragments) > 1 and all(parse_c_store_rsp(p[6:], 3, 7) is None for p in fragments)
    echo = C_ECHO()
    echo.MessageIDBeingRespondedTo, echo.Status = 7, 0x0000
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    echo_rsp = C_ECHO_RSP()
    echo_rsp.primitive_to_message(echo)
    (echo_pdu,) = _pdus(echo_rsp, 3)
    assert parse_c_store_rsp(echo_pdu[6:], 3, 7) is None
    report = N_EVENT_REPORT()
    report.MessageID, report.EventTypeID = 7, 1
    report.AffectedSOPClassUID, report.AffectedSOPInstanceUID = StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
    report_rq = N_EVENT_REPORT_RQ()
    report_rq.primitive_to_message(report)
    assert all(parse_c_store_rsp(p[6:], 3, 7) is None for p in _pdus(report_rq, 3))


def _send(link: Link, item, how: str):
    """One C-STORE through ``Link.send`` or as a batch of one (``Link.send_batch``, where
    pynetdicom's threads are held quiet for the whole batch); a lost association raises."""
    if how == "one":
        return link.send(item)
    batch = link.send_batch([item], threading.Event())
    ((_, sent),) = batch.answered
    if batch.lost is not None:  # the batch kept the LinkError's rule and detail: raise it again
        raise LinkError(next(kind for kind, rule in FAILURE_RULES.items() if rule is sent.rule), sent.detail)
    return sent


def _items(tmp_path, count: int):
    spool = Spool(tmp_path / "spool")
    spool_instances(spool, count, ["pacs"])
    return spool.claim("pacs", count)


@pytest.mark.parametrize("how", ["one", "batch"])
def test_answers_are_read_here_not_by_pynetdicom(tmp_path, how):
    statuses = iter([0x0000, 0xB000, 0xA700])
    scp = StatusSCP(policy=lambda uid, seen: next(statuses)).start()
    link = Link(destination("pacs", scp.port), "LEGACYGW")
    try:
        items = _items(tmp_path, 3)
        link.open([(CTImageStorage, ExplicitVRLittleEndian)])
        decoded = []
        link.assoc.bind(evt.EVT_DIMSE_RECV, lambda event: decoded.append(event))
        nap = internals.dul_nap(link.assoc)
        if how == "one":
            sent = [link.send(item) for item in items]
        else:
            batch = link.send_batch(items, threading.Event())
            assert batch.lost is None and batch.released == []
            sent = [s for _, s in batch.answered]
        assert [s.status for s in sent] == ["0x0000", "0xB000", "0xA700"]
        assert [s.rule.outcome for s in sent] == [Outcome.DELIVERED, Outcome.DELIVERED, Outcome.RETRY]
        assert decoded == []  # pynetdicom decoded none of them
        assert internals.dul_nap(link.assoc) == nap  # its DUL is back to its usual pace
        assert link.assoc._reactor_checkpoint.is_set()  # and its reactor runs again
    finally:
        link.close()
        scp.stop()


class _Peer:
    """A pynetdicom Storage SCP whose C-STORE handler the test gives."""

    def __init__(self, on_store):
        self.port = free_port()
        ae = storage_ae("PEER", StorageCommitmentPushModel)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, on_store)])

    def stop(self):
        self.server.shutdown()


@pytest.mark.parametrize("how", ["one", "batch"])
def test_a_report_before_the_answer_goes_to_pynetdicom_and_the_answer_still_arrives(tmp_path, how):
    def on_store(event):
        info = Dataset()
        info.TransactionUID = "1.2.826.0.1.3680043.8.498.2"
        event.assoc.send_n_event_report(info, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
        return 0x0000

    reports = []

    def on_report(event):
        reports.append(str(event.event_information.TransactionUID))
        return 0x0000, None

    peer = _Peer(on_store)
    link = Link(destination("pacs", peer.port), "LEGACYGW", on_report=on_report)
    try:
        (item,) = _items(tmp_path, 1)
        link.open([(CTImageStorage, ExplicitVRLittleEndian)], commitment=True)
        sent = _send(link, item, how)
        assert (sent.status, sent.rule.outcome) == ("0x0000", Outcome.DELIVERED)
        assert reports == ["1.2.826.0.1.3680043.8.498.2"]
    finally:
        link.close()
        peer.stop()


@pytest.mark.parametrize("how", ["one", "batch"])
def test_a_peer_aborting_instead_of_answering_ends_the_wait_at_once(tmp_path, how):
    def on_store(event):
        event.assoc.abort()
        return 0x0000

    peer = _Peer(on_store)
    link = Link(destination("pacs", peer.port, timeout=20.0), "LEGACYGW")
    try:
        (item,) = _items(tmp_path, 1)
        link.open([(CTImageStorage, ExplicitVRLittleEndian)])
        started = time.monotonic()
        with pytest.raises(LinkError) as lost:
            _send(link, item, how)
        assert lost.value.kind is Failure.ASSOCIATION_ABORTED
        assert time.monotonic() - started < 5
    finally:
        link.close()
        peer.stop()


@pytest.mark.parametrize("how", ["one", "batch"])
def test_an_abort_from_another_thread_ends_the_wait(tmp_path, how):
    """As Forwarder.stop does with a lane stuck on a PACS that does not answer."""
    scp = StatusSCP(policy=lambda uid, seen: time.sleep(4) or 0x0000).start()
    link = Link(destination("pacs", scp.port, timeout=20.0), "LEGACYGW")
    try:
        (item,) = _items(tmp_path, 1)
        link.open([(CTImageStorage, ExplicitVRLittleEndian)])
        took = []

        def abort():
            time.sleep(0.5)
            started = time.monotonic()
            link.abort()
            took.append(time.monotonic() - started)

        aborter = threading.Thread(target=abort)
        aborter.start()
        started = time.monotonic()
        with pytest.raises(LinkError) as lost:
            _send(link, item, how)
        waited = time.monotonic() - started
        aborter.join()
        assert lost.value.kind is Failure.ASSOCIATION_ABORTED
        assert waited < 2.5 and took[0] < 2  # not the 4 s the peer takes, nor the 20 s timeout
    finally:
        link.close()
        scp.stop()


def test_pynetdicom_sending_itself_inside_a_batch_gets_its_usual_pace(tmp_path):
    """A converted instance goes through pynetdicom's DUL, PDU by PDU: not at the batch's long nap."""
    scp = StatusSCP().start()
    link = Link(destination("pacs", scp.port), "LEGACYGW")
    try:
        link.open([(CTImageStorage, ExplicitVRLittleEndian)])
        usual = internals.dul_nap(link.assoc)
        assert usual < store_response.QUIET_NAP
        with store_response.quiet(link.assoc):
            assert internals.dul_nap(link.assoc) == store_response.QUIET_NAP
            with store_response.usual_pace(link.assoc):
                assert internals.dul_nap(link.assoc) == usual
            assert internals.dul_nap(link.assoc) == store_response.QUIET_NAP
        assert internals.dul_nap(link.assoc) == usual
    finally:
        link.close()
        scp.stop()
