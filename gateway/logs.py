"""One line per event, machine-parsable: ``time level logger event=... key=value``.

Patient names, IDs and birth dates are never passed to a log call at INFO or above; events
name SOP Instance UIDs and source locations instead.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def setup(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S%z"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("pynetdicom", "watchdog"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
