"""The field-table engine: types, bounds checks, base offsets, DICOM targets and dump."""

from __future__ import annotations

import datetime as dt
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

import gateway.formats.ge.genesis  # noqa: F401  (registers the ge_uid field type)
from gateway.errors import DecodeError
from gateway.formats.engine.fieldtable import (
    TYPES,
    F,
    FieldType,
    Table,
    To,
    Used,
    clean_text,
    register_type,
    value_of,
)

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


# --------------------------------------------------------------------------- write


def test_write_is_read_inverse_for_the_mixed_header():
    """Every value read from the mixed header writes back to bytes that read the same."""
    record = HDR.read(_bytes())
    values = {name: record[name] for name in HDR.by_name}
    again = HDR.read(bytes(HDR.write(values)))
    assert {name: again[name] for name in HDR.by_name} == values
    # The numbers come back byte for byte; the text differs only after its end (ident had
    # garbage after its NUL, name blank padding; write pads with NULs by default).
    written = HDR.write(values)
    assert written[8:40] == _bytes()[8:40] and written[56:] == _bytes()[56:]


def test_write_into_a_buffer_at_base_with_blank_padding():
    buf = bytearray(b"\xAA" * 200)
    out = HDR.write({"ident": "AB", "fov": 240.0, "vax": 1.0, "count": -3}, into=buf, base=100, pad=b" ")
    assert out is buf
    assert buf[100:108] == b"AB      "
    assert buf[112:116] == bytes.fromhex("42F00000")  # ge-signa-4x.md S4
    assert buf[116:120] == bytes.fromhex("80400000")  # host-floats.md 2.5 #1
    assert buf[108:110] == struct.pack(">h", -3)
    assert buf[:100] == b"\xAA" * 100 and buf[110:112] == b"\xAA\xAA"  # untouched around
    assert len(buf) == 200


@pytest.mark.parametrize("values, words", [
    ({"nosuch": 1}, ["test header", "no field 'nosuch'"]),
    ({"count": 40000}, ["count", "int16_be", "offset 8"]),
    ({"count": 1.5}, ["count", "not an integer"]),
    ({"ident": "TOO LONG!"}, ["ident", "longer than 8"]),
    ({"ident": "AB "}, ["ident", "trailing blanks"]),
    ({"ident": "A\0B"}, ["ident", "NUL"]),
    ({"ident": "\u20ac"}, ["ident", "Latin-1"]),
    ({"ident": 7}, ["ident", "not text"]),
    ({"fov": float("nan")}, ["fov", "dg_single", "offset 12"]),
    ({"vax": 1e39}, ["vax", "range"]),
    ({"vax": "1.0"}, ["vax", "not a number"]),
    ({"fov": None}, ["fov", "not a number"]),  # None is a VAX reserved operand, nothing else
    ({"when": dt.datetime(2000, 1, 1)}, ["when", "time zone"]),
    ({"when": dt.datetime(2000, 1, 1, 0, 0, 0, 500000, dt.timezone.utc)}, ["when", "whole second"]),
    ({"triple": (1, 2)}, ["triple", "3 values"]),
    ({"triple": (1, 2, 2**31)}, ["triple", "int32_be"]),
    ({"raw": b"\x01\x02"}, ["raw", "not 4 bytes"]),
])
def test_write_refuses_unknown_names_and_values_that_do_not_fit(values, words):
    with pytest.raises(ValueError) as info:
        HDR.write(values)
    for word in words:
        assert word in str(info.value)


def test_write_beyond_the_buffer_is_refused_not_grown():
    buf = bytearray(30)
    with pytest.raises(ValueError, match="tr_us .* beyond the end of the 30-byte buffer"):
        HDR.write({"tr_us": 5}, into=buf)
    assert len(buf) == 30


def test_write_vax_reserved_operand_from_none():
    buf = HDR.write({"vax": None})
    assert buf[16:20] == bytes.fromhex("00800000")  # host-floats.md 2.5 #12
    assert HDR.read(bytes(buf))["vax"] is None


# Property: ``read(write(x)) == x`` for every registered field type. Values are drawn from
# each type's own domain, built from the notes' formulas (host-floats.md 1.1, 2.1) with
# ``math.ldexp``, not from our readers. A type registered without a strategy here fails
# ``test_every_registered_type_has_a_strategy``.


def _ints(bits: int, signed: bool):
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else st.integers(0, (1 << bits) - 1)


def _signed(magnitudes):
    return st.tuples(st.booleans(), magnitudes).map(lambda t: -t[1] if t[0] else t[1])


def _vax(low: float, high: float):
    """0, a reserved operand (None) or a value in the type's range (every binary64 there is exact)."""
    return st.one_of(st.just(0.0), st.none(), _signed(st.floats(low, high, exclude_max=True)))


_UTC = dt.timezone.utc
_SECONDS = lambda bits: _ints(bits, True).map(lambda s: dt.datetime.fromtimestamp(s, _UTC))  # noqa: E731

STRATEGIES = {
    "int8": _ints(8, True), "uint8": _ints(8, False),
    **{f"{kind}{bits}_{end}": _ints(bits, kind == "int") for kind in ("int", "uint") for bits in (16, 32)
       for end in ("be", "le")},
    **{f"float32_{end}": st.floats(width=32, allow_nan=False) for end in ("be", "le")},
    **{f"float64_{end}": st.floats(allow_nan=False) for end in ("be", "le")},
    # DG: (-1)^S * F/2^k * 16^(E-64), any fraction (normalised or not), any exponent.
    "dg_single": _signed(st.builds(lambda f, e: math.ldexp(f, 4 * (e - 64) - 24), _ints(24, False),
                                   st.integers(0, 127))),
    "dg_double": st.one_of(st.just(0.0), _signed(st.floats(2.0 ** -260, (1 - 2.0 ** -53) * 16.0 ** 63))),
    # VAX F: (-1)^S * (1/2 + f/2^24) * 2^(e-128), e from 1, plus 0 and the reserved operand.
    "vax_f": st.one_of(st.just(0.0), st.none(), _signed(st.builds(
        lambda f, e: math.ldexp((1 << 23) | f, e - 128 - 24), _ints(23, False), st.integers(1, 255)))),
    "vax_d": _vax(2.0 ** -128, 2.0 ** 127),
    "vax_g": _vax(2.0 ** -1024, 2.0 ** 1023),
    "unix_time_be": _SECONDS(32), "unix_time_le": _SECONDS(32),
    "char": st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=12).map(lambda t: t.rstrip(" ")),
    "bytes": st.binary(min_size=12, max_size=12),
    # GE packed UIDs: digits and dots starting with "1" (every real root does), up to 64.
    "ge_uid": st.from_regex(r"1[0-9.]{0,63}", fullmatch=True),
}


def test_every_registered_type_has_a_strategy():
    registered = sorted(name for name in TYPES if not name.startswith("test_"))  # not this file's own
    assert sorted(STRATEGIES) == registered
    assert all(TYPES[name].write is not None for name in registered)


def _spec(name: str) -> str:
    return f"{name}[{32 if name == 'ge_uid' else 12}]" if TYPES[name].size is None else name


@pytest.mark.parametrize("type_name", sorted(STRATEGIES))
@pytest.mark.parametrize("pad", [b"\0", b" "])
def test_read_of_write_is_identity_for_every_type(type_name, pad):
    table = Table("one", [F(3, _spec(type_name), "x"),
                          F(40, f"{type_name}[2]" if TYPES[type_name].size else "uint8", "pair")])

    @settings(max_examples=100, deadline=None)
    @given(value=STRATEGIES[type_name], second=STRATEGIES[type_name])
    def check(value, second):
        values = {"x": value}
        if TYPES[type_name].size:
            values["pair"] = (value, second)
        buf = table.write(values, pad=pad)
        assert len(buf) == table.size
        record = table.read(bytes(buf))
        for name, want in values.items():
            assert record[name] == want, (name, want, record[name])

    check()


@pytest.mark.parametrize("type_name", sorted(STRATEGIES))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_write_takes_back_what_read_gives_from_any_bytes(type_name, data):
    """From arbitrary bytes: whatever value ``read`` returns, ``write`` either refuses with
    ValueError (GE text UIDs that pack like text, DG double / VAX D whose RNE carried past the
    largest value, None from an invalid GE UID) or writes bytes that read the same value."""
    field = F(0, _spec(type_name), "x")
    raw = data.draw(st.binary(min_size=field.size, max_size=field.size))
    value = field.decode(raw)
    table = Table("one", [field])
    try:
        buf = table.write({"x": value})
    except ValueError as exc:
        if type_name == "ge_uid":
            assert value is None or "would read as text" in str(exc), (raw.hex(), exc)
        elif type_name == "dg_double":
            assert abs(value) > (1 - 16.0 ** -14) * 16.0 ** 63, (raw.hex(), exc)
        else:
            assert type_name == "vax_d" and abs(value) >= 2.0 ** 127, (raw.hex(), value, exc)
        return
    again = table.read(bytes(buf))["x"]
    assert again == value or (value != value and again != again), (raw.hex(), value, again)


def test_value_of_reads_what_pydicom_get_reads():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows = 512
    ds.SliceLocation = None  # present, empty
    for keyword in ("PatientName", "ImageType", "Rows", "SliceLocation", "Columns"):
        assert value_of(ds, keyword) == ds.get(keyword)
        assert type(value_of(ds, keyword)) is type(ds.get(keyword))
    assert value_of(ds, "SamplesPerPixel", 1) == 1
    assert value_of(ds, "Rows", 1) == 512
    with pytest.raises(ValueError):
        value_of(ds, "NotAKeyword")
