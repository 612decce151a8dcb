"""C-ECHO a configured destination (with its TLS settings and AE titles), or for a STOW-RS one
the forwarder's HTTP probe, and say how it went."""

from __future__ import annotations

import argparse

from gateway.commands.base import add_config_argument
from gateway.commands.common import load_or_report
from gateway.delivery.sender import probe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("destinations", nargs="+", metavar="DEST", help="destination name(s) from the configuration")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    failed = 0
    for name in args.destinations:
        try:
            dest = config.destination(name)
        except KeyError as exc:
            print(exc.args[0])
            failed += 1
            continue
        ok, detail, seconds = probe(dest, config.ae_title)
        where = f"{dest.address}{' (TLS)' if dest.tls else ''}"
        print(f"{name}: {where}: {'OK' if ok else 'FAILED'}: {detail} ({seconds * 1000:.0f} ms)")
        failed += not ok
    return 1 if failed else 0
