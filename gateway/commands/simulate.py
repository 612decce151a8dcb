"""Write simulated vendor files to a folder, a tape image or a serial line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.commands.base import EXIT_OK, EXIT_PARTIAL
from gateway.errors import UsageError
from gateway.simulate import SimOptions, formats, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", help="simulated format (see --list)")
    parser.add_argument("--count", "-n", type=int, default=1, help="how many objects")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    parser.add_argument("--compression", type=int, help="compression code where the format has one")
    parser.add_argument("--variant", help="format variant (for example disk, tape, aw)")
    parser.add_argument("--byte-order", help="byte order where the format has a choice")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="folder to write files into")
    out.add_argument("--list", action="store_true", help="list the simulated formats")
    out.add_argument("--tape", type=Path, metavar="OUT.tap", help="write a SIMH tape image, one object per tape file")
    out.add_argument("--aws", type=Path, metavar="OUT.aws", help="write an AWSTAPE image, one object per tape file")
    out.add_argument("--serial", metavar="PORT", help="send down a serial line (device or pyserial URL)")
    tape = parser.add_argument_group("tape images (--tape, --aws)")
    tape.add_argument("--record-size", type=int, default=8192, help="tape record size in bytes (default 8192)")
    tape.add_argument("--labels", action="store_true", help="ANSI labels: VOL1, HDR1/HDR2 and EOF1/EOF2 per file")
    tape.add_argument("--header-file", action="store_true", help="start with a non-image header file (as GE tapes)")
    tape.add_argument("--bad-records", type=int, default=0, metavar="N", help="damage N records (chosen by --seed)")
    line = parser.add_argument_group("serial line (with --serial)")
    line.add_argument("--protocol", default="xmodem-1k",
                      help="xmodem, xmodem-1k, ymodem, zmodem, kermit or raw (default xmodem-1k)")
    line.add_argument("--baud", type=int, default=9600)
    line.add_argument("--parity", default="none", choices=("none", "even", "odd", "mark", "space"))
    line.add_argument("--rtscts", action="store_true", help="RTS/CTS hardware flow control")
    line.add_argument("--line-timeout", type=float, default=10.0, help="seconds to wait for the receiver")
    line.add_argument("--gap", type=float, default=2.0, help="raw: seconds of silence between objects")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(formats()))
        return EXIT_OK
    if not args.format:
        raise UsageError(f"--format is required: one of {', '.join(formats())}")
    options = SimOptions(compression=args.compression, variant=args.variant, byte_order=args.byte_order)
    try:  # the formats' own option checks: a wrong option is the user's, not a bug
        next(generate(args.format, 1, options, args.seed))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.serial:
        return _send_serial(args, [(sim.name, sim.data)
                                   for sim in generate(args.format, args.count, options, args.seed)])
    if args.tape or args.aws:
        from gateway.simulate.tape import TapeOptions, write_tape

        tape = TapeOptions("simh" if args.tape else "aws", args.record_size, args.labels, args.header_file,
                           args.bad_records)
        written = write_tape(args.tape or args.aws, generate(args.format, args.count, options, args.seed), tape,
                             args.seed)
        print(f"{written.path}: {written.files} tape files, {written.images} objects"
              + "".join(f"; damaged: tape file {f} record {r}" for f, r in written.bad or []))
        return EXIT_OK
    args.output.mkdir(parents=True, exist_ok=True)
    for sim in generate(args.format, args.count, options, args.seed):
        (args.output / sim.name).write_bytes(sim.data)
    return 0


def _send_serial(args: argparse.Namespace, files: list[tuple[str, bytes]]) -> int:
    from drivers.serial.line import PortSettings
    from drivers.serial.send import SendError, send_files

    port = PortSettings(args.serial, baud=args.baud, parity=args.parity, rtscts=args.rtscts)
    try:
        sent = send_files(port, args.protocol, files, timeout=args.line_timeout, gap=args.gap)
    except SendError as exc:
        print(f"simulate: {args.serial}: {exc}", file=sys.stderr)
        return EXIT_PARTIAL
    print(f"sent {len(files)} file(s), {sum(len(d) for _, d in files)} bytes, {sent} bytes on the line")
    return 0
