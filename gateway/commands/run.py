"""Run the gateway: every configured source and destination, until SIGTERM."""

from __future__ import annotations

import argparse

from gateway import logs
from gateway.commands.base import EXIT_UNUSABLE, add_config_argument
from gateway.commands.common import load_or_report
from gateway.service.daemon import Service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_UNUSABLE
    logs.setup(config.log_level)
    return Service(config).run()
