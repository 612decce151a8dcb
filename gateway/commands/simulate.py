"""Write simulated vendor files to a folder, a tape image or a serial line."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.simulate import SimOptions, formats, generate

NAME = "simulate"
HELP = "write simulated vendor files (folder, tape image or serial line)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", required=True, help="simulated format (see --list)")
    parser.add_argument("--count", "-n", type=int, default=1, help="how many objects")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    parser.add_argument("--compression", type=int, help="compression code where the format has one")
    parser.add_argument("--variant", help="format variant (for example disk, tape, aw)")
    parser.add_argument("--byte-order", help="byte order where the format has a choice")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="folder to write files into")
    out.add_argument("--list", action="store_true", help="list the simulated formats")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(formats()))
        return 0
    options = SimOptions(compression=args.compression, variant=args.variant, byte_order=args.byte_order)
    args.output.mkdir(parents=True, exist_ok=True)
    for sim in generate(args.format, args.count, options, args.seed):
        (args.output / sim.name).write_bytes(sim.data)
    return 0
