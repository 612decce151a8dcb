"""The delivery half of the spool: claims, outcomes, recovery, files, operator actions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from gateway.delivery.spool import COMMITTING, DEAD, DELIVERED, IN_FLIGHT, QUEUED, Settlement, Spool, SpoolBusy
from tests.support.forwarding import spool_instances


def test_concurrent_claims_never_hand_out_the_same_item(tmp_path):
    spool = Spool(tmp_path, durable=False)
    uids = spool_instances(spool, 200, ["a"])
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer():
        while items := spool.claim("a", 5):
            with lock:
                claimed.extend(i.sop_instance_uid for i in items)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(uids)


def test_only_one_process_forwards_and_a_killed_one_lets_go(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from gateway.delivery.spool import Spool; s = Spool(sys.argv[1]); s.acquire_forwarding(); "
         "print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        spool = Spool(tmp_path)
        assert spool.forwarding_elsewhere()
        with pytest.raises(SpoolBusy):
            spool.acquire_forwarding()
    finally:
        holder.kill()
        holder.wait()
    spool.acquire_forwarding()  # the kernel released the dead process's lock
    spool.release_forwarding()


def test_a_crash_leaves_in_flight_items_due_again(tmp_path):
    spool = Spool(tmp_path)
    uids = spool_instances(spool, 3, ["a"])
    assert len(spool.claim("a", 10)) == 3
    spool.close()  # as if the process died here
    again = Spool(tmp_path)
    assert {r["state"] for r in again.rows("a")} == {IN_FLIGHT}
    assert again.recover() == 3
    rows = again.rows("a")
    assert {r["state"] for r in rows} == {QUEUED} and all(r["next_attempt"] <= time.time() for r in rows)
    assert sorted(i.sop_instance_uid for i in again.claim("a", 10)) == sorted(uids)


def test_file_removed_only_when_every_destination_has_it(tmp_path):
    spool = Spool(tmp_path)
    spool_instances(spool, 1, ["a", "b"])
    (a,) = spool.claim("a", 1)
    spool.settle([Settlement(a, DELIVERED, "0x0000")])
    assert len(spool.files_on_disk()) == 1
    (b,) = spool.claim("b", 1)
    spool.settle([Settlement(b, COMMITTING, "0x0000", transaction_uid="1.2.3")])
    assert len(spool.files_on_disk()) == 1  # sent, not yet committed
    spool.committed("1.2.3", [b.sop_instance_uid], ["b"])
    assert spool.files_on_disk() == []
    assert spool.rows(uids=[a.sop_instance_uid])[0]["path"] is None


def test_dead_letters_keep_their_file_and_come_back_fresh(tmp_path):
    spool = Spool(tmp_path)
    (uid,) = spool_instances(spool, 1, ["a"])
    (item,) = spool.claim("a", 1)
    spool.settle([Settlement(item, DEAD, "0xA900", "error: data set does not match SOP class")])
    assert len(spool.files_on_disk()) == 1
    before = spool.rows("a")[0]
    time.sleep(0.01)
    assert spool.requeue("a", [DEAD]) == 1
    row = spool.rows("a")[0]
    assert (row["state"], row["attempts"]) == (QUEUED, 0)
    assert row["queued_at"] > before["queued_at"]  # a fresh give-up age
    assert spool.claim("a", 1)[0].sop_instance_uid == uid


def test_purge_forgets_rows_and_files_nobody_waits_for(tmp_path):
    spool = Spool(tmp_path)
    spool_instances(spool, 2, ["a"])
    first, second = spool.claim("a", 2)
    spool.settle([Settlement(first, DEAD, "0xC000", "cannot understand"),
                  Settlement(second, QUEUED, "0xA700", "out of resources", time.time() + 60)])
    assert spool.purge("a", [DEAD]) == 1
    assert [r["sop_instance_uid"] for r in spool.rows()] == [second.sop_instance_uid]
    assert len(spool.files_on_disk()) == 1
    assert spool.purge("a", [IN_FLIGHT]) == 0  # never what a sender holds


def test_expiry_dead_letters_what_failed_too_long(tmp_path):
    spool = Spool(tmp_path)
    spool_instances(spool, 2, ["a"])
    tried, untried = sorted(spool.claim("a", 2), key=lambda i: i.sop_instance_uid)
    spool.settle([Settlement(tried, QUEUED, "0xA700", "out of resources", time.time()),
                  Settlement(untried, QUEUED, "released", None, time.time(), count_attempt=False)])
    time.sleep(0.05)
    assert spool.expire("a", 0.01) == [tried.sop_instance_uid]  # failed at least once
    assert spool.expire("a", 0.01, unattempted=True) == [untried.sop_instance_uid]  # destination down
    assert {r["state"] for r in spool.rows("a")} == {DEAD}
    assert all("gave up" in r["reason"] for r in spool.rows("a"))


def test_re_adding_what_is_being_committed_queues_nothing(tmp_path):
    from tests.support.instances import ct_instance

    spool = Spool(tmp_path)
    ds = ct_instance(0)
    spool.add(ds, ["a"])
    (item,) = spool.claim("a", 1)
    spool.settle([Settlement(item, COMMITTING, "0x0000", transaction_uid="1.2.3")])
    assert spool.add(ds, ["a"]).queued == ()


_SPINE_SCHEMA = """
CREATE TABLE instances (sop_instance_uid TEXT PRIMARY KEY, sop_class_uid TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL, study_uid TEXT, series_uid TEXT, path TEXT, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, source TEXT, origin TEXT, received REAL NOT NULL);
CREATE TABLE deliveries (sop_instance_uid TEXT NOT NULL, destination TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'in_flight', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, queued_at REAL NOT NULL, next_attempt REAL NOT NULL,
    updated REAL NOT NULL, last_status TEXT, reason TEXT, PRIMARY KEY (sop_instance_uid, destination));
INSERT INTO instances VALUES ('1.2.3', '1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.1.2.1', '', '', NULL, 10,
    'x', 's', 'o', 1.0);
INSERT INTO deliveries VALUES ('1.2.3', 'a', 'dead', 3, 1.0, 1.0, 1.0, '0xA900', 'mismatch');
"""


def test_a_spool_of_the_first_schema_is_migrated(tmp_path):
    db = sqlite3.connect(tmp_path / "spool.db")
    db.executescript(_SPINE_SCHEMA)
    db.close()
    spool = Spool(tmp_path)
    (row,) = spool.rows()
    assert (row["state"], row["attempts"], row["reason"], row["transaction_uid"]) == (DEAD, 3, "mismatch", None)
    with spool._tx() as tx:  # the new state is allowed now
        tx.execute("UPDATE deliveries SET state='committing'")
