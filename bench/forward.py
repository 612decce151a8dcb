"""Forwarding throughput: legacy-gateway's spool + forwarder against DCMTK's ``storescu +sd``.

500 CT instances of 512x512x16 bit (~0.5 MB each) go, in the same run, to

  (a) a discarding pynetdicom Storage SCP with TCP_NODELAY (its own process),
  (b) a stock Orthanc (default DICOM thread count; a fresh one for every sender, so no sender
      profits from instances already stored), and
  (c) DCMTK's ``storescp --ignore`` (a fast C receiver that discards what it gets), with
      ``TCP_NODELAY=1`` in its environment and in storescu's (DCMTK >= 3.6.2 leaves Nagle on
      otherwise, which caps both at ~300 images/s),

with ``storescu +sd`` (one association, as it comes) and through our spool with durability on
(fsynced files, WAL with synchronous=FULL; outcomes committed per batch), with 1, 2 and 4
parallel associations. Our forwarder runs in a child process that reports its wall time (from
start to an empty queue), its CPU time and its peak RSS. A last run queues 2 GB and measures
the forwarder's peak RSS while it sends all of it (``--rss-gb 0`` skips it).

Against (a) and (c), storescu and ours take turns ``--repeat`` times (3 by default) and the
medians are compared, so a burst of load from elsewhere on the machine does not decide the
ratio; the receiver's CPU time per instance is printed next to each run (Linux), the same way
for both (targets: forwarding to (c) at least 0.5x storescu).

End to end, against (c): ``python -m gateway -c CFG send --to fast FOLDER`` as a subprocess
(imports, conversion, the durable spool with a fresh spool directory every turn, and
delivery), once per ``--send-jobs`` value, taking turns with storescu of the same folder to
the same receiver; medians and ratio (target: at least 0.3x). ``--compare-with DIR`` times the
``send`` of other checkouts (main, say) in the same turns, to show what a change bought.

    python bench/forward.py [--count 500] [--associations 1,2,4] [--repeat 3] [--rss-gb 2]
                            [--skip-orthanc] [--skip-dcmtk] [--send-jobs 1,2] [--compare-with DIR]

With one association, (a) leaves little room above storescu: its DUL thread naps ~1 ms after
each answer before it looks for the next request, and with the naps of its reactor a C-STORE
cycle takes ~3.4 ms whatever the sender does (measured here: a bare loop writing pre-framed
requests the instant each answer arrives, no spool, made 255-282 images/s where storescu made
260-271 in the same conditions). Parallel associations fill those naps.

The machine is shared: the load average is printed with every measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORESCU = "/usr/bin/storescu"  # DCMTK's, not pynetdicom's console script of the same name


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the discarding receiver (a child process) -------------------------------------------

def serve_discard(port: int) -> None:
    import socket

    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    ae = AE("DISCARD")
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_supported_context(Verification)
    ae.maximum_associations = 16

    def nodelay(event):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_C_STORE, lambda event: 0x0000), (evt.EVT_CONN_OPEN, nodelay)])
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.shutdown()


@contextlib.contextmanager
def discard_scp() -> Iterator[tuple[subprocess.Popen, int]]:
    """The discarding receiver in its own process, ready: (process, port)."""
    from tests.support.peers import free_port, wait_for_port

    port = free_port()
    scp = subprocess.Popen([sys.executable, __file__, "--discard-scp", str(port)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    try:
        assert scp.stdout.readline().strip() == "ready"
        wait_for_port(port)
        yield scp, port
    finally:
        scp.stdin.close()  # serve_discard returns when its stdin closes
        scp.wait(30)


# -- our forwarder (a child process) ------------------------------------------------------

def child_forward(spool_dir: str, port: int, aet: str, associations: int) -> None:
    import logging

    from gateway.config import Destination
    from gateway.delivery.forwarder import Forwarder
    from gateway.delivery.spool import Spool

    logging.basicConfig(level=logging.WARNING)
    spool = Spool(spool_dir, durable=True)
    dest = Destination("bench", "127.0.0.1", port, aet, "LEGACYGW", associations=associations, timeout=60.0)
    total = spool.pending("bench")
    forwarder = Forwarder([dest], spool, "LEGACYGW")
    start, cpu = time.perf_counter(), time.process_time()
    forwarder.start()
    drained = forwarder.drain(3600, ["bench"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    forwarder.stop()
    dead = sum(s.dead for s in spool.status())
    print(json.dumps({"seconds": seconds, "count": total, "drained": drained, "dead": dead,
                      "cpu_ms": cpu * 1000 / max(1, total),
                      "maxrss_mb": peak_rss_mb()}), flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux: VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the forked parent through exec, so a child of a parent holding 500 spooled
    images in memory reported the parent's ~330 MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the parent ----------------------------------------------------------------------------

def make_instances(folder: Path, count: int, size: int) -> list[Path]:
    from tests.support.instances import ct_instance

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"ct{i:05d}.dcm"
        ct_instance(i, size).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def fill_spool(spool_dir: Path, files: list[Path], group: int = 1) -> float:
    """Spool the files (durable) as the service would, one commit per file (``group`` 1, as
    ``add_bytes``) or per ``group`` files (``Spool.intake``, as a folder source's groups);
    returns the seconds the spool took. The files are read and their headers parsed first, out
    of the timing: a source hands the spool bytes and a data set it already has."""
    from pydicom import dcmread

    from gateway.delivery.spool import Spool

    shutil.rmtree(spool_dir, ignore_errors=True)
    prepared = [(path.read_bytes(), dcmread(path, stop_before_pixels=True)) for path in files]
    spool = Spool(spool_dir, durable=True)
    start = time.perf_counter()
    for first in range(0, len(prepared), max(1, group)):
        intake = spool.intake()
        for data, ds in prepared[first:first + max(1, group)]:
            intake.add_bytes(data, ds, ["bench"])
        intake.commit()
    seconds = time.perf_counter() - start
    spool.close()
    return seconds


def run_ours(spool_dir: Path, port: int, aet: str, associations: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-forward", str(spool_dir), str(port), aet,
                          str(associations)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["drained"] or result["dead"]:
        raise RuntimeError(f"our forwarder did not deliver everything: {result}\n{out.stderr[-2000:]}")
    return result


def receiver_cpu(pid: int, before: float | None, count: int) -> str:
    after = cpu_seconds(pid)
    if before is None or after is None:
        return ""
    return f"receiver CPU {(after - before) * 1000 / count:.1f} ms/image  "


def run_storescu(folder: Path, port: int, aet: str, nodelay: bool = False) -> float:
    env = {**os.environ, "TCP_NODELAY": "1"} if nodelay else None
    start = time.perf_counter()
    subprocess.run([STORESCU, "+sd", "-aec", aet, "-aet", "STORESCU", "127.0.0.1", str(port), str(folder)],
                   check=True, capture_output=True, env=env)
    return time.perf_counter() - start


# -- (c) DCMTK's storescp --ignore, and the end-to-end send -----------------------------------

@contextlib.contextmanager
def dcmtk_scp() -> Iterator[tuple[subprocess.Popen, int]]:
    """``storescp --ignore`` with TCP_NODELAY=1, listening: (process, port)."""
    from tests.support.peers import free_port, wait_for_port

    port = free_port()
    scp = subprocess.Popen(["storescp", "--ignore", "-aet", "FAST", str(port)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env={**os.environ, "TCP_NODELAY": "1"})
    try:
        wait_for_port(port, proc=scp)
        yield scp, port
    finally:
        scp.terminate()
        scp.wait(30)


def send_config(work: Path, port: int) -> Path:
    """A configuration with one destination, ``fast``: the receiver on ``port``; durable."""
    from tests.support.forwarding import write_config

    return write_config(work / "send.yaml", work / "send-spool", [
        {"name": "fast", "host": "127.0.0.1", "port": port, "called_ae": "FAST"}])


def compile_sources(repo: Path) -> None:
    """Byte-compile a checkout's modules once, before any timing: an installed package has its
    ``.pyc`` files (pip compiles at install), but a checkout run with PYTHONDONTWRITEBYTECODE set
    (or one just changed) compiles every module it imports again in every ``send``."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(repo / "gateway"), str(repo / "drivers")],
                   check=True, capture_output=True)


def run_send(repo: Path, config: Path, folder: Path, count: int, jobs: int | None) -> float:
    """Seconds of one ``send`` of ``folder`` from the checkout ``repo``, with a fresh spool."""
    shutil.rmtree(config.parent / "send-spool", ignore_errors=True)
    shutil.rmtree(config.parent / "state", ignore_errors=True)
    os.sync()  # the removal's and the last run's writes are not this run's
    command = [sys.executable, "-m", "gateway", "-c", str(config), "send", "--to", "fast", str(folder)]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=repo, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    seconds = time.perf_counter() - start
    if out.returncode != 0 or f"{count} of {count} delivered" not in out.stdout:
        raise RuntimeError(f"send did not deliver everything: {out.stdout[-1000:]}{out.stderr[-2000:]}")
    return seconds


def measure_dcmtk(work: Path, files: list[Path], counts: list[int], repeat: int, send_jobs: list[int],
                  compare_with: list[Path]) -> dict[str, float]:
    """(c): storescu +sd against ours forwarding from a filled spool, then ``send`` end to end,
    in alternated turns; returns the median rate of each."""
    with dcmtk_scp() as (scp, port):
        print(f"\n(c) DCMTK storescp --ignore with TCP_NODELAY=1, {repeat} turns each ({load()})")
        runs = forwarding_turns(work, files, scp.pid, port, "FAST", counts, repeat, nodelay=True)
        config = send_config(work, port)
        senders = [(f"send --jobs {j}", ROOT, j) for j in send_jobs]
        senders += [(f"send of {repo.name}", repo, None) for repo in compare_with]
        for repo in dict.fromkeys(repo for _, repo, _ in senders):
            compile_sources(repo)
        print(f"  end to end: storescu +sd and `send` of the same {len(files)} files, alternated ({load()})")
        for _ in range(repeat):
            os.sync()  # each timed run starts with nothing of the previous one left to write back
            t = run_storescu(work / "files", port, "FAST", nodelay=True)
            runs.setdefault("storescu (e2e)", []).append(len(files) / t)
            print(f"  storescu +sd              {t:6.2f} s  {len(files) / t:7.1f} images/s  ({load()})")
            for name, repo, jobs in senders:
                t = run_send(repo, config, work / "files", len(files), jobs)
                runs.setdefault(name, []).append(len(files) / t)
                print(f"  {name:<25} {t:6.2f} s  {len(files) / t:7.1f} images/s  ({load()})")
    return medians(runs)


def forwarding_turns(work: Path, files: list[Path], receiver_pid: int, port: int, aet: str, counts: list[int],
                     repeat: int, nodelay: bool = False) -> dict[str, list[float]]:
    """``repeat`` turns of storescu +sd, then ours with each association count from a filled
    spool, to one receiver; the rates of each sender, turn by turn."""
    runs: dict[str, list[float]] = {}
    for _ in range(repeat):
        before = cpu_seconds(receiver_pid)
        t = run_storescu(work / "files", port, aet, nodelay=nodelay)
        runs.setdefault("storescu", []).append(len(files) / t)
        print(f"  storescu +sd              {len(files) / t:7.1f} images/s  "
              f"{receiver_cpu(receiver_pid, before, len(files))}({load()})")
        for n in counts:
            fill_spool(work / "spool", files)
            before = cpu_seconds(receiver_pid)
            r = run_ours(work / "spool", port, aet, n)
            runs.setdefault(f"ours x{n}", []).append(r["count"] / r["seconds"])
            print(f"  ours, {n} association(s)    {r['count'] / r['seconds']:7.1f} images/s  "
                  f"{receiver_cpu(receiver_pid, before, len(files))}CPU {r['cpu_ms']:.1f} ms/image  "
                  f"peak RSS {r['maxrss_mb']:.0f} MB  ({load()})")
    return runs


def medians(runs: dict[str, list[float]]) -> dict[str, float]:
    """Print and return the median rate of each sender, with its runs."""
    print("  medians:")
    for name, rates in runs.items():
        print(f"    {name:<25} {statistics.median(rates):7.1f} images/s  "
              f"(runs: {', '.join(f'{r:.0f}' for r in rates)})")
    return {name: statistics.median(rates) for name, rates in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=512, help="rows and columns of each CT image")
    parser.add_argument("--associations", default="1,2,4",
                        help="comma-separated association counts to measure ours with (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=3, help="turns of each sender against (a) (default 3)")
    parser.add_argument("--skip-orthanc", action="store_true", help="leave out (b)")
    parser.add_argument("--skip-dcmtk", action="store_true", help="leave out (c) and the end-to-end send")
    parser.add_argument("--send-jobs", default="1,2",
                        help="comma-separated --jobs values to time send with (default 1,2; 1: no workers)")
    parser.add_argument("--compare-with", type=Path, metavar="DIR", action="append", default=[],
                        help="another checkout whose send is timed in the same turns (e.g. /work/main); "
                             "may be repeated")
    parser.add_argument("--rss-gb", type=float, default=2.0, help="GB to queue for the memory run (0: skip)")
    parser.add_argument("--child-forward", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--discard-scp", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(n) for n in str(args.associations).split(",")]
    if args.discard_scp:
        serve_discard(args.discard_scp)
        return 0
    if args.child_forward:
        spool_dir, port, aet, assocs = args.child_forward
        child_forward(spool_dir, int(port), aet, int(assocs))
        return 0

    from tests.support.peers import Orthanc

    work = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    print(f"{os.cpu_count()} CPUs, {load()}; workspace {work}")
    try:
        files = make_instances(work / "files", args.count, args.size)
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"{len(files)} CT instances {args.size}x{args.size}x16, {size_mb:.0f} MB")
        for _ in range(2):  # alternated, so that both meet the same load
            intake = fill_spool(work / "spool", files)
            print(f"spooling (durable, one commit per file): {len(files) / intake:.0f} images/s ({load()})")
            intake = fill_spool(work / "spool", files, group=64)
            print(f"spooling (durable, groups of 64):        {len(files) / intake:.0f} images/s ({load()})")

        results: dict[str, dict[str, float]] = {"discard": {}, "orthanc": {}, "dcmtk": {}, "end to end": {}}
        with discard_scp() as (scp, port):
            print(f"\n(a) discarding pynetdicom SCP with TCP_NODELAY, {args.repeat} turns each ({load()})")
            results["discard"] = medians(forwarding_turns(work, files, scp.pid, port, "DISCARD", counts,
                                                          args.repeat))

        if not args.skip_dcmtk:
            rates = measure_dcmtk(work, files, counts, args.repeat, [int(j) for j in args.send_jobs.split(",")],
                                  args.compare_with)
            results["dcmtk"] = {k: v for k, v in rates.items() if k == "storescu" or k.startswith("ours")}
            results["end to end"] = {"storescu": rates["storescu (e2e)"],
                                     **{k: v for k, v in rates.items() if k.startswith("send")}}

        senders = [] if args.skip_orthanc else ["storescu", *counts]
        if senders:
            print(f"\n(b) stock Orthanc, a fresh one per sender ({load()})")
        for sender in senders:
            orthanc = Orthanc(work / f"orthanc-{sender}").start()
            try:
                if sender == "storescu":
                    t = run_storescu(work / "files", orthanc.dicom_port, "ORTHANC")
                    results["orthanc"]["storescu"] = len(files) / t
                    print(f"  storescu +sd              {len(files) / t:7.1f} images/s  ({load()})")
                else:
                    fill_spool(work / "spool", files)
                    r = run_ours(work / "spool", orthanc.dicom_port, "ORTHANC", sender)
                    results["orthanc"][f"ours x{sender}"] = r["count"] / r["seconds"]
                    print(f"  ours, {sender} association(s)    {r['count'] / r['seconds']:7.1f} images/s  "
                          f"CPU {r['cpu_ms']:.1f} ms/image  peak RSS {r['maxrss_mb']:.0f} MB  ({load()})")
                stored = len(orthanc.get("/instances"))
                if stored != len(files):
                    raise RuntimeError(f"Orthanc holds {stored} instances, expected {len(files)}")
            finally:
                orthanc.stop()
                shutil.rmtree(work / f"orthanc-{sender}", ignore_errors=True)

        print("\nratios ours / storescu (same receiver, same files, same run; (a): of the medians):")
        for receiver, row in results.items():
            if not row:
                continue
            base = row["storescu"]
            for name, rate in row.items():
                if name != "storescu":
                    print(f"  {receiver:<10} {name:<25} {rate / base:5.2f}x")

        if args.rss_gb > 0:
            memory_run(work, files[0], args.rss_gb, max(counts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def memory_run(work: Path, template: Path, gigabytes: float, associations: int) -> None:
    """Queue ``gigabytes`` of instances (copies of one with new UIDs) and forward them all."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    from gateway.delivery.spool import Spool, encode

    ds = dcmread(template)
    per = template.stat().st_size
    count = int(gigabytes * 1e9 / per)
    spool_dir = work / "spool-big"
    spool = Spool(spool_dir, durable=True)
    start = time.perf_counter()
    for _ in range(count):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        spool.add_bytes(encode(ds), ds, ["bench"])
    spool.close()
    queued = sum(p.stat().st_size for p in (spool_dir / "files").rglob("*.dcm")) / 1e9
    print(f"\nmemory: {count} instances, {queued:.2f} GB queued in {time.perf_counter() - start:.0f}s ({load()})")
    try:
        with discard_scp() as (_, port):
            r = run_ours(spool_dir, port, "DISCARD", associations)
        print(f"  forwarded {r['count']} instances with {associations} associations at "
              f"{r['count'] / r['seconds']:.1f} images/s; "
              f"forwarder peak RSS {r['maxrss_mb']:.0f} MB (limit 200 MB) ({load()})")
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
