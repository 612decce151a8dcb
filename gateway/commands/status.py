"""Whether intake is paused for want of disk space, then per destination: queued, in flight,
delivered, dead-lettered, awaiting storage commitment, oldest waiting, last error."""

from __future__ import annotations

import argparse
import time

from gateway.commands.run import add_config_argument, load_or_report
from gateway.delivery.spool import Spool

NAME = "status"
HELP = "show the delivery state of the spool per destination"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def _age(since: float | None) -> str:
    if since is None:
        return "-"
    seconds = max(0, int(time.time() - since))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _row(name: str, st) -> str:
    if st is None:
        return f"{name:<16} {0:>8} {0:>9} {0:>10} {0:>6} {0:>10} {'-':>8}  -"
    return (f"{name:<16} {st.queued:>8} {st.in_flight:>9} {st.delivered:>10} {st.dead:>6} {st.committing:>10} "
            f"{_age(st.oldest_waiting):>8}  {st.last_error or '-'}")


def _intake(spool: Spool) -> str:
    room = spool.space.room()
    if room.free < room.floor:
        return (f"intake: PAUSED: {room.describe()}; sources are not acknowledged until delivery "
                f"or the operator frees space")
    return f"intake: open ({room.describe()})"


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    spool = Spool(config.spool_dir, durable=config.durable, floor=config.floor())
    print(_intake(spool))
    rows = {s.destination: s for s in spool.status()}
    print(f"{'destination':<16} {'queued':>8} {'in flight':>9} {'delivered':>10} {'dead':>6} {'committing':>10} "
          f"{'oldest':>8}  last error")
    for dest in config.destinations:
        print(_row(dest.name, rows.pop(dest.name, None)))
    for st in rows.values():  # destinations no longer configured but still in the spool
        print(_row(st.destination + " (gone)", st))
    spool.close()
    return 0
