"""The spool: durable before acknowledged, files kept until every destination has them."""

import sqlite3

import pydicom

from gateway.delivery.spool import DELIVERED, QUEUED, Spool, encode
from tests.support.helpers import ct_instance


def test_add_writes_a_readable_part10_file_and_a_row_per_destination(tmp_path):
    spool = Spool(tmp_path)
    ds = ct_instance(1)
    added = spool.add(ds, ["a", "b"], source="test", origin="test:x")
    assert added.queued == ("a", "b")
    (path,) = spool.files_on_disk()
    assert pydicom.dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    assert not list((tmp_path / "tmp").iterdir())
    rows = sqlite3.connect(tmp_path / "spool.db").execute("SELECT destination, state FROM deliveries").fetchall()
    assert sorted(rows) == [("a", QUEUED), ("b", QUEUED)]


def test_file_is_removed_only_when_every_destination_has_it(tmp_path):
    spool = Spool(tmp_path)
    spool.add(ct_instance(1), ["a", "b"])
    (item_a,) = spool.claim("a", 10)
    spool.delivered(item_a, "0x0000")
    assert len(spool.files_on_disk()) == 1
    (item_b,) = spool.claim("b", 10)
    spool.dead(item_b, "0xA900", "data set does not match SOP class")
    assert len(spool.files_on_disk()) == 1  # a dead letter keeps its file for retry-dead
    status = {s.destination: s for s in spool.status()}
    assert (status["a"].delivered, status["b"].dead, status["b"].last_error) == (
        1, 1, "data set does not match SOP class")


def test_same_instance_again_sends_nothing_twice(tmp_path):
    spool = Spool(tmp_path)
    ds = ct_instance(2)
    spool.add(ds, ["a"])
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    assert spool.files_on_disk() == []
    again = spool.add(ct_instance(2), ["a"])
    assert again.queued == () and spool.files_on_disk() == [] and spool.pending() == 0
    # ... but a destination added later gets it.
    assert spool.add(ct_instance(2), ["a", "c"]).queued == ("c",)


def test_changed_content_under_the_same_uid_is_sent_again(tmp_path):
    spool = Spool(tmp_path)
    spool.add(ct_instance(3), ["a"])
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    changed = ct_instance(3)
    changed.SeriesDescription = "corrected"
    assert spool.add(changed, ["a"]).queued == ("a",)
    (item,) = spool.claim("a", 10)
    assert pydicom.dcmread(item.path).SeriesDescription == "corrected"


def test_in_flight_items_are_due_again_after_a_crash(tmp_path):
    spool = Spool(tmp_path)
    spool.add(ct_instance(4), ["a"])
    assert len(spool.claim("a", 10)) == 1 and spool.claim("a", 10) == []
    spool.close()
    reopened = Spool(tmp_path)  # as after SIGKILL: the row still says in flight
    assert reopened.recover() == 1
    assert [i.sop_instance_uid for i in reopened.claim("a", 10)] == [str(ct_instance(4).SOPInstanceUID)]


def test_retry_waits_until_due(tmp_path):
    spool = Spool(tmp_path)
    spool.add(ct_instance(5), ["a"])
    (item,) = spool.claim("a", 10)
    spool.retry(item, "0xA700", "out of resources", next_attempt=item.queued_at + 3600)
    assert spool.claim("a", 10) == []
    assert len(spool.claim("a", 10, now=item.queued_at + 3601)) == 1


def test_encoding_is_part10_that_pydicom_reads_back():
    import io

    data = encode(ct_instance(6))
    assert data[128:132] == b"DICM"
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID == ct_instance(6).SOPInstanceUID


def test_a_delivered_file_leaves_the_spool_at_once_and_is_deleted_in_the_background(tmp_path):
    spool = Spool(tmp_path)
    spool.add(ct_instance(7), ["a"])
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    assert spool.files_on_disk() == [] and not item.path.exists()
    spool.close()  # waits for the deletion
    assert list((tmp_path / "gone").iterdir()) == []


def test_an_instance_spooled_again_keeps_its_new_file_while_the_old_one_is_deleted(tmp_path):
    """The same bytes come back under the same spool path while the delivered copy still waits
    for its deletion: the new file must survive it."""
    spool = Spool(tmp_path)
    ds = ct_instance(8)
    spool.add(ds, ["a"])
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    assert spool.add(ds, ["b"]).queued == ("b",)
    spool.close()
    reopened = Spool(tmp_path)
    (again,) = reopened.claim("b", 10)
    assert again.path == item.path
    assert pydicom.dcmread(again.path).SOPInstanceUID == ds.SOPInstanceUID


def test_recover_sweeps_what_a_crash_left(tmp_path):
    import os
    import time

    spool = Spool(tmp_path)
    spool.add(ct_instance(9), ["a"])
    (kept,) = spool.files_on_disk()
    old = time.time() - 2 * 3600
    orphan = tmp_path / "files" / "ab" / "orphan.dcm"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash during intake")
    os.utime(orphan, (old, old))
    young = tmp_path / "tmp" / "being-written.tmp"
    young.write_bytes(b"another process is writing this")
    doomed = tmp_path / "gone" / "was-delivered.dcm"
    doomed.write_bytes(b"moved aside, not deleted yet")
    os.utime(kept, (old, old))  # old, but its row still needs it
    spool.recover()
    assert not orphan.exists() and not doomed.exists()
    assert young.exists() and kept.exists()


def test_recover_redoes_the_drop_of_a_delivered_file_that_a_power_cut_undid(tmp_path):
    """The drop of a delivered file commits without its own fsync: a power cut may undo that
    commit after the file was moved aside. The outcome (flushed) stands, ``recover`` clears
    the path again, and the instance is neither sent twice nor unable to come back."""
    spool = Spool(tmp_path)
    ds = ct_instance(10)
    uid = spool.add(ds, ["a"]).sop_instance_uid
    rel = spool.rows()[0]["path"]
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    spool.close()
    db = sqlite3.connect(tmp_path / "spool.db")  # the undone commit: the path is back, its file is not
    db.execute("UPDATE instances SET path=? WHERE sop_instance_uid=?", (rel, uid))
    db.commit()
    db.close()
    reopened = Spool(tmp_path)
    reopened.recover()
    (row,) = reopened.rows()
    assert row["state"] == DELIVERED and row["path"] is None
    assert reopened.files_on_disk() == [] and list((tmp_path / "gone").iterdir()) == []
    assert reopened.add(ds, ["a"]).queued == ()  # delivered already: nothing is sent twice
    assert reopened.add(ds, ["b"]).queued == ("b",)
    (again,) = reopened.claim("b", 10)
    assert pydicom.dcmread(again.path).SOPInstanceUID == uid
