"""Run the gateway: every configured source and destination, until SIGTERM."""

from __future__ import annotations

import argparse

from gateway import logs
from gateway.commands.common import EXIT_UNUSABLE, add_config_argument, load_or_report
from gateway.service.daemon import Service

NAME = "run"
HELP = "run the gateway service"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_UNUSABLE
    logs.setup(config.log_level)
    return Service(config).run()
