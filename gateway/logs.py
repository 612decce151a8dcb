"""One line per event, machine-parsable: ``time level logger event=... key=value``.

Patient names, IDs and birth dates are never passed to a log call at INFO or above; events
name SOP Instance UIDs and source locations instead. Libraries do not follow that rule:
pydicom logs (and warns with) the raw value of an element it finds invalid, "Invalid value
for VR PN: b'DOE^JOHN'", and that text also travels inside exceptions our own events report.
So every line goes through ``Formatter``, which

- removes any element value pydicom quotes in its messages, from every logger's lines and
  from tracebacks;
- puts other libraries' lines (pydicom, pynetdicom, Python warnings, which are routed to the
  ``py.warnings`` logger) into our one-line form, ``event=library detail='...'``, with every
  quoted literal in them replaced, as their wording is not ours to vouch for.
"""

from __future__ import annotations

import logging
import re
import sys

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S%z"
OURS = ("gateway", "drivers")
REDACTED = "<value withheld>"

_QUOTED = r"""b?'(?:[^'\\\n]|\\.)*'|b?"(?:[^"\\\n]|\\.)*\""""
# pydicom's wording for a value it rejects (valuerep.validate_*), wherever that text ends up.
_PYDICOM_VALUE = re.compile(r"(Invalid value for VR \w+: )(?:" + _QUOTED + r"|\S+)")
_ANY_QUOTED = re.compile(_QUOTED)


def redact(text: str) -> str:
    """``text`` without the element values pydicom quotes."""
    return _PYDICOM_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


def _ours(name: str) -> bool:
    return name.split(".", 1)[0] in OURS or name == "root"


# A printf conversion in a log message; the ones right after "key=" are values.
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
_BARE = re.compile(r"^[^\s'\"=]+$")


def quote_values(record: logging.LogRecord) -> None:
    """``key=%s`` values that are empty or hold spaces, quotes or ``=`` become quoted (``repr``), so
    every line still splits into key=value pairs: a path with a space, a reason sentence."""
    if not isinstance(record.args, tuple) or not record.args:
        return
    args, index = list(record.args), 0
    for match in _CONVERSION.finditer(record.msg if isinstance(record.msg, str) else ""):
        if match.group() == "%%":
            continue
        if index >= len(args):
            break
        value = args[index]
        if match.group() == "%s" and record.msg[:match.start()].endswith("=") and not isinstance(value, (int, float)):
            text = str(value)
            if not _BARE.match(text):
                args[index] = repr(text)
        index += 1
    record.args = tuple(args)


class Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(FORMAT, DATEFMT)

    def format(self, record: logging.LogRecord) -> str:
        if _ours(record.name):
            quote_values(record)
            return redact(super().format(record))
        detail = record.getMessage()
        if record.exc_info:
            detail += " | " + self.formatException(record.exc_info)
        detail = _ANY_QUOTED.sub(REDACTED, redact(detail)).strip()
        return (f"{self.formatTime(record, self.datefmt)} level={record.levelname} logger={record.name} "
                f"event=library detail={detail!r}")


def set_level(level: str) -> None:
    """The configured level, now (start-up, and a reload that changed ``log_level``)."""
    root = logging.getLogger()
    root.setLevel(level)
    for noisy in ("pynetdicom", "watchdog"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def setup(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter())
    root.addHandler(handler)
    logging.captureWarnings(True)  # warnings.warn (pydicom warns what it logs) become log lines
    for library in ("pydicom", "pynetdicom", "py.warnings"):
        logger = logging.getLogger(library)
        for own in [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]:
            logger.removeHandler(own)  # a debug_logger() left behind: its lines would bypass ours
        logger.propagate = True
    set_level(level)
