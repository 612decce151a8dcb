"""GE tape layouts (formats/ge-genesis.md 13.1, ge-signa-4x.md 10) through the tape driver.

A Genesis DAT tape file is a 3180-byte record of database headers, a record holding the IMGF
header and a 4-byte pixel byte count, then 8192-byte pixel records; joined, the records are
the decoders' tape variant. A Signa 4.x tape holds a header file, then one disk-identical
image per tape file. The driver knows none of this: it joins the records of each tape file.
These tests check that what it hands on decodes as the same image as the file on disk.
"""

from __future__ import annotations

import struct

import pytest

from drivers.tape.medium import open_tape
from drivers.tape.session import TapeSession
from gateway import formats as decoders
from gateway.capture import Capture, Origin
from gateway.pipeline import convert
from gateway.simulate import SimFile, SimOptions, formats, generate
from tests.support.tape_bytes import as_records, simh_tape

HEADER_FILE = [b"GE TAPE HEADER".ljust(1024, b"\0")]


def needs(decoder: str, sim: str | None = None) -> None:
    if decoder not in {d.name for d in decoders.decoders()} or (sim and sim not in formats()):
        pytest.skip(f"needs the {decoder} decoder{' and simulator' if sim else ''} (GE helper's branch, not on main "
                    "in this checkout)")


def genesis_dat_records(ximg: bytes) -> list[bytes]:
    """Tape records of a Genesis DAT file made from an uncompressed packed ximg file (13.1)."""
    hdr_length = struct.unpack_from(">i", ximg, 4)[0]
    suite, l_suite = struct.unpack_from(">ii", ximg, 124)
    exam, series, image = (struct.unpack_from(">i", ximg, o)[0] for o in (132, 140, 148))
    db = ximg[suite:suite + 114] + ximg[exam:exam + 1024] + ximg[series:series + 1020] + ximg[image:image + 1022]
    assert len(db) == 3180 and l_suite == 114
    pixels = ximg[hdr_length:]
    return [db, ximg[:hdr_length] + struct.pack(">i", len(pixels))] + as_records(pixels, 8192)


def decode_tape(path) -> list[tuple[Capture, object, str]]:
    session = TapeSession(open_tape(path), "tape")
    out = []
    for capture in session.captures():
        if decoders.identify(capture.data) is None:
            session.reject(capture, "unknown")
            continue
        ds, fmt = convert(capture)
        out.append((capture, ds, fmt))
        session.ack(capture, str(ds.SOPInstanceUID))
    return out


def test_genesis_dat_tape_from_a_real_file_decodes_like_the_file(tmp_path, samples):
    needs("ge-genesis")
    ximg = (samples / "ge_genesis" / "heart.1").read_bytes()
    records = genesis_dat_records(ximg)
    tape = tmp_path / "genesis.tap"
    tape.write_bytes(simh_tape([HEADER_FILE, records]))
    (capture, from_tape, fmt), = decode_tape(tape)
    assert fmt == "ge-genesis" and capture.origin.location == f"tape file 1 records 0-{len(records) - 1}"
    from_file, _ = convert(Capture(ximg, Origin("disk", "heart.1")))
    assert from_tape.PixelData == from_file.PixelData
    assert from_tape.SeriesInstanceUID == from_file.SeriesInstanceUID
    assert from_tape.SOPInstanceUID == from_file.SOPInstanceUID


@pytest.mark.parametrize("fmt,decoder", [("genesis", "ge-genesis"), ("signa4x", "ge-signa4x")])
def test_simulated_ge_tapes_decode_one_image_per_tape_file(tmp_path, fmt, decoder):
    needs(decoder, fmt)
    files: list[SimFile] = list(generate(fmt, 4, SimOptions(variant="tape"), seed=3))
    tape = tmp_path / f"{fmt}.tap"
    tape.write_bytes(simh_tape([HEADER_FILE] + [as_records(f.data, 8192) for f in files]))
    decoded = decode_tape(tape)
    assert [f for _, _, f in decoded] == [decoder] * 4
    assert [c.origin.details["tape_file"] for c, _, _ in decoded] == [1, 2, 3, 4]
    for (capture, ds, _), sim in zip(decoded, files):
        assert capture.data == sim.data
        direct, _ = convert(Capture(sim.data, Origin("disk", sim.name)))
        assert ds.PixelData == direct.PixelData and ds.SOPInstanceUID == direct.SOPInstanceUID
    assert len({str(ds.SOPInstanceUID) for _, ds, _ in decoded}) == 4
