"""The ``legacy-gateway`` command: one sub-command per module in ``gateway.commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; adding a command means adding a module and one line to ``COMMANDS``.

An operator's ordinary mistake (a path that cannot be written, a port in use, a closed pipe)
ends here as one line on stderr and an exit status of ``gateway.commands.common``, never a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from gateway import __version__
from gateway.commands.common import CONFIG_ENV, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNUSABLE, INSTALLED_CONFIG
from gateway.errors import GatewayError

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
    version = f"legacy-gateway {__version__}"
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument("-c", "--config", default=None,
                        help=f"configuration file (default: ${CONFIG_ENV}, else {INSTALLED_CONFIG})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for path in COMMANDS:
        module = importlib.import_module(path)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        cmd.add_argument("--version", action="version", version=version)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
