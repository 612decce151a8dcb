"""``legacy-gateway`` in a child process with one seam watched in the spool's group intake, for
tests that must see or stop an ingest at an exact point of a group's life.

Usage: ``python -m tests.support.tape_ingest_child HOOK ARG REPORT -- COMMAND ARGS...`` where HOOK is

- ``count``: count the group commits (``Intake.commit`` of a non-empty group);
- ``hold-commit K``: at the K-th group commit, before anything of it is made durable, write
  "staged" to REPORT and wait (for the test's SIGKILL);
- ``fill-at-stage K``: just before the K-th instance is staged, another writer takes every free
  byte of the file system at ARG's path (``ARG = K:PATH``).

REPORT receives {"commits": n, "staged": m} when the command ends. Everything else is the real
command, spool, journal and file system: only the moment is chosen.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import gateway.delivery.spool as spool_module
from gateway.cli import main
from tests.support.disk import fill


def install(hook: str, arg: str, report: Path, counts: dict[str, int]) -> None:
    intake = spool_module.Intake
    real_commit, real_add = intake.commit, intake.add_bytes

    def commit(self):
        if len(self):
            counts["commits"] += 1
            if hook == "hold-commit" and counts["commits"] == int(arg):
                report.write_text("staged")
                time.sleep(600)
        return real_commit(self)

    def add_bytes(self, *a, **kw):
        counts["staged"] += 1
        if hook == "fill-at-stage":
            at, _, where = arg.partition(":")
            if counts["staged"] == int(at):
                fill(Path(where))
        return real_add(self, *a, **kw)

    intake.commit, intake.add_bytes = commit, add_bytes


def run(argv: list[str]) -> int:
    hook, arg, report = argv[0], argv[1], Path(argv[2])
    command = argv[argv.index("--") + 1:]
    counts = {"commits": 0, "staged": 0}
    install(hook, arg, report, counts)
    try:
        return main(command)
    finally:
        if hook != "hold-commit" or not report.exists():
            report.write_text(json.dumps(counts))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
