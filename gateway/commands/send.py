"""Send files to one destination now, through the same spool the service uses.

Each file is identified and converted exactly as the service would (``gateway.pipeline``),
made durable in the spool, and delivered: by this command's own forwarder, or by the running
service when there is one (only one process forwards from a spool). The command waits for
every instance to be delivered or dead-lettered and reports each file.

With many files, worker processes (``--jobs``, made before any thread of this command starts)
identify and convert them in parallel; this process alone writes the spool
(``spool_prepared``), and reports a file only from the spool's rows, so nothing is reported
that is not durable. The wait for delivery looks at the rows whenever the forwarder records
outcomes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

from pydicom.dataset import Dataset, FileMetaDataset

from gateway import logs
from gateway.commands.base import add_config_argument
from gateway.commands.common import load_or_report
from gateway.delivery.forwarder import Forwarder
from gateway.delivery.spool import DEAD, DELIVERED, WAITING, Added, Spool, SpoolBusy
from gateway.dicom.normalize import SiteRules
from gateway.errors import DecodeError
from gateway.files import claimed_paths, read_capture
from gateway.pipeline import prepare
from gateway.routing import Routing

WINDOW = 16  # files handed to the workers ahead of the spool: bounds the memory held in between
BATCH = 8  # files converted in this process (no workers) before they are spooled together
LOOK_AGAIN = 1.0  # seconds between looks at the rows when no outcome wakes the wait earlier


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR",
                        help="files, or folders (searched recursively)")
    parser.add_argument("--to", required=True, metavar="DEST", help="destination name from the configuration")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for delivery (default 600)")
    parser.add_argument("--resend", action="store_true",
                        help="send again what the destination already has (default: skip it)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker processes converting files while this one spools and sends "
                             "(default: one per CPU; 0: none, all in this process)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every delivery")


def _files(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class Prepared:
    """One file, converted (``data``, the Part-10 bytes, and ``header``, what the spool records
    of the instance) or not (``problem`` says why), and the companion files it claimed."""

    path: Path
    claimed: tuple[Path, ...] = ()
    data: bytes | None = field(default=None, repr=False)
    header: Dataset | None = None
    problem: str | None = None


_rules: tuple[SiteRules, Routing | None] = (SiteRules(), None)  # a worker's (set before it starts)


def _use_rules(rules: SiteRules, routing: Routing | None) -> None:
    global _rules
    _rules = (rules, routing)


def prepare_path(path: Path) -> Prepared:
    """Read and convert one file as the service would (in a worker, or in this process)."""
    try:
        capture = read_capture(path, "send")
    except OSError as exc:
        return Prepared(path, problem=f"cannot read: {exc.strerror}")
    claimed = tuple(claimed_paths(capture))
    try:
        instance = prepare(capture, *_rules)  # coerced too
    except DecodeError as exc:  # UnknownFormat too: dropped later if a later file names it as its data file
        return Prepared(path, claimed, problem=f"rejected: {exc}")
    return Prepared(path, claimed, instance.data, _spool_header(instance.dataset))


_RECORDED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def _spool_header(ds: Dataset) -> Dataset:
    """What ``Spool.add_bytes`` records of an instance (its UIDs and transfer syntax): all a
    worker sends back beside the bytes, as pickling the whole dataset costs the parent more."""
    header = Dataset()
    for keyword in _RECORDED:
        if keyword in ds:
            setattr(header, keyword, ds[keyword].value)
    header.file_meta = FileMetaDataset()
    header.file_meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    return header


def spool_prepared(spool: Spool, prepared: list[Prepared], dest: str, resend: bool) -> list[Added]:
    """Make converted files durable in the spool, queued for ``dest`` (``resend``: even where
    it has them already); the one step of this command that writes the spool, in order,
    returning once every one of them is stored: one group commit (``Spool.intake``) for the batch."""
    if resend:
        spool.purge(dest, [DELIVERED, DEAD], [str(item.header.SOPInstanceUID) for item in prepared])
    intake = spool.intake()
    try:
        for item in prepared:
            intake.add_bytes(item.data, item.header, [dest], source="send", origin=str(item.path))
    except BaseException:
        intake.discard()
        raise
    return intake.commit()


def _pool(jobs: int, files: list[Path], rules: SiteRules, routing: Routing | None) -> ProcessPoolExecutor | None:
    """Worker processes for ``files``, or None where one process does as well. Forked (they
    inherit the loaded modules and the rules), so they are started here, before this process
    opens the spool or starts a thread; a worker that dies breaks the pool (an error, not a
    hang)."""
    jobs = min(jobs, len(files) // 4)  # a few files: forking costs more than it saves
    if jobs < 1 or "fork" not in multiprocessing.get_all_start_methods():
        _use_rules(rules, routing)
        return None
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_use_rules,
                               initargs=(rules, routing))
    pool.submit(int)  # the first task forks every worker, now
    return pool


def _prepared(files: list[Path], pool: ProcessPoolExecutor | None) -> Iterator[list[Prepared]]:
    """The files converted, in their order, in batches of those ready together."""
    if pool is None:
        for start in range(0, len(files), BATCH):
            yield [prepare_path(path) for path in files[start:start + BATCH]]
        return
    waiting = iter(files)
    pending = deque(pool.submit(prepare_path, path) for path in islice(waiting, WINDOW))
    while pending:
        batch = [pending.popleft().result()]
        while pending and pending[0].done():
            batch.append(pending.popleft().result())
        pending.extend(pool.submit(prepare_path, path) for path in islice(waiting, len(batch)))
        yield batch


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    logs.setup("INFO" if args.verbose else "WARNING")
    try:
        dest = config.destination(args.to)
    except KeyError as exc:
        print(exc.args[0])
        return 2
    files = _files(args.paths)
    pool = _pool(args.jobs, files, config.site, config.routing)
    try:
        spool = Spool(config.spool_dir, durable=config.durable, floor=config.floor())
        forwarder = Forwarder([dest], spool, config.ae_title, commitment=config.commitment) if dest.enabled else None
        try:
            if forwarder is not None:
                try:
                    forwarder.start(wait=False)
                except SpoolBusy:
                    forwarder = None
                    print("the gateway service is running: it delivers what this command spools")
            elif not spool.forwarding_elsewhere():
                print(f"destination {dest.name} is disabled and no service runs: the files are only spooled")
            return _send(args, files, pool, dest.name, spool, forwarder)
        finally:
            if forwarder is not None:
                forwarder.stop()
            spool.close()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _send(args, files: list[Path], pool: ProcessPoolExecutor | None, dest: str, spool: Spool,
          forwarder: Forwarder | None) -> int:
    results: dict[Path, str] = {}
    uids: dict[Path, str] = {}
    already: set[str] = set()  # the destination had it (or was about to): nothing new queued
    claimed: set[Path] = set()  # companion files (an Interfile data file) go with the file naming them
    for batch in _prepared(files, pool):
        converted = []
        for item in batch:
            if claimed and item.path.resolve() in claimed:
                results.pop(item.path, None)
                continue
            claimed.update(item.claimed)
            if item.problem is not None:
                results[item.path] = item.problem
            else:
                converted.append(item)
        for item, added in zip(converted, spool_prepared(spool, converted, dest, args.resend)):
            uids[item.path] = added.sop_instance_uid
            if not added.queued:
                already.add(added.sop_instance_uid)
            elif forwarder is not None:
                forwarder.notify(added.queued)
    if pool is not None:
        pool.shutdown(wait=False)  # every file converted: the workers may go
    for path in [p for p in results if p.resolve() in claimed]:
        del results[path]
    _wait(args.timeout, dest, spool, forwarder, list(uids.values()))
    final = {r["sop_instance_uid"]: r for r in spool.rows(dest, None, list(uids.values()), limit=len(uids) or 1)}
    for path, uid in uids.items():
        row = final.get(uid)
        if row is None:
            results[path] = f"not in the spool (purged meanwhile?) sop={uid}"
        elif row["state"] == DELIVERED and uid in already:
            results[path] = f"delivered earlier, not sent again (--resend to send it) sop={uid}"
        elif row["state"] == DELIVERED:
            results[path] = f"delivered sop={uid} status={row['last_status']}"
        elif row["state"] == DEAD:
            results[path] = f"dead-lettered sop={uid}: {row['reason'] or row['last_status']}"
        else:
            results[path] = f"still {row['state']} after {args.timeout:.0f}s sop={uid}: {row['reason'] or '-'}"
    ok = 0
    for path, text in results.items():
        print(f"{path}: {text}")
        ok += text.startswith("delivered")
    print(f"{ok} of {len(results)} delivered to {dest}")
    return 0 if results and ok == len(results) else 1


def _wait(timeout: float, dest: str, spool: Spool, forwarder: Forwarder | None, uids: list[str]) -> None:
    """Until none of ``uids`` waits for ``dest`` any more, or ``timeout``. Our own forwarder
    wakes the wait when it records outcomes; the service's cannot, so then it looks every 0.1 s."""
    deadline = time.monotonic() + timeout
    seen = forwarder.progress() if forwarder is not None else 0
    while uids and time.monotonic() < deadline:
        if not spool.rows(dest, WAITING, uids, limit=len(uids)):
            return
        if forwarder is None:
            time.sleep(0.1)
        else:
            seen = forwarder.wait_progress(seen, min(LOOK_AGAIN, max(0.0, deadline - time.monotonic())))
