"""The ``legacy-gateway`` command: one sub-command per module in ``gateway.commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; adding a command means adding a module and one line to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gateway import __version__

COMMANDS = [
    "gateway.commands.run",
    "gateway.commands.archive",
    "gateway.commands.status",
    "gateway.commands.check_config",
    "gateway.commands.identify",
    "gateway.commands.simulate",
    "gateway.commands.convert",
    "gateway.commands.dump",
    "gateway.commands.ingest_tape",
    "gateway.commands.send",
    "gateway.commands.queue",
    "gateway.commands.echo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legacy-gateway",
        description="Bring pre-DICOM scanner exports into a PACS as valid DICOM.",
    )
    parser.add_argument("--version", action="version", version=f"legacy-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for path in COMMANDS:
        module = importlib.import_module(path)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
