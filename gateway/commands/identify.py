"""Say which format each file is, by its content alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway import formats
from gateway.files import companion_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    unknown = 0
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}")
            unknown += 1
            continue
        decoder = formats.identify(data)
        if decoder is None:
            unknown += 1
            print(f"{path}: unknown format ({len(data)} bytes)")
        else:
            print(f"{path}: {decoder.name} ({decoder.description}){_companions(path, data)}")
    return 1 if unknown else 0


def _companions(path: Path, data: bytes) -> str:
    """`` with data file x.v`` (or ``, data file x.v missing``) for formats of several files."""
    found = companion_paths(path, data)
    return "".join(f", data file {name}" + ("" if p.is_file() else " MISSING") for name, p in found.items())
