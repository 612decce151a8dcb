"""What the command line needs before a command is chosen: exit statuses, where the
configuration is, and the argument types of the options. Nothing here imports the
configuration's validator (nor, through it, pydicom): ``--help``, ``--version`` and
``identify`` start without them.

Exit statuses, one convention for every command (the README lists them):

- 0 ``EXIT_OK``: everything asked was done.
- 1 ``EXIT_PARTIAL``: the command ran, but some items failed; each is listed.
- 2 ``EXIT_UNUSABLE``: nothing was done: the command line, the configuration or the
  environment (a path, a port, a device) cannot work; one line says what and what to do.
- 3 ``EXIT_PENDING``: ``ingest-tape`` read everything, but not all of it is delivered yet.
- 130 ``EXIT_INTERRUPTED``: stopped by Ctrl-C or SIGTERM before the end.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_UNUSABLE = 2
EXIT_PENDING = 3
EXIT_INTERRUPTED = 130

CONFIG_ENV = "LEGACY_GATEWAY_CONFIG"
INSTALLED_CONFIG = Path("/etc/legacy-gateway/legacy-gateway.yaml")
CHECKOUT_CONFIG = Path("etc/legacy-gateway.yaml")
CONFIG_HELP = f"configuration file (default: ${CONFIG_ENV}, else {INSTALLED_CONFIG})"


def default_config() -> Path:
    """Where the configuration is when ``-c`` is not given.

    ``$LEGACY_GATEWAY_CONFIG``; else the installed ``/etc/legacy-gateway/legacy-gateway.yaml``;
    else, in a checkout (``make run``), ``etc/legacy-gateway.yaml`` under the current directory.
    """
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if not INSTALLED_CONFIG.exists() and CHECKOUT_CONFIG.is_file():
        return CHECKOUT_CONFIG
    return INSTALLED_CONFIG


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``-c`` after the sub-command; the one before it (``legacy-gateway -c X status``) is the
    main parser's, and this one does not overwrite it when absent."""
    parser.add_argument("-c", "--config", default=argparse.SUPPRESS, help=CONFIG_HELP)


def port_number(text: str) -> int:
    """argparse type: a TCP port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port
