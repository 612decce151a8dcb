"""The command line: send, queue, echo, as an operator runs them (``python -m gateway``)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from gateway.delivery.spool import DEAD, Settlement, Spool
from tests.support.forwarding import orthanc_uids, spool_instances, wait_until, write_config
from tests.support.instances import ct_instance
from tests.support.peers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _config(tmp_path: Path, port: int, called_ae: str = "STORESCP", **blocks) -> Path:
    return write_config(tmp_path / "gateway.yaml", tmp_path / "spool", [
        {"name": "pacs", "host": "127.0.0.1", "port": port, "called_ae": called_ae,
         "retry": {"initial_delay": "100ms", "max_delay": "500ms"}},
        {"name": "nowhere", "host": "127.0.0.1", "port": free_port(), "called_ae": "NOBODY"},
    ], **blocks)


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.dcm"
        ct_instance(i).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_send_files_and_folders_through_the_spool(storescp, tmp_path):
    config = _config(tmp_path, storescp.port)
    files = _files(tmp_path / "in", 3)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    out = _cli("send", "-c", config, tmp_path / "in", "--to", "pacs")
    assert out.returncode == 1, out.stdout + out.stderr  # one file is not an image
    assert out.stdout.count(": delivered sop=") == 3
    assert "notes.txt: rejected:" in out.stdout
    assert "3 of 4 delivered to pacs" in out.stdout
    assert len(storescp.received()) == 3
    assert Spool(tmp_path / "spool").files_on_disk() == []
    again = _cli("send", "-c", config, *files, "--to", "pacs")
    assert again.returncode == 0 and again.stdout.count("delivered earlier, not sent again") == 3
    assert len(storescp.received()) == 3
    forced = _cli("send", "-c", config, files[0], "--to", "pacs", "--resend")
    assert forced.returncode == 0 and ": delivered sop=" in forced.stdout
    assert len(storescp.received()) == 4
    unknown = _cli("send", "-c", config, files[0], "--to", "elsewhere")
    assert unknown.returncode == 2 and "no destination named 'elsewhere'" in unknown.stdout


def test_queue_list_show_retry_dead_and_purge(tmp_path):
    config = _config(tmp_path, free_port())
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 3, ["pacs"])
    spool.settle(Settlement(i, DEAD, "0xA900", "error: data set does not match SOP class")
                 for i in spool.claim("pacs", 2))
    listing = _cli("queue", "-c", config, "list", "--state", "dead")
    assert listing.returncode == 0
    dead = [u for u in uids if u in listing.stdout]
    assert len(dead) == 2 and "does not match SOP class" in listing.stdout
    shown = _cli("queue", "-c", config, "show", dead[0])
    assert "state            dead" in shown.stdout and "0xA900" in shown.stdout
    assert _cli("queue", "-c", config, "show", "1.2.3.4").returncode == 1
    retried = _cli("queue", "-c", config, "retry-dead", "--dest", "pacs", dead[0])
    assert "1 dead-lettered row(s) queued again" in retried.stdout
    assert {r["state"] for r in spool.rows("pacs", uids=[dead[0]])} == {"queued"}
    purged = _cli("queue", "-c", config, "purge", "--dest", "pacs")  # default: dead letters
    assert "1 row(s) purged" in purged.stdout
    assert sorted(r["sop_instance_uid"] for r in spool.rows()) == sorted(u for u in uids if u != dead[1])
    assert len(spool.files_on_disk()) == 2


def test_echo(storescp, tmp_path):
    config = _config(tmp_path, storescp.port)
    ok = _cli("echo", "-c", config, "pacs")
    assert ok.returncode == 0 and "pacs: STORESCP@127.0.0.1" in ok.stdout and ": OK: C-ECHO status 0x0000" in ok.stdout
    down = _cli("echo", "-c", config, "nowhere")
    assert down.returncode == 1 and "FAILED: cannot connect" in down.stdout


def test_send_while_the_service_runs_goes_through_the_service(orthanc, tmp_path):
    metrics_port = free_port()
    config = _config(tmp_path, orthanc.dicom_port, called_ae="ORTHANC",
                     metrics={"enabled": True, "host": "127.0.0.1", "port": metrics_port})
    with open(tmp_path / "service.log", "wb") as log:
        service = subprocess.Popen([sys.executable, "-m", "gateway", "run", "-c", str(config)], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: Spool(tmp_path / "spool").forwarding_elsewhere(), 30)
        files = _files(tmp_path / "in", 2)
        out = _cli("send", "-c", config, *files, "--to", "pacs")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "the gateway service is running" in out.stdout
        assert len(orthanc_uids(orthanc)) == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        assert 'legacy_gateway_delivered_total{destination="pacs"} 2.0' in text
    finally:
        service.terminate()
        assert service.wait(30) == 0


def test_send_with_worker_processes_reports_what_one_process_does(storescp, samples, tmp_path):
    """``--jobs 2`` (files converted in worker processes) and ``--jobs 0`` (all in this one)
    give the same report of the same folder: every image delivered, the text file rejected,
    and an Interfile data file taken with its header, not reported on its own."""
    folder = tmp_path / "in"
    _files(folder, 10)
    (folder / "notes.txt").write_text("not an image")
    interfile = samples / "interfile" / "stir" / "examples" / "recon_demo"
    for name in ("init.hv", "init.v"):
        (folder / name).write_bytes((interfile / name).read_bytes())
    reports = {}
    for jobs in (0, 2):
        (tmp_path / f"jobs{jobs}").mkdir()
        config = _config(tmp_path / f"jobs{jobs}", storescp.port)
        before = len(storescp.received())
        out = _cli("send", "-c", config, folder, "--to", "pacs", "--jobs", jobs)
        assert out.returncode == 1, out.stdout + out.stderr  # notes.txt
        assert "11 of 12 delivered to pacs" in out.stdout
        assert "init.v:" not in out.stdout and "notes.txt: rejected:" in out.stdout
        assert len(storescp.received()) - before == 11
        assert Spool(tmp_path / f"jobs{jobs}" / "spool").files_on_disk() == []
        reports[jobs] = sorted(line.split(" sop=")[0].replace(str(tmp_path), "") for line in out.stdout.splitlines())
    assert reports[0] == reports[2]


def test_send_reports_only_what_is_durable_and_a_failed_commit_leaves_no_staged_file(storescp, tmp_path):
    """The workers stage files in the spool ahead of it; when the spool cannot record them
    (no file can be put in place: files stand where its folders go), the command fails,
    reports no file as spooled or delivered, sends nothing, and leaves none of the files the
    workers staged meanwhile."""
    config = _config(tmp_path, storescp.port)
    files = tmp_path / "spool" / "files"
    files.mkdir(parents=True)
    for name in (f"{i:02x}" for i in range(256)):
        (files / name).write_bytes(b"in the way")
    _files(tmp_path / "in", 40)
    before = len(storescp.received())
    out = _cli("send", "-c", config, tmp_path / "in", "--to", "pacs", "--jobs", 2)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "legacy-gateway send:" in out.stderr and "delivered" not in out.stdout
    assert list((tmp_path / "spool" / "tmp").iterdir()) == []  # looked at before an opening sweeps it
    spool = Spool(tmp_path / "spool")
    assert spool.rows() == [] and spool.files_on_disk() == [] and len(storescp.received()) == before


def test_send_again_with_worker_processes_stages_nothing_it_keeps(storescp, tmp_path):
    """What the destination has already is reported so, and the files the workers staged
    again for it are removed: the spool holds nothing more than after the first send."""
    config = _config(tmp_path, storescp.port)
    _files(tmp_path / "in", 12)
    first = _cli("send", "-c", config, tmp_path / "in", "--to", "pacs", "--jobs", 2)
    assert first.returncode == 0 and "12 of 12 delivered to pacs" in first.stdout, first.stdout + first.stderr
    received = len(storescp.received())
    again = _cli("send", "-c", config, tmp_path / "in", "--to", "pacs", "--jobs", 2)
    assert again.returncode == 0 and again.stdout.count("delivered earlier, not sent again") == 12
    assert len(storescp.received()) == received
    assert list((tmp_path / "spool" / "tmp").iterdir()) == [] and Spool(tmp_path / "spool").files_on_disk() == []


def test_send_workers_yield_to_the_process_that_spools_and_forwards(tmp_path):
    """``send``'s conversion workers run at a lower priority than the command itself, so its
    commits and forwarding get the CPU when they have work (``WORKER_NICE``)."""
    from gateway.commands import send
    from gateway.delivery.spool import Staging
    from gateway.dicom.normalize import SiteRules

    pool = send._pool(2, [tmp_path / str(i) for i in range(8)], send._Setup(SiteRules(), None, Staging(tmp_path)))
    assert pool is not None
    try:
        seen = {pool.submit(os.nice, 0).result() for _ in range(6)}
    finally:
        pool.shutdown()
    assert seen == {min(19, os.nice(0) + send.WORKER_NICE)}


def test_send_spools_the_workers_results_in_groups(tmp_path):
    """The workers' results reach the spool in groups of ``GROUP`` files at least (the last
    one excepted), in the files' order, each converted file staged once."""
    from gateway.commands import send
    from gateway.delivery.spool import Staging
    from gateway.dicom.normalize import SiteRules

    files = _files(tmp_path / "in", 2 * send.GROUP + 11)
    pool = send._pool(2, files, send._Setup(SiteRules(), None, Staging(tmp_path / "spool")))
    conversion = send.Conversion(files, pool)
    try:
        batches = list(conversion)
    finally:
        pool.shutdown()
        conversion.close()
    sizes = [len(b) for b in batches]
    assert all(size >= send.GROUP for size in sizes[:-1]) and sum(sizes) == len(files), sizes
    assert [item.path for batch in batches for item in batch] == files
    staged = [item.staged for batch in batches for item in batch]
    assert all(s is not None and s.path.exists() for s in staged) and len({s.path for s in staged}) == len(files)
