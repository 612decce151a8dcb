"""Run the gateway: every configured source and destination, until SIGTERM."""

from __future__ import annotations

import argparse
import sys

from gateway import logs, private
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.service.daemon import Service

NAME = "run"
HELP = "run the gateway service"
DEFAULT_CONFIG = "etc/legacy-gateway.yaml"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"configuration file (default {DEFAULT_CONFIG})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def load_or_report(path: str):
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    private.configure(config.file_group)  # the group that may read what this process writes
    return config


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    logs.setup(config.log_level)
    return Service(config).run()
