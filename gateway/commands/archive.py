"""Run the built-in Storage SCP alone (it stores what it receives into a folder)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from gateway import logs
from gateway.commands.base import EXIT_OK, EXIT_UNUSABLE, add_config_argument, port_number
from gateway.commands.common import ae_title, load_or_report
from gateway.delivery.archive import Archive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--port", type=port_number,
                        help="listening port (default from the configuration's archive block)")
    parser.add_argument("--host", help="listening address")
    parser.add_argument("--aet", type=ae_title, help="AE title")
    parser.add_argument("--dir", type=Path, help="where instances are stored")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_UNUSABLE
    logs.setup(config.log_level)
    a = config.archive
    archive = Archive(args.dir or a.directory, args.aet or a.ae_title, args.host or a.host, args.port or a.port)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        archive.start(block=True)
    except KeyboardInterrupt:
        archive.stop()
    return EXIT_OK
