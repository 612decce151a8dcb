"""The service SIGKILLed at random moments while it forwards, 20 times, restarted each time:
every instance arrives in Orthanc, none is lost, nothing is left in the spool."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from gateway.delivery.spool import DELIVERED, Spool
from tests.support.forwarding import orthanc_uids, spool_instances, wait_until, write_config

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 20
PER_ROUND = 100


def _daemon(config: Path, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gateway", "run", "-c", str(config)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def test_sigkill_during_forwarding_20_times_loses_nothing(orthanc, tmp_path):
    spool_dir = tmp_path / "spool"
    config = write_config(tmp_path / "gateway.yaml", spool_dir, [{
        "name": "pacs", "host": "127.0.0.1", "port": orthanc.dicom_port, "called_ae": "ORTHANC",
        "associations": 2, "timeout": "10s",
        "retry": {"initial_delay": "100ms", "max_delay": "1s", "give_up_after": "1h"},
    }])
    seed = int(os.environ.get("KILL_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    spool = Spool(spool_dir)  # the test's own view: it spools and watches, the daemon forwards
    uids: list[str] = []
    killed_mid_forwarding = 0
    with open(tmp_path / "daemon.log", "wb") as log:
        for _ in range(ROUNDS):
            uids += spool_instances(spool, PER_ROUND, ["pacs"], size=32)
            # Kill it at a random moment of its forwarding: after a random number of deliveries
            # are recorded (outcomes are committed per batch, so this lands anywhere in a batch).
            target = spool.pending("pacs") - rng.randint(1, PER_ROUND - 10)
            proc = _daemon(config, log)
            wait_until(lambda target=target, proc=proc: spool.pending("pacs") <= target or proc.poll() is not None,
                       30, 0.005)
            assert proc.poll() is None, f"the daemon exited by itself (seed {seed}); see {tmp_path / 'daemon.log'}"
            killed_mid_forwarding += spool.pending("pacs") > 0
            proc.kill()
            proc.wait()
        # A last run, with new work so that draining proves it is up (and handles SIGTERM).
        uids += spool_instances(spool, PER_ROUND, ["pacs"], size=32)
        proc = _daemon(config, log)
        try:
            assert wait_until(lambda: spool.pending("pacs") == 0, 60), f"not drained (seed {seed})"
        finally:
            proc.terminate()
            assert proc.wait(30) == 0
    assert killed_mid_forwarding >= ROUNDS // 2, f"most kills should land mid-forwarding (seed {seed})"
    stored = orthanc_uids(orthanc)
    assert len(stored) == len(set(stored)) == len(uids)
    assert set(stored) == set(uids), f"lost or foreign instances (seed {seed})"
    rows = spool.rows(limit=100000)
    assert len(rows) == len(uids) and {r["state"] for r in rows} == {DELIVERED}
    assert spool.files_on_disk() == []
    assert list(spool.tmp.iterdir()) == []
    assert list(spool.gone.iterdir()) == []
