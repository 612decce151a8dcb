"""What the gateway is doing: the service, each destination's state, sources, intake, quarantine.

The same picture as the web console (``gateway.console.snapshot``): the running service's own
view when one runs on this spool (destination health, sources, paused intake), the spool's
counts and last errors, quarantined captures, tape ingests. Exit status 1 when something needs
the operator (listed under "needs attention"), 0 when all is well; ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import time

from gateway.commands.base import EXIT_OK, EXIT_PARTIAL, EXIT_UNUSABLE, add_config_argument
from gateway.commands.common import load_or_report
from gateway.console.snapshot import overview, read_service_state
from gateway.delivery.spool import Spool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the whole picture as JSON")


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


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_UNUSABLE
    spool = Spool(config.spool_dir, durable=config.durable, floor=config.floor())
    try:
        view = overview(config, spool, read_service_state(config.state_dir))
    finally:
        spool.close()
    if args.json:
        print(json.dumps(view, indent=2, default=str))
    else:
        _print(view)
    return EXIT_PARTIAL if view["attention"] else EXIT_OK


def _print(view: dict) -> None:
    service = view["service"]
    print(f"service: running since {_when(service['started'])} (pid {service['pid']})" if service["running"]
          else "service: not running on this spool")
    print(f"\n{'destination':<16} {'state':<12} {'queued':>7} {'in flight':>9} {'delivered':>10} {'dead':>6} "
          f"{'committing':>10} {'oldest':>8}  last error")
    for d in view["destinations"]:
        error = f"{d['last_error']} ({_when(d['last_error_at'])})" if d["last_error"] else "-"
        print(f"{d['name']:<16} {d['state']:<12} {d['queued']:>7} {d['in_flight']:>9} {d['delivered']:>10} "
              f"{d['dead']:>6} {d['committing']:>10} {_age(d['oldest_waiting']):>8}  {error}")
    print()
    for s in view["sources"]:
        print(f"source {s['name']}: {s['state']}" + (f" ({s['detail']})" if s.get("detail") else ""))
    intake = view["intake"]
    print(("intake: PAUSED: " if intake["paused"] else "intake: open (") + intake["reason"]
          + ("" if intake["paused"] else ")"))
    for q in view["quarantine"]:
        print(f"quarantine of {q['source']}: {q['count']} capture(s) in {q['folder']}")
    for t in view["tapes"][:5]:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(t["by_outcome"].items()))
        print(f"tape {t['medium'] or t['journal']}: {t['files']} tape files ({outcomes}), "
              f"last {_when(t['last_update'])}")
    print("\nneeds attention:" if view["attention"] else "\nnothing needs attention")
    for line in view["attention"]:
        print(f"  - {line}")
