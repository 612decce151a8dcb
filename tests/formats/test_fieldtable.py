"""The field-table engine: types, bounds checks, base offsets, DICOM targets and dump."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from pydicom.dataset import Dataset

from gateway.errors import DecodeError
from gateway.formats.engine.fieldtable import F, FieldType, Table, To, Used, clean_text, register_type

# A header mixing every family of host type; offsets as a .tpl would list them.
HDR = Table("test header", size=64, fields=[
    F(0,  "char[8]",       "ident"),
    F(8,  "int16_be",      "count",     "InstanceNumber"),
    F(10, "uint16_le",     "le_word"),
    F(12, "dg_single",     "fov",       To("ReconstructionDiameter")),
    F(16, "vax_f",         "vax",       To("SliceThickness")),
    F(20, "float32_be",    "ieee"),
    F(24, "unix_time_be",  "when",      Used("StudyDate, StudyTime")),
    F(28, "int32_be[3]",   "triple"),
    F(40, "char[16]",      "name",      "PatientName"),
    F(56, "uint32_be",     "tr_us",     To("RepetitionTime", lambda us: us / 1000)),
    F(60, "bytes[4]",      "raw"),
])


def _bytes() -> bytes:
    b = bytearray(64)
    b[0:8] = b"IDENT \0\x07"  # NUL terminates; garbage after it is ignored
    struct.pack_into(">h", b, 8, -3)
    struct.pack_into("<H", b, 10, 0x1234)
    b[12:16] = bytes.fromhex("42F00000")  # DG 240.0 (ge-signa-4x.md S4)
    b[16:20] = bytes.fromhex("80400000")  # VAX F 1.0 (host-floats.md 2.5 #1)
    struct.pack_into(">f", b, 20, 120.0)
    struct.pack_into(">i", b, 24, 946684800)  # 2000-01-01 00:00:00 UTC (ge-genesis.md G9)
    struct.pack_into(">3i", b, 28, 1, -2, 3)
    b[40:56] = b"DOE^JOHN\\X\x01    "
    struct.pack_into(">I", b, 56, 2_000_000)
    b[60:64] = b"\x01\x02\x03\x04"
    return bytes(b)


def test_read_every_type():
    rec = HDR.read(_bytes())
    assert rec["ident"] == "IDENT"
    assert rec["count"] == -3
    assert rec["le_word"] == 0x1234
    assert rec["fov"] == 240.0
    assert rec["vax"] == 1.0
    assert rec["ieee"] == 120.0
    assert rec["when"] == dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert rec["triple"] == (1, -2, 3)
    assert rec["raw"] == b"\x01\x02\x03\x04"


def test_base_offset_and_absolute_offsets():
    data = b"\xAA" * 100 + _bytes()
    rec = HDR.read(data, base=100)
    assert rec["fov"] == 240.0
    assert rec.offset("fov") == 112
    err = rec.error("fov", "implausible")
    assert err.field == "fov" and err.offset == 112


def test_truncated_data_names_field_and_offset():
    data = _bytes()[:30]  # ends inside "triple" (28..39)
    with pytest.raises(DecodeError) as info:
        HDR.read(b"\0" * 10 + data, base=10)
    assert info.value.field == "triple"
    assert info.value.offset == 38


@pytest.mark.parametrize("base", [-1, 65])
def test_base_outside_data(base):
    with pytest.raises(DecodeError) as info:
        HDR.read(_bytes(), base=base)
    assert info.value.offset == base


def test_read_field_alone_is_bounds_checked():
    assert HDR.read_field("fov", _bytes()) == 240.0
    with pytest.raises(DecodeError) as info:
        HDR.read_field("tr_us", _bytes()[:58])
    assert (info.value.field, info.value.offset) == ("tr_us", 56)


def test_vax_reserved_operand_reads_as_none():
    b = bytearray(_bytes())
    b[16:20] = bytes.fromhex("00800000")
    rec = HDR.read(bytes(b))
    assert rec["vax"] is None
    ds = Dataset()
    HDR.apply(rec, ds)
    assert "SliceThickness" not in ds
    assert any(r.value == "reserved operand" for r in HDR.dump(bytes(b)))


def test_apply_targets():
    ds = Dataset()
    HDR.apply(HDR.read(_bytes()), ds)
    assert ds.InstanceNumber == -3
    assert float(ds.ReconstructionDiameter) == 240.0
    assert float(ds.SliceThickness) == 1.0
    assert float(ds.RepetitionTime) == 2000.0
    assert str(ds.PatientName) == "DOE^JOHN/X"  # backslash and control character cleaned
    assert "StudyDate" not in ds  # Used: the decoder's own code does that


def test_dump_rows():
    rows = HDR.dump(b"\0" * 4 + _bytes()[:50], base=4)
    by_name = {r.name: r for r in rows}
    assert len(rows) == len(HDR.fields)
    fov = by_name["test header.fov"]
    assert (fov.offset, fov.type, fov.value, fov.target) == (16, "dg_single", "240.0", "ReconstructionDiameter")
    assert by_name["test header.when"].value.startswith("946684800 (2000-01-01 00:00:00 UTC)")
    assert by_name["test header.when"].target == "(StudyDate, StudyTime)"
    assert by_name["test header.tr_us"].value == "(beyond end of data)"
    assert by_name["test header.tr_us"].target == "RepetitionTime <- <lambda>()"


def test_bad_tables_fail_when_declared():
    with pytest.raises(ValueError, match="beyond the table size"):
        Table("t", size=4, fields=[F(2, "int32_be", "x")])
    with pytest.raises(ValueError, match="declared twice"):
        Table("t", fields=[F(0, "int8", "x"), F(1, "int8", "x")])
    with pytest.raises(ValueError, match="unknown field type"):
        F(0, "int24_be", "x")
    with pytest.raises(ValueError, match="needs a length"):
        F(0, "char", "x")
    with pytest.raises(ValueError, match="not a DICOM keyword"):
        F(0, "int8", "x", "NoSuchKeyword")


def test_a_format_can_add_its_own_type():
    bcd = register_type(FieldType("test_bcd16", 2, lambda b: int(b.hex())))
    t = Table("bcd", fields=[F(0, "test_bcd16", "year"), F(2, "test_bcd16[2]", "md")])
    rec = t.read(bytes.fromhex("199900120031"))
    assert (rec["year"], rec["md"]) == (1999, (12, 31))
    assert register_type(bcd) is bcd  # registering the same object again is harmless


@pytest.mark.parametrize(
    "value, vr, expected",
    [
        ("abc\x00def", "LO", "abc def"),
        ("a\\b", "LO", "a/b"),
        ("x" * 80, "LO", "x" * 64),
        ("head first", "CS", "HEAD FIRST"),
        ("fat-sat", "CS", "FAT_SAT"),
        ("line1\r\nline2", "LT", "line1\nline2"),
    ],
)
def test_clean_text(value, vr, expected):
    assert clean_text(value, vr) == expected


def test_genesis_pixel_header_vector_g2(samples):
    """ge-genesis.md G2: the first IMGF fields of the real uncompressed file."""
    imgf = Table("IMGF", fields=[
        F(0, "char[4]", "magic"), F(4, "int32_be", "hdr_length"), F(8, "int32_be", "width"),
        F(12, "int32_be", "height"), F(16, "int32_be", "depth"), F(20, "int32_be", "compress"),
    ])
    rec = imgf.read((samples / "ge_genesis" / "heart.1").read_bytes())
    assert dict(rec) == {"magic": "IMGF", "hdr_length": 7904, "width": 256, "height": 256, "depth": 16, "compress": 1}
