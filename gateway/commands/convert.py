"""Convert vendor files to DICOM Part-10 files offline, whatever their (supported) format.

Each input is identified by its content, decoded and normalised exactly as the service does
(``gateway.pipeline.convert``), and written as ``OUTDIR/<SOP Instance UID>.dcm`` (the same
input always gives the same name). Folders are walked recursively. Every failure is reported per file with its reason; the exit
status is 1 if any file failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator

from gateway.capture import Capture, Origin
from gateway.errors import DecodeError
from gateway.normalize import SiteRules
from gateway.pipeline import convert

NAME = "convert"
HELP = "convert vendor files to DICOM files (offline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders (recursive)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="folder for the DICOM files")
    parser.add_argument("--uid-root", default="2.25", help="UID root for derived UIDs (default 2.25: UUID-based)")
    parser.add_argument("--patient-id-prefix", help="prefix added once to every converted Patient ID")
    parser.add_argument("--no-vendor-header", action="store_true", help="do not keep the vendor header bytes")


def _files(inputs: list[Path]) -> Iterator[Path]:
    for path in inputs:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(root) / name
        else:
            yield path


def convert_one(path: Path, output: Path, rules: SiteRules) -> tuple[Path, str]:
    """Convert one file; returns (written path, format name). Raises DecodeError / OSError."""
    capture = Capture(path.read_bytes(), Origin("convert", str(path), {"file": str(path)}))
    ds, fmt = convert(capture, rules)  # the service's own path: identify, decode, normalise
    target = output / f"{ds.SOPInstanceUID}.dcm"
    tmp = target.with_suffix(".part")
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(target)
    return target, fmt


def run(args: argparse.Namespace) -> int:
    rules = SiteRules(uid_root=args.uid_root, patient_id_prefix=args.patient_id_prefix,
                      keep_vendor_header=not args.no_vendor_header)
    args.output.mkdir(parents=True, exist_ok=True)
    done = failed = 0
    for path in _files(args.inputs):
        try:
            target, fmt = convert_one(path, args.output, rules)
        except DecodeError as exc:
            failed += 1
            print(f"{path}: FAILED: {exc}", file=sys.stderr)
        except OSError as exc:
            failed += 1
            print(f"{path}: FAILED: {exc.strerror or exc}", file=sys.stderr)
        else:
            done += 1
            print(f"{path}: {fmt} -> {target}")
    if done + failed == 0:
        print("no input files found", file=sys.stderr)
        return 1
    print(f"{done} converted, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
