"""Print every vendor header field of a file: offset, name, type, value and DICOM target.

The rows come from the same field tables the decoder reads, so what ``dump`` shows is what
the conversion uses; tag streams and DICOM files show their elements, and a DICOM file the
repairs its pass-through would make (``gateway.dicom.repair``), so they can be seen before
anything is sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.dicom.repair import explain
from gateway.errors import DecodeError
from gateway.pipeline import convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE")


def _print_repairs(data: bytes, path: Path) -> None:
    """What passing this DICOM file through changes, as ``convert --explain`` lists it."""
    try:
        ds, _ = convert(Capture(data, Origin("dump", str(path))))
    except DecodeError as exc:
        print(f"# repairs: none possible: {exc}")
        return
    lines = explain(ds)
    print(f"# repairs on pass-through: {len(lines) or 'none'}")
    for line in lines:
        print(f"  {line}")


def run(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    decoder = formats.identify(data)
    if decoder is None:
        print(f"{args.file}: unknown format ({len(data)} bytes)", file=sys.stderr)
        return 1
    try:
        rows = decoder.dump(data)
    except DecodeError as exc:
        print(f"{args.file}: {decoder.name}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"# {args.file}: {decoder.name} ({decoder.description})")
        width = max((len(r.name) for r in rows), default=4)
        kind = max((len(r.type) for r in rows), default=4)
        print(f"{'offset':>8}  {'name':<{width}}  {'type':<{kind}}  value  -> target")
        for r in rows:
            offset = "" if r.offset < 0 else str(r.offset)
            target = f"  -> {r.target}" if r.target else ""
            print(f"{offset:>8}  {r.name:<{width}}  {r.type:<{kind}}  {r.value}{target}")
        if decoder.name.startswith("dicom"):
            _print_repairs(data, args.file)
    except BrokenPipeError:  # `dump FILE | head` is fine
        sys.stderr.close()
    return 0
