"""What the commands that read the configuration share: loading it with every problem
reported, and the argument types checked by its rules (AE titles). The exit statuses and the
``-c`` option are in ``gateway.commands.base``, which the command line needs before a command
is chosen (this module imports the configuration's validator, and through it pydicom).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from gateway import private
from gateway.commands.base import CONFIG_ENV, default_config
from gateway.config import AE_TITLE, load_config
from gateway.errors import ConfigError

_AE_RE = re.compile(AE_TITLE["pattern"])


def load_or_report(path: str | Path | None):
    """The configuration, or None after every problem was printed to stderr."""
    path = Path(path) if path else default_config()
    if not path.exists():
        print(f"no configuration at {path}: give -c PATH or set {CONFIG_ENV}", file=sys.stderr)
        return None
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    private.configure(config.file_group)  # the group that may read what this process writes
    return config


def ae_title(text: str) -> str:
    """argparse type: a DICOM AE title."""
    if len(text) > AE_TITLE["max_len"]:
        raise argparse.ArgumentTypeError(f"{text!r} is {len(text)} characters; an AE title has at most 16")
    if not _AE_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: an AE title is printable ASCII without backslash, not blank")
    return text
