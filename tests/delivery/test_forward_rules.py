"""The outcome tables (statuses from PS3.4 B.2.3 / GG.4.2 / PS3.7 C) and context proposal."""

from __future__ import annotations

import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
)
from pynetdicom.sop_class import StorageCommitmentPushModel

from gateway.delivery.association import MAX_CONTEXTS, propose
from gateway.delivery.outcomes import Failure, Outcome, classify_commitment_failure, classify_failure, classify_status


@pytest.mark.parametrize("status, outcome", [
    (0x0000, Outcome.DELIVERED),
    (0xB000, Outcome.DELIVERED), (0xB006, Outcome.DELIVERED), (0xB007, Outcome.DELIVERED),
    (0xA700, Outcome.RETRY), (0xA7FF, Outcome.RETRY), (0x0213, Outcome.RETRY),
    (0xA900, Outcome.PERMANENT), (0xA9FF, Outcome.PERMANENT),
    (0xC000, Outcome.PERMANENT), (0xCFFF, Outcome.PERMANENT), (0x0122, Outcome.PERMANENT),
    (0xFE00, Outcome.RETRY),  # "cancel" is not a C-STORE answer: unknown, retried, never lost
])
def test_status_classes(status, outcome):
    assert classify_status(status).outcome is outcome


def test_failures_without_status():
    for kind in (Failure.CONNECTION_FAILED, Failure.ASSOCIATION_REJECTED, Failure.ASSOCIATION_ABORTED,
                 Failure.NO_RESPONSE):
        rule = classify_failure(kind)
        assert rule.outcome is Outcome.RETRY and rule.destination_down
    for kind in (Failure.CONTEXT_NOT_ACCEPTED, Failure.FILE_MISSING, Failure.UNSENDABLE):
        assert classify_failure(kind).outcome is Outcome.PERMANENT
    assert classify_commitment_failure(0x0112).outcome is Outcome.RETRY  # no such object instance
    assert classify_commitment_failure(0x0122).outcome is Outcome.PERMANENT  # SOP class not supported
    assert classify_commitment_failure(None).outcome is Outcome.RETRY


def test_contexts_exact_syntax_first_then_uncompressed_fallback():
    contexts, covered = propose([(CTImageStorage, JPEG2000Lossless), (MRImageStorage, ExplicitVRLittleEndian)],
                                commitment=True)
    offered = [(cx.abstract_syntax, tuple(cx.transfer_syntax)) for cx in contexts]
    assert offered == [
        (CTImageStorage, (JPEG2000Lossless,)),
        (MRImageStorage, (ExplicitVRLittleEndian,)),
        (CTImageStorage, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
        (MRImageStorage, (ImplicitVRLittleEndian,)),
        (StorageCommitmentPushModel, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
    ]
    assert covered == {(CTImageStorage, JPEG2000Lossless), (MRImageStorage, ExplicitVRLittleEndian)}


def test_contexts_stay_under_the_limit_with_the_batch_first():
    many = [(f"1.2.826.0.1.3680043.8.498.{n}", ExplicitVRLittleEndian) for n in range(300)]
    batch = many[250:260]
    contexts, covered = propose(batch, waiting=many)
    assert len(contexts) == MAX_CONTEXTS == 127
    assert set(batch) <= covered
    assert [cx.abstract_syntax for cx in contexts[:10]] == [sop for sop, _ in batch]
    # every covered pair has its exact context; nothing is covered without one
    exact = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in contexts if len(cx.transfer_syntax) == 1
             and cx.transfer_syntax[0] == ExplicitVRLittleEndian}
    assert covered == exact


def test_a_response_taken_by_the_association_reactor_is_handed_back(tmp_path):
    """pynetdicom's reactor can dequeue the response a send_* call waits for (see
    gateway.delivery.association.Link.open and pynetdicom_internals.hand_back_responses); ours
    is recognised by its message ID and put back, anything else still goes to pynetdicom's own
    handling. The test plays the reactor, so it touches pynetdicom's internals itself."""
    from pynetdicom.dimse_primitives import C_STORE

    from gateway.delivery.association import Link
    from tests.support.forwarding import destination
    from tests.support.status_scp import StatusSCP

    scp = StatusSCP().start()
    link = Link(destination("pacs", scp.port), "LEGACYGW")
    try:
        link.open([(CTImageStorage, ExplicitVRLittleEndian)])
        queue = link.assoc.dimse.msg_queue
        response = C_STORE()
        response.MessageIDBeingRespondedTo = link._next_message_id()
        response.Status = 0x0000
        link.assoc._serve_request(response, 1)
        assert queue.get_nowait() == (1, response)
        stray = C_STORE()
        stray.MessageIDBeingRespondedTo = link.awaiting + 1
        stray.Status = 0x0000
        link.assoc._serve_request(stray, 1)
        assert queue.empty()
    finally:
        link.awaiting = None
        link.close()
        scp.stop()


@pytest.mark.parametrize("sop_class, sop_instance, message_id", [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", 7),        # odd-length UID: padded
    ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4", 65535),     # even-length UID
])
def test_our_c_store_command_set_is_pynetdicoms(sop_class, sop_instance, message_id):
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    from gateway.delivery.store_request import command_set

    request = C_STORE()
    request.MessageID, request.Priority = message_id, 0x0000
    request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = sop_class, sop_instance
    request._dataset_path = ("unused", 0)
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    assert command_set(sop_class, sop_instance, message_id) == encode(message.command_set, True, True)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.5"])
def test_data_set_offset_agrees_with_pynetdicom(tmp_path, syntax):
    from pydicom.uid import RLELossless
    from pynetdicom.dsutils import split_dataset

    from gateway.delivery.store_request import data_set_offset
    from tests.support.instances import ct_instance

    ds = ct_instance(0, 16, transfer_syntax=syntax if syntax != RLELossless else ExplicitVRLittleEndian)
    if syntax == RLELossless:
        ds.compress(RLELossless, generate_instance_uid=False)
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert data_set_offset(path) == split_dataset(path)[1]
