"""Send files to one destination now, through the same spool the service uses.

Each file is identified and converted exactly as the service would (``gateway.pipeline``),
made durable in the spool, and delivered: by this command's own forwarder, or by the running
service when there is one (only one process forwards from a spool). The command waits for
every instance to be delivered or dead-lettered and reports each file.

With many files, worker processes (``--jobs``, made before any thread of this command starts)
identify and convert them in parallel and write each file straight into the spool's staging
area (``Staging``: fsynced there, unless the spool's commit flushes the whole file system);
they hand back only a small record (``Prepared``). This process alone records them
(``spool_prepared``: one group commit a batch, ``Spool.intake``), and reports a file only from
the spool's rows, so nothing is reported that is not durable. A staged file nobody records is
removed (an unneeded one at once, a failed batch's with it), or swept at the next spool opening
if its worker died. The workers are forked as soon as the rules are known, and the forwarder
(pynetdicom) is imported only then, while they already convert. The wait for delivery looks at
the rows whenever the forwarder records outcomes.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from gateway import logs
from gateway.commands.base import add_config_argument
from gateway.commands.common import load_or_report
from gateway.delivery.spool import DEAD, DELIVERED, WAITING, Added, Header, Spool, SpoolBusy, Staged, Staging
from gateway.dicom.normalize import SiteRules
from gateway.errors import DecodeError
from gateway.files import claimed_paths, read_capture
from gateway.pipeline import prepare
from gateway.routing import Routing

if TYPE_CHECKING:  # imported in ``run`` once the workers are forked: pynetdicom takes ~0.1 s
    from gateway.delivery.forwarder import Forwarder

WINDOW = 64  # files handed to the workers ahead of the spool: bounds what is staged (on disk) in between
BATCH = 8  # files a worker converts per task, and this process (no workers) before they are spooled together
GROUP = 32  # the workers' files spooled together, at least: each commit costs flushes and time under the spool's lock
WORKER_NICE = 10  # the workers' priority below this process's (see _start_worker)
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
    """One file, converted (``staged``, its Part-10 file in the spool's staging area, and
    ``header``, what the spool records of the instance) or not (``problem`` says why), and the
    companion files it claimed. Small: this is all a worker sends back."""

    path: Path
    claimed: tuple[Path, ...] = ()
    staged: Staged | None = None
    header: Header | None = None
    problem: str | None = None


@dataclass(frozen=True)
class _Setup:
    """What ``prepare_path`` needs besides the file: the rules and where to stage."""

    rules: SiteRules
    routing: Routing | None
    staging: Staging | None


_setup = _Setup(SiteRules(), None, None)  # a worker's (set before it starts)


def _use(setup: _Setup) -> None:
    global _setup
    _setup = setup


def _start_worker(setup: _Setup) -> None:
    """A worker's start: the rules, and a lower priority than this process's. This process's
    commits and forwarding then take the CPU when they have work, and the workers the rest:
    delivery keeps pace with the conversion (no backlog left to send after the last file), and
    the first commit comes before the workers have filled their window and wait."""
    _use(setup)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)


def prepare_path(path: Path) -> Prepared:
    """Read and convert one file as the service would, and stage it in the spool, fsynced
    unless the commit flushes the file system (in a worker, or in this process). A full spool
    (``IntakePaused``) or a failed write is raised."""
    try:
        capture = read_capture(path, "send")
    except OSError as exc:
        return Prepared(path, problem=f"cannot read: {exc.strerror}")
    claimed = tuple(claimed_paths(capture))
    try:
        instance = prepare(capture, _setup.rules, _setup.routing)  # coerced too
    except DecodeError as exc:  # UnknownFormat too: dropped later if a later file names it as its data file
        return Prepared(path, claimed, problem=f"rejected: {exc}")
    header = Header.of(instance.dataset)
    staging = _setup.staging
    assert staging is not None, "prepare_path before _use"
    staging.check(len(instance.data))
    return Prepared(path, claimed, staging.write_bytes(header.sop_instance_uid, instance.data, sync=True), header)


def prepare_paths(paths: list[Path]) -> list[Prepared]:
    """``prepare_path`` of each (a worker's task); if one raises, the files already staged
    for the others are removed."""
    return _collect(prepare_path(path) for path in paths)


def spool_prepared(spool: Spool, prepared: list[Prepared], dest: str, resend: bool) -> list[Added]:
    """Make converted files durable in the spool, queued for ``dest`` (``resend``: even where
    it has them already); the one step of this command that records in the spool, in order,
    returning once every one of them is stored: one group commit (``Spool.intake``) for the
    batch, adopting the staged files. If it raises, none is recorded and their files are gone."""
    if not prepared:
        return []  # (a purge of no instances would purge them all)
    intake = spool.intake()
    try:
        if resend:
            spool.purge(dest, [DELIVERED, DEAD], [item.header.sop_instance_uid for item in prepared if item.header])
        for item in prepared:
            assert item.staged is not None and item.header is not None
            intake.add_staged(item.staged, item.header, [dest], source="send", origin=str(item.path))
        return intake.commit()
    except BaseException:
        intake.discard()
        _remove(prepared)  # those not adopted yet
        raise


def _collect(results: Iterable[Prepared]) -> list[Prepared]:
    """A batch of prepared files; if getting one raises (a full spool, a broken pool), those
    got already lose their staged files."""
    batch: list[Prepared] = []
    try:
        for item in results:
            batch.append(item)
    except BaseException:
        _remove(batch)
        raise
    return batch


def _remove(prepared: list[Prepared]) -> None:
    for item in prepared:
        if item.staged is not None:
            item.staged.remove()


def _pool(jobs: int, files: list[Path], setup: _Setup) -> ProcessPoolExecutor | None:
    """Worker processes for ``files``, or None where one process does as well. Forked (they
    inherit the loaded modules, the rules and the staging area), so they are started here,
    before this process opens the spool or starts a thread; a worker that dies breaks the pool
    (an error, not a hang)."""
    _use(setup)
    jobs = min(jobs, len(files) // 4)  # a few files: forking costs more than it saves
    if jobs < 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker,
                               initargs=(setup,))


class Conversion:
    """The files converted (``prepare_path``), in their order, in batches: by the workers,
    ``WINDOW`` files ahead of the spool from the moment this is made (the first submission
    forks every worker), ``BATCH`` files a task (one result to pickle and one future to settle
    per batch, not per file), handed on ``GROUP`` files at least with those ready after them
    (one commit each: its flushes, and its time under the spool's lock while the forwarder
    waits to record); or in this process. ``close`` removes the staged files of whatever was
    converted but not taken (the command failed)."""

    def __init__(self, files: list[Path], pool: ProcessPoolExecutor | None):
        self._files = files
        self._pool = pool
        self._waiting = iter(files)
        self._pending: deque[Future] = deque()
        if pool is not None:
            self._submit(WINDOW // BATCH)

    def _submit(self, tasks: int) -> None:
        assert self._pool is not None
        for _ in range(tasks):
            paths = list(islice(self._waiting, BATCH))
            if not paths:
                return
            self._pending.append(self._pool.submit(prepare_paths, paths))

    def __iter__(self) -> Iterator[list[Prepared]]:
        if self._pool is None:
            for start in range(0, len(self._files), BATCH):
                yield prepare_paths(self._files[start:start + BATCH])
            return
        while self._pending:
            tasks = min(GROUP // BATCH, len(self._pending))  # waited for, then those ready after them
            while tasks < len(self._pending) and self._pending[tasks].done():
                tasks += 1
            # Taken off one by one: if one raises, the rest stay pending for ``close``.
            batch = _collect(item for _ in range(tasks) for item in self._pending.popleft().result())
            self._submit(tasks)
            yield batch

    def close(self) -> None:
        pending, self._pending = self._pending, deque()
        for future in pending:
            if future.cancel():
                continue
            with contextlib.suppress(BaseException):
                _remove(future.result())


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
    pool = _pool(args.jobs, files, _Setup(config.site, config.routing,
                                          Staging(config.spool_dir, config.durable, config.floor())))
    conversion = Conversion(files, pool)
    try:
        from gateway.delivery.forwarder import Forwarder  # while the workers convert the first files

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
            return _send(args, conversion, pool, dest.name, spool, forwarder)
        finally:
            if forwarder is not None:
                forwarder.stop()
            spool.close()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        conversion.close()


def _send(args, conversion: Conversion, pool: ProcessPoolExecutor | None, dest: str, spool: Spool,
          forwarder: Forwarder | None) -> int:
    results: dict[Path, str] = {}
    uids: dict[Path, str] = {}
    already: set[str] = set()  # the destination had it (or was about to): nothing new queued
    claimed: set[Path] = set()  # companion files (an Interfile data file) go with the file naming them
    for batch in conversion:
        converted = []
        for item in batch:
            if claimed and item.path.resolve() in claimed:
                results.pop(item.path, None)
                _remove([item])
                continue
            claimed.update(item.claimed)
            if item.problem is not None:
                results[item.path] = item.problem
            else:
                converted.append(item)
        queued = 0
        for item, added in zip(converted, spool_prepared(spool, converted, dest, args.resend)):
            uids[item.path] = added.sop_instance_uid
            if added.queued:
                queued += 1
            else:
                already.add(added.sop_instance_uid)
        if queued and forwarder is not None:
            forwarder.notify((dest,), queued)
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
        if not spool.count(dest, WAITING, uids):
            return
        if forwarder is None:
            time.sleep(0.1)
        else:
            seen = forwarder.wait_progress(seen, min(LOOK_AGAIN, max(0.0, deadline - time.monotonic())))
