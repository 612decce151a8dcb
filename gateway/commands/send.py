"""Send files to one destination now, through the same spool the service uses.

Each file is identified and converted exactly as the service would (``gateway.pipeline``),
made durable in the spool, and delivered: by this command's own forwarder, or by the running
service when there is one (only one process forwards from a spool). The command waits for
every instance to be delivered or dead-lettered and reports each file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gateway import logs
from gateway.commands.base import add_config_argument
from gateway.commands.common import load_or_report
from gateway.delivery.forwarder import Forwarder
from gateway.delivery.spool import DEAD, DELIVERED, WAITING, Spool, SpoolBusy
from gateway.errors import DecodeError, UnknownFormat
from gateway.files import claimed_paths, read_capture
from gateway.pipeline import prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR",
                        help="files, or folders (searched recursively)")
    parser.add_argument("--to", required=True, metavar="DEST", help="destination name from the configuration")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for delivery (default 600)")
    parser.add_argument("--resend", action="store_true",
                        help="send again what the destination already has (default: skip it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every delivery")


def _files(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            found.append(path)
    return found


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
        return _send(args, config, dest.name, spool, forwarder)
    finally:
        if forwarder is not None:
            forwarder.stop()
        spool.close()


def _send(args, config, dest: str, spool: Spool, forwarder: Forwarder | None) -> int:
    results: dict[Path, str] = {}
    uids: dict[Path, str] = {}
    already: set[str] = set()  # the destination had it (or was about to): nothing new queued
    claimed: set[Path] = set()  # companion files (an Interfile data file) go with the file naming them
    for path in _files(args.paths):
        if path.resolve() in claimed:
            results.pop(path, None)
            continue
        try:
            capture = read_capture(path, "send")
        except OSError as exc:
            results[path] = f"cannot read: {exc.strerror}"
            continue
        claimed.update(claimed_paths(capture))
        try:
            instance = prepare(capture, config.site, config.routing)  # coerced too
        except UnknownFormat as exc:
            results[path] = f"rejected: {exc}"  # dropped below if a later file names it as its data file
            continue
        except DecodeError as exc:
            results[path] = f"rejected: {exc}"
            continue
        ds = instance.dataset
        uid = str(ds.SOPInstanceUID)
        if args.resend:
            spool.purge(dest, [DELIVERED, DEAD], [uid])
        added = spool.add_bytes(instance.data, ds, [dest], source="send", origin=str(path))
        uids[path] = uid
        if not added.queued:
            already.add(uid)
        elif forwarder is not None:
            forwarder.notify(added.queued)
    for path in [p for p in results if p.resolve() in claimed]:
        del results[path]
    deadline = time.monotonic() + args.timeout
    while uids and time.monotonic() < deadline:
        rows = spool.rows(dest, WAITING, list(uids.values()), limit=len(uids))
        if not rows:
            break
        time.sleep(0.1)
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
