"""The ``legacy-gateway`` command: one sub-command per module in ``gateway.commands``.

``COMMANDS`` names each command with its help line; the module of ``check-config`` is
``gateway.commands.check_config``. A command module defines ``add_arguments(parser)`` and
``run(args) -> int`` (its docstring is the command's description); adding a command means
adding a module and one line to ``COMMANDS``. Only the chosen command's module is imported:
the others (the service, the spool, pydicom behind the decoders) cost nothing to
``--help``, ``--version`` or ``identify``.

An operator's ordinary mistake (a path that cannot be written, a port in use, a closed pipe)
ends here as one line on stderr and an exit status of ``gateway.commands.base``, never a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from gateway import __version__
from gateway.commands.base import CONFIG_HELP, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNUSABLE
from gateway.errors import GatewayError

COMMANDS: dict[str, str] = {
    "run": "run the gateway service",
    "archive": "run the built-in Storage SCP (a stand-in PACS for trying the gateway out)",
    "status": "show what the gateway is doing and what needs attention",
    "check-config": "validate a configuration file",
    "identify": "name the format of each file (by content, never by name)",
    "simulate": "write simulated vendor files (folder, tape image or serial line)",
    "convert": "convert vendor files to DICOM files (offline)",
    "dump": "print every vendor header field (offset, name, type, value, DICOM target)",
    "ingest-tape": "read a tape drive or tape image once: decode, spool and forward every image on it",
    "send": "send files or folders to a destination now (through the spool)",
    "queue": "list, show, retry or purge spooled deliveries",
    "echo": "check that a destination answers (C-ECHO; for DICOMweb an HTTP GET)",
}


def command_module(name: str) -> str:
    """The module of command ``name``."""
    return "gateway.commands." + name.replace("-", "_")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line with every command named; only ``command`` (if given) has its module
    imported and its arguments added. The others are names and help lines: enough for
    ``--help``, ``--version`` and to tell which command was chosen (``parse``)."""
    parser = argparse.ArgumentParser(
        prog="legacy-gateway",
        description="Bring pre-DICOM scanner exports into a PACS as valid DICOM.",
    )
    version = f"legacy-gateway {__version__}"
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument("-c", "--config", default=None, help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_line in COMMANDS.items():
        if name != command:  # a name only: its own -h is left for the second parse
            sub.add_parser(name, help=help_line, add_help=False).add_argument(
                "--version", action="version", version=version)
            continue
        module = importlib.import_module(command_module(name))
        cmd = sub.add_parser(name, help=help_line, description=module.__doc__)
        cmd.add_argument("--version", action="version", version=version)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Two passes: the first tells the command (or answers ``--help``, ``--version`` and a
    wrong command name), the second parses its arguments with its module loaded."""
    command = build_parser().parse_known_args(argv)[0].command
    return build_parser(command).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return int(args._run(args) or EXIT_OK)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): what it wanted it has; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except GatewayError as exc:
        return _fail(args.command, str(exc))
    except OSError as exc:
        return _fail(args.command, describe(exc))


def _fail(command: str, message: str) -> int:
    print(f"legacy-gateway {command}: {message}", file=sys.stderr)
    return EXIT_UNUSABLE


_HINTS = {
    errno.EACCES: "check its owner and permissions",
    errno.EPERM: "check its owner and permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "choose another name, or move it away",
    errno.ENOSPC: "free some space",
}


def describe(exc: OSError) -> str:
    """An OSError as an operator reads it: the path, what went wrong, what to look at."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = exc.strerror or str(exc)
    hint = _HINTS.get(exc.errno)
    return (f"{where}: " if where else "") + what + (f" ({hint})" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
