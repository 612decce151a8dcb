"""Convert vendor files to DICOM Part-10 files offline, whatever their (supported) format.

Each input is identified by its content, decoded and normalised exactly as the service does
(``gateway.pipeline.prepare``), and written as ``OUTDIR/<SOP Instance UID>.dcm`` (the same
input always gives the same name). Folders are walked recursively. Every failure is reported per file with its reason;
the exit status is 1 if any file failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Iterator

from gateway.capture import Capture
from gateway.commands.common import load_or_report
from gateway.dicom.normalize import SiteRules
from gateway.dicom.repair import explain
from gateway.errors import DecodeError, UnknownFormat
from gateway.files import claimed_paths, read_capture
from gateway.pipeline import prepare
from gateway.routing import Routing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders (recursive)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="folder for the DICOM files")
    parser.add_argument("-c", "--config", help="take the site rules and UID root from this configuration")
    parser.add_argument("--uid-root", help="UID root for derived UIDs (default 2.25: UUID-based)")
    parser.add_argument("--patient-id-prefix", help="prefix added once to every converted Patient ID")
    parser.add_argument("--no-vendor-header", action="store_true", help="do not keep the vendor header bytes")
    parser.add_argument("--source", metavar="NAME", help="apply this configured source's coercions and routes "
                                                          "(default: the global ones)")
    parser.add_argument("--explain", action="store_true",
                        help="list every recorded change (repairs of DICOM passed through, coercions) and the route "
                             "of each file")


def _files(inputs: list[Path]) -> Iterator[Path]:
    for path in inputs:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(root) / name
        else:
            yield path


def convert_one(path: Path, output: Path, rules: SiteRules, routing: Routing | None = None, source: str = "convert",
                explained: list[str] | None = None) -> tuple[Path, str]:
    """Convert one file (with the companion files it names); returns (written path, format name).
    Raises DecodeError / OSError. ``explained`` receives one line per recorded change."""
    capture = read_capture(path, source, {"file": str(path)})
    return convert_capture(capture, output, rules, routing, explained)


def convert_capture(capture: Capture, output: Path, rules: SiteRules, routing: Routing | None = None,
                    explained: list[str] | None = None) -> tuple[Path, str]:
    """Convert one capture read from a file (``gateway.files.read_capture``) and write it.
    ``explained`` receives one line per recorded change (``gateway.dicom.repair.explain``)."""
    # the service's own path: identify, decode, normalise, coerce, encode
    instance = prepare(capture, rules, routing)
    target = output / f"{instance.dataset.SOPInstanceUID}.dcm"
    tmp = target.with_suffix(".part")
    tmp.write_bytes(instance.data)  # the very bytes the service would spool
    tmp.replace(target)
    if explained is not None:
        explained += explain(instance.dataset)
    return target, instance.format


def _rules(args: argparse.Namespace) -> SiteRules | None:
    """The configuration's site rules (if given), with the command line's options on top."""
    rules = SiteRules()
    args.routing, args.default_route = Routing(), ()
    if args.config:
        config = load_or_report(args.config)
        if config is None:
            return None
        rules = config.site
        args.routing = config.routing
        sources = {s.name: s.destinations for s in config.sources}
        args.default_route = sources.get(args.source, tuple(d.name for d in config.destinations if d.enabled))
    if args.source and args.source not in (sources if args.config else {}):
        where = args.config or "the configuration (give -c)"
        print(f"--source {args.source}: no such source in {where}", file=sys.stderr)
        return None
    changes = {}
    if args.uid_root:
        changes["uid_root"] = args.uid_root
    if args.patient_id_prefix:
        changes["patient_id_prefix"] = args.patient_id_prefix
    if args.no_vendor_header:
        changes["keep_vendor_header"] = False
    return dataclasses.replace(rules, **changes)


def _route(target: Path, fmt: str, routing: Routing, source: str, default: tuple[str, ...]) -> str:
    """Where the service would send the written instance (read back from the file)."""
    from pydicom import dcmread

    ds = dcmread(target, stop_before_pixels=True)
    return ", ".join(routing.destinations(ds, fmt, source, default)) or "(no configuration)"


def run(args: argparse.Namespace) -> int:
    rules = _rules(args)
    if rules is None:
        return 2
    source = args.source or "convert"
    args.output.mkdir(parents=True, exist_ok=True)
    done = failed = 0
    unknown: list[tuple[Path, str]] = []  # judged at the end: a data file is not a failure
    claimed: dict[Path, Path] = {}  # companion file -> the file that named it
    for path in _files(args.inputs):
        if path.resolve() in claimed:
            print(f"{path}: data file of {claimed[path.resolve()]}")
            continue
        explained: list[str] | None = [] if args.explain else None
        try:
            capture = read_capture(path, source, {"file": str(path)})
            for companion in claimed_paths(capture):
                claimed.setdefault(companion, path)
            target, fmt = convert_capture(capture, args.output, rules, args.routing, explained)
        except UnknownFormat as exc:
            unknown.append((path, str(exc)))
        except DecodeError as exc:
            failed += 1
            print(f"{path}: FAILED: {exc}", file=sys.stderr)
        except OSError as exc:
            failed += 1
            print(f"{path}: FAILED: {exc.strerror or exc}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - a bug on one file must not cost the others
            failed += 1
            print(f"{path}: FAILED: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            done += 1
            print(f"{path}: {fmt} -> {target}")
            if explained is not None:
                print("\n".join(f"  {line}" for line in explained) if explained else "  no changes")
                print(f"  route: {_route(target, fmt, args.routing, source, args.default_route)}")
    for path, reason in unknown:
        owner = claimed.get(path.resolve())
        if owner is not None:
            print(f"{path}: data file of {owner}")
            continue
        failed += 1
        print(f"{path}: FAILED: {reason}", file=sys.stderr)
    if done + failed == 0:
        print("no input files found", file=sys.stderr)
        return 1
    print(f"{done} converted, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
