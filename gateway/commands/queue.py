"""Look at and act on the delivery queue: list, show, retry, retry-dead, purge.

Filters: ``--dest`` (a destination name) and ``--state`` (queued, in_flight, committing,
delivered, dead; repeatable), or explicit SOP Instance UIDs. Changes are safe while the
service runs: it sees them at its next look at the spool (within a few seconds).
"""

from __future__ import annotations

import argparse
import time

from gateway.commands.base import add_config_argument
from gateway.commands.common import load_or_report
from gateway.delivery.spool import DEAD, QUEUED, STATES, Spool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def filters(p: argparse.ArgumentParser, states: bool = True, default_states: str = "") -> None:
        p.add_argument("--dest", help="only this destination")
        if states:
            p.add_argument("--state", action="append", choices=STATES,
                           help=f"only rows in this state (repeatable){default_states}")
        p.add_argument("uids", nargs="*", metavar="UID", help="only these SOP Instance UIDs")

    p = sub.add_parser("list", help="list delivery rows, oldest first")
    filters(p)
    p.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    p = sub.add_parser("show", help="everything about one instance and its deliveries")
    p.add_argument("uid", metavar="UID")
    p = sub.add_parser("retry", help="make waiting rows due now (with --state dead: dead letters too)")
    filters(p, default_states="; default queued")
    p = sub.add_parser("retry-dead", help="send dead-lettered rows again (fresh attempts and give-up age)")
    filters(p, states=False)
    p = sub.add_parser("purge", help="forget rows (never in-flight ones) and drop files nobody waits for")
    filters(p, default_states="; default dead")


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = ts - time.time()
    if abs(delta) < 1:
        return "now"
    return f"in {delta:.0f}s" if delta > 0 else f"{-delta:.0f}s ago"


def _list(spool: Spool, args: argparse.Namespace) -> int:
    rows = spool.rows(args.dest, args.state, args.uids, args.limit)
    print(f"{'SOP Instance UID':<64} {'destination':<14} {'state':<10} {'tries':>5} {'next':>10}  last status / reason")
    for r in rows:
        nxt = _when(r["next_attempt"]) if r["state"] == QUEUED else "-"
        why = " / ".join(x for x in (r["last_status"], r["reason"]) if x) or "-"
        print(f"{r['sop_instance_uid']:<64} {r['destination']:<14} {r['state']:<10} {r['attempts']:>5} "
              f"{nxt:>10}  {why}")
    if len(rows) == args.limit:
        print(f"(first {args.limit} rows; --limit to see more)")
    return 0


def _show(spool: Spool, args: argparse.Namespace) -> int:
    rows = spool.rows(uids=[args.uid])
    if not rows:
        print(f"{args.uid}: not in the spool")
        return 1
    first = rows[0]
    print(f"SOP Instance UID   {args.uid}")
    for key in ("sop_class_uid", "transfer_syntax", "study_uid", "series_uid", "size", "source", "origin"):
        print(f"{key.replace('_', ' '):<18} {first[key]}")
    print(f"{'received':<18} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(first['received']))}")
    print(f"{'spool file':<18} {first['path'] or '(removed: every destination has it)'}")
    for r in rows:
        print(f"\n  destination      {r['destination']}")
        print(f"  state            {r['state']}")
        print(f"  attempts         {r['attempts']}")
        print(f"  queued           {_when(r['queued_at'])}")
        if r["state"] == QUEUED:
            print(f"  next attempt     {_when(r['next_attempt'])}")
        print(f"  last status      {r['last_status'] or '-'}")
        print(f"  reason           {r['reason'] or '-'}")
        if r["transaction_uid"]:
            print(f"  commitment       transaction {r['transaction_uid']}, sent {_when(r['sent_at'])}")
    return 0


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    spool = Spool(config.spool_dir, durable=config.durable, floor=config.floor())
    try:
        if args.action == "list":
            return _list(spool, args)
        if args.action == "show":
            return _show(spool, args)
        if args.action == "retry":
            count = spool.requeue(args.dest, args.state or [QUEUED], args.uids)
            print(f"{count} row(s) due now")
        elif args.action == "retry-dead":
            count = spool.requeue(args.dest, [DEAD], args.uids)
            print(f"{count} dead-lettered row(s) queued again")
        elif args.action == "purge":
            count = spool.purge(args.dest, args.state or [DEAD], args.uids)
            print(f"{count} row(s) purged")
        return 0
    finally:
        spool.close()
