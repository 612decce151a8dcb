"""Check a configuration file and list every problem with its line and key."""

from __future__ import annotations

import argparse

from gateway.commands.run import load_or_report

NAME = "check-config"
HELP = "validate a configuration file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="PATH")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    print(f"{args.config}: OK ({len(config.sources)} source(s), {len(config.destinations)} destination(s))")
    return 0
