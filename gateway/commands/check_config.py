"""Check a configuration file and list every problem with its line and key."""

from __future__ import annotations

import argparse

from gateway.commands.base import EXIT_OK, EXIT_UNUSABLE, default_config
from gateway.commands.common import load_or_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="PATH", nargs="?", default=argparse.SUPPRESS,
                        help="the file to check (default: the configuration the other commands use)")


def run(args: argparse.Namespace) -> int:
    path = args.config or default_config()
    config = load_or_report(path)
    if config is None:
        return EXIT_UNUSABLE
    print(f"{path}: OK ({len(config.sources)} source(s), {len(config.destinations)} destination(s))")
    return EXIT_OK
