"""Synthetic ACR-NEMA and SPI streams in every byte order, read by independent readers.

dicom3tools (Debian) reads little, big and bad-big-endian implicit-VR streams: ``dcfile``
names the byte order, ``dcdump`` every element value, ``dctopnm`` the pixels. GDCM reads
the little-endian ones (and unpacks 12-bit packed cells); current GDCM cannot read implicit
big endian at all (acr-nema.md 10 row 4), so it is not asked to. The files come from our
simulator, but every expected value comes from those readers, not from the simulator.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.formats.tagstream.acr_nema import decode_stream
from gateway.formats.tagstream.convert import ValueReader
from gateway.formats.tagstream.dictionary import private_entry, standard_entry
from gateway.formats.tagstream.stream import read_stream
from gateway.pipeline import convert
from gateway.simulate import SimOptions, generate
from tests.support.peers import dciodvfy_errors

ORDERS = ["little", "big", "badbig"]
DCDUMP_LINE = re.compile(r"^\((0x[0-9a-f]{4}),(0x[0-9a-f]{4})\) .*?VR=<(\w+)>\s+VL=<(0x[0-9a-f]+)>\s*(.*)$")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install dicom3tools)")
    return path


def simulated(fmt: str, order: str, tmp_path, **extra) -> tuple[bytes, str]:
    sim = next(generate(fmt, 1, SimOptions(byte_order=order, variant=extra.pop("variant", None), extra=extra), seed=7))
    path = tmp_path / sim.name
    path.write_bytes(sim.data)
    return sim.data, str(path)


def dcdump(path: str) -> dict[int, tuple[str, str]]:
    out = subprocess.run([tool("dcdump"), path], capture_output=True, text=True, timeout=30, check=True)
    found = {}
    for line in (out.stdout + out.stderr).splitlines():
        m = DCDUMP_LINE.match(line)
        if m:
            found[(int(m.group(1), 16) << 16) | int(m.group(2), 16)] = (m.group(3), m.group(5).strip())
    return found


def ours(data: bytes) -> dict[int, tuple[str, object]]:
    """Each element as our reader types and decodes it (text split, numbers as numbers)."""
    stream = read_stream(data)
    reader = ValueReader(stream)
    creators, found = {}, {}
    for elem in stream.elements:
        group, number = elem.group, elem.element
        if group & 1 and 0x10 <= number <= 0xFF:
            vr = "LO"
            creators[(group, number)] = reader.text(elem, vr)[0]
        elif group & 1:
            vr = private_entry(creators[(group, number >> 8)], group, number & 0xFF).vr
        else:
            vr = standard_entry(elem.tag).vr.split(" or ")[-1]
        if vr in ("US", "UL"):
            found[elem.tag] = (vr, reader.binary(elem, vr))
        elif vr not in ("OW", "OB"):
            found[elem.tag] = (vr, reader.text(elem, vr))
    return found


def same_values(theirs: dict, mine: dict) -> None:
    assert set(theirs) == set(mine) | {0x7FE00010}
    for tag, (vr, value) in mine.items():
        their_vr, shown = theirs[tag]
        if vr in ("US", "UL"):
            assert [int(v, 16) for v in shown.strip("[]").split(",")] == value, hex(tag)
        else:
            assert shown.startswith("<") and shown.endswith(">"), (hex(tag), shown)
            assert ([v.rstrip() for v in shown[1:-1].rstrip().split("\\")] == value
                    or (shown == "<>" and value == [])), hex(tag)


def dctopnm_pixels(path: str, order: str, tmp_path) -> np.ndarray:
    out = tmp_path / "pixels.pnm"
    endian = "little" if order == "little" else "big"
    subprocess.run([tool("dctopnm"), "-endian", endian, path, str(out)], capture_output=True, timeout=30, check=True)
    raw = out.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", raw)
    cols, rows = int(header.group(1)), int(header.group(2))
    return np.frombuffer(raw[header.end():], "<u2" if endian == "little" else ">u2").reshape(rows, cols)


def dcfile_order(path: str) -> str:
    done = subprocess.run([tool("dcfile"), path], capture_output=True, text=True, timeout=30)
    out = done.stdout + done.stderr
    order = re.search(r"ByteOrder\s+(\w+)", out).group(1).lower()
    return "badbig" if re.search(r"Swapped32Big\s+Yes", out) else order


@pytest.mark.parametrize("group_lengths", [True, False])
@pytest.mark.parametrize("order", ORDERS)
def test_acr_nema_byte_orders_against_dicom3tools(order, group_lengths, tmp_path):
    data, path = simulated("acrnema", order, tmp_path, group_lengths=group_lengths, pixel_description=True)
    assert dcfile_order(path) == order == read_stream(data).order.value
    same_values(dcdump(path), ours(data))
    pixels = np.frombuffer(decode_stream(data, "acr-nema").dataset.PixelData, "<u2").reshape(64, 64)
    np.testing.assert_array_equal(pixels, dctopnm_pixels(path, order, tmp_path))


@pytest.mark.parametrize("order", ORDERS)
def test_spi_byte_orders_against_dicom3tools(order, tmp_path):
    data, path = simulated("spi", order, tmp_path)
    assert dcfile_order(path) == order == read_stream(data).order.value
    same_values(dcdump(path), ours(data))
    pixels = np.frombuffer(decode_stream(data, "siemens-spi").dataset.PixelData, "<u2").reshape(64, 64)
    np.testing.assert_array_equal(pixels, dctopnm_pixels(path, order, tmp_path))


@pytest.mark.parametrize("fmt,variant", [("acrnema", None), ("acrnema", "packed12"), ("spi", None)])
def test_little_endian_streams_against_gdcm(fmt, variant, tmp_path):
    gdcm = pytest.importorskip("gdcm", reason="python-gdcm is a test dependency (pyproject [test])")
    data, path = simulated(fmt, "little", tmp_path, variant=variant)
    reader = gdcm.ImageReader()
    reader.SetFileName(path)
    assert reader.Read()
    image = reader.GetImage()
    theirs = np.frombuffer(image.GetBuffer().encode("utf-8", errors="surrogateescape"), "<u2")
    mine = np.frombuffer(decode_stream(data, fmt).dataset.PixelData, "<u2")
    np.testing.assert_array_equal(mine, theirs)  # GDCM unpacks 12-bit cells itself
    strings = gdcm.StringFilter()
    strings.SetFile(reader.GetFile())
    for tag, (vr, value) in ours(data).items():
        if vr not in ("US", "UL") and not (tag >> 16) & 1:
            shown = strings.ToString(gdcm.Tag(tag >> 16, tag & 0xFFFF))
            assert ([v.rstrip() for v in shown.rstrip(" \0").split("\\")] == value
                    or (shown.strip() == "" and value == [])), hex(tag)


def test_packed_12_bit_test_vector():
    """acr-nema.md 7.2: LE bytes 01 23 45 67 89 AB are 0x301, 0x452, 0x967, 0xAB8; the BE
    stream holds the same words (23 01 67 45 AB 89)."""
    from gateway.formats.tagstream.packed12 import unpack12

    le = np.frombuffer(bytes.fromhex("0123456789AB"), "<u2")
    be = np.frombuffer(bytes.fromhex("23 01 67 45 AB 89"), ">u2")
    assert unpack12(le, 4).tolist() == [0x301, 0x452, 0x967, 0xAB8]
    assert unpack12(be.astype(np.uint16), 4).tolist() == [0x301, 0x452, 0x967, 0xAB8]


@pytest.mark.parametrize("order", ORDERS)
def test_packed_12_bit_in_every_order_equals_the_16_bit_file(order, tmp_path):
    """The same simulated image written packed and unpacked decodes to the same pixels; the
    16-bit file's pixels are checked against dctopnm above, and GDCM unpacks the LE packed
    file the same way, so this carries those checks to the big-endian packed files."""
    packed, _ = simulated("acrnema", order, tmp_path, variant="packed12")
    plain, _ = simulated("acrnema", order, tmp_path)
    a = decode_stream(packed, "acr-nema").dataset
    b = decode_stream(plain, "acr-nema").dataset
    assert a.BitsAllocated == 16 and a.PixelData == b.PixelData


@pytest.mark.parametrize("fmt", ["acrnema", "spi"])
@pytest.mark.parametrize("order", ORDERS)
def test_simulated_streams_become_valid_dicom(fmt, order, tmp_path):
    data, _ = simulated(fmt, order, tmp_path)
    ds, _ = convert(Capture(data, Origin("test", fmt)))
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    assert dciodvfy_errors(out) == []


def test_spi_private_geometry_becomes_lps(tmp_path):
    """The simulated SPI slice: Siemens centre (4, −10, −30) in +L+A+F, row (1,0,0), column
    (0,−1,0), 64 × 64 pixels of 3.125 mm, no DICOM geometry in the file. In LPS the row runs
    to the left (1,0,0) and the column to posterior (0,1,0): an axial slice, matching the
    labels L\\P. The first pixel is 31.5 pixels (98.4375 mm) from the centre along −row and
    −column: Siemens (4 − 98.4375, −10 + 98.4375, −30) = (−94.4375, 88.4375, −30), i.e. LPS
    (−94.4375, −88.4375, 30): 30 mm headwards of the isocentre."""
    data, _ = simulated("spi", "big", tmp_path)
    ds, _ = convert(Capture(data, Origin("test", "spi")))
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-94.4375, -88.4375, 30.0])
    assert [float(v) for v in ds.ImageOrientationPatient] == pytest.approx([1, 0, 0, 0, 1, 0])
    assert ds.PatientPosition == "HFS"  # "SUPI" with rest direction HEAD
    assert ds.InPlanePhaseEncodingDirection == "COL"  # plusY
    assert list(ds.AcquisitionMatrix) == [64, 0, 0, 192]
    assert float(ds.FlipAngle) == 70.0
