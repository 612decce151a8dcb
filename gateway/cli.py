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
import atexit
import contextlib
import errno
import gc
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
    return execute(parse(argv))


def execute(args: argparse.Namespace) -> int:
    """Run the parsed command; an operator's mistake is one line and an exit status."""
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


_status: int | None = None  # what ``main`` returned, for ``_leave``


def entry() -> None:
    """``legacy-gateway`` as a program (the console script, ``python -m gateway``): ``main``,
    then out without tearing the interpreter down. The normal exit still runs first (other
    threads joined, every exit handler: logging, multiprocessing, temporary files), but not
    the teardown of every module and object after it, which took 0.1-0.2 s of a ``send``
    here and does nothing a finished command needs. Tests call ``main``, which never exits."""
    atexit.register(_leave)  # registered first, so it runs after every other exit handler
    # NumPy's OpenBLAS starts a spinning thread per CPU at import, for matrix products the
    # gateway never does: 0.1 s of CPU taken from the workers. One thread, unless set.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The command's imports (pydicom, numpy, ...) make some 100,000 objects that live as long
    # as the process; the collector went through them again and again as they came (40-50 ms
    # of a ``send``'s start). Collected not at all meanwhile, then set aside for good (which
    # also keeps collections from touching them in forked workers).
    gc.disable()
    try:
        args = parse()
    finally:
        gc.freeze()
        gc.enable()
    global _status
    _status = execute(args)
    sys.exit(_status)


def _leave() -> None:
    """The last exit handler: flush the standard streams and end the process with ``main``'s
    status. Not after an exception (the normal exit reports it), nor under coverage, whose
    exit handler may have been registered before this one."""
    if _status is None or "coverage" in sys.modules:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # closed, or its reader gone
            stream.flush()
    os._exit(_status)


if __name__ == "__main__":
    entry()
