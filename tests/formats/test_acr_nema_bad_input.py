"""Bad input to the ACR-NEMA, SPI and Siemens fixed-header decoders: DecodeError, never a crash.

Each case builds a damaged stream on purpose and checks the error names the place; the
hypothesis test mutates the two real samples and calls every one of our decoders directly
(bypassing the registry's safety net, which would hide a crash as an "internal error").
"""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import formats
from gateway.errors import DecodeError
from gateway.formats.tagstream.simulate import encode_stream
from gateway.formats.tagstream.stream import ByteOrder, parse, read_stream
from gateway.simulate import SimOptions, generate

OURS = ["acr-nema", "siemens-spi", "somatom-plus", "vision-ima"]
ORDERS = list(ByteOrder)


def acr(order: ByteOrder = ByteOrder.LITTLE, **extra) -> bytes:
    variant = extra.pop("variant", None)
    return next(generate("acrnema", 1, SimOptions(byte_order=order.value, variant=variant, extra=extra), seed=5)).data


def decode(data: bytes, name: str = "acr-nema"):
    return formats.get(name).decode(data)


def minimal(pixels: bytes, rows: int = 2, cols: int = 2, bits: int = 16, order=ByteOrder.LITTLE, extra=()) -> bytes:
    elements = [
        (0x00080010, "LO", "ACR-NEMA 2.0"), (0x00080060, "CS", "CT"),
        (0x00280010, "US", rows), (0x00280011, "US", cols), (0x00280100, "US", bits),
        (0x7FE00010, "OB", pixels), *extra,
    ]
    return encode_stream(elements, order)


def test_truncated_element_header():
    data = acr()
    cut = data[: read_stream(data).find(0x00100010).offset + 5]
    with pytest.raises(DecodeError) as err:
        decode(cut)
    assert err.value.offset is not None


def test_value_length_past_the_end():
    data = bytearray(acr(group_lengths=False))
    elem = read_stream(bytes(data)).find(0x00100010)
    struct.pack_into("<I", data, elem.offset + 4, 0x7FFFFFF0)
    with pytest.raises(DecodeError) as err:
        decode(bytes(data))
    assert err.value.offset == elem.offset and "past the end" in str(err.value)


@pytest.mark.parametrize("tag,length", [(0x00100010, 0xFFFFFFFF), (0xFFFEE000, 8)])
def test_undefined_lengths_and_items_are_refused(tag, length):
    head = encode_stream([(0x00080010, "LO", "ACR-NEMA 2.0")], ByteOrder.LITTLE, group_lengths=False)
    nested = (struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
              + bytes(16))
    with pytest.raises(DecodeError) as err:
        decode(head + nested)
    assert "undefined length" in str(err.value) and err.value.offset == len(head)


def test_absurd_group_length():
    data = bytearray(acr())
    struct.pack_into("<I", data, 8, 0xFFFFFFF0)  # (0008,0000) value
    with pytest.raises(DecodeError) as err:
        decode(bytes(data))
    assert err.value.field == "(0008,0000)" and err.value.offset == 0


def test_element_past_its_group_end():
    data = bytearray(acr())
    struct.pack_into("<I", data, 8, 20)  # group 0008 declared far shorter than it is
    with pytest.raises(DecodeError) as err:
        decode(bytes(data))
    assert "past the end of its group" in str(err.value)


def test_stale_group_length_that_is_too_long_is_only_noted():
    """As in the real Somatom Plus 4 file: a declared length longer than the group."""
    data = bytearray(acr())
    declared = struct.unpack_from("<I", data, 8)[0]
    struct.pack_into("<I", data, 8, declared + 12)
    decoded = decode(bytes(data))
    assert any("group 0008" in note for note in decoded.notes)


@pytest.mark.parametrize("written", ORDERS)
def test_wrong_byte_order_guesses_fail_cleanly(written):
    data = acr(written)
    for other in ORDERS:
        if other is not written:
            with pytest.raises(DecodeError):
                parse(data, other)
    assert read_stream(data).order is written


def test_pixel_data_shorter_than_the_image():
    with pytest.raises(DecodeError) as err:
        decode(minimal(bytes(6), rows=2, cols=2, bits=16))
    assert err.value.field == "PixelData"
    with pytest.raises(DecodeError):
        decode(minimal(bytes(4), rows=2, cols=2, bits=12))  # packed 2 x 2 needs 6


def test_huge_rows_and_columns_allocate_nothing():
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode(minimal(bytes(8), rows=65535, cols=65535, bits=16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20  # 65535² pixels would be 8 GiB


def test_packed_big_endian_test_vector_through_a_stream():
    """acr-nema.md 7.2: the big-endian stream holds the words as 23 01 67 45 AB 89."""
    data = minimal(bytes.fromhex("23 01 67 45 AB 89"), bits=12, order=ByteOrder.BIG)
    pixels = struct.unpack("<4H", decode(data).dataset.PixelData)
    assert pixels == (0x301, 0x452, 0x967, 0xAB8)


def test_compressed_and_multi_plane_images_are_refused():
    with pytest.raises(DecodeError) as err:
        decode(minimal(bytes(8), extra=[(0x00280060, "CS", "PACK")]))
    assert err.value.field == "CompressionCode"
    with pytest.raises(DecodeError) as err:
        decode(minimal(bytes(8), extra=[(0x00280005, "US", 3), (0x00280012, "US", 4)]))
    assert err.value.field == "Planes"


def test_spi_compression_is_refused():
    elements = [
        (0x00080060, "CS", "MR"), (0x00290010, "LO", "SPI RELEASE 1"), (0x00291060, "LO", "SOME CODEC"),
        (0x00280010, "US", 2), (0x00280011, "US", 2), (0x00280100, "US", 16), (0x7FE00010, "OB", bytes(8)),
    ]
    data = encode_stream(elements, ByteOrder.LITTLE, group_lengths=False)
    assert formats.identify(data).name == "siemens-spi"
    with pytest.raises(DecodeError) as err:
        decode(data, "siemens-spi")
    assert err.value.field == "CompressionAlgorithm"


def test_truncated_fixed_header_files():
    somatom = next(generate("somatom-plus", 1, SimOptions(), seed=2)).data
    vision = next(generate("vision-ima", 1, SimOptions(), seed=2)).data
    for name, data, cut in (("somatom-plus", somatom, 4096 + 100), ("somatom-plus", somatom, 2000),
                            ("vision-ima", vision, 6144 + 10), ("vision-ima", vision, 300)):
        with pytest.raises(DecodeError) as err:
            decode(data[:cut], name)
        assert err.value.offset is not None


def test_absurd_fixed_header_sizes():
    somatom = bytearray(next(generate("somatom-plus", 1, SimOptions(), seed=2)).data)
    struct.pack_into("<i", somatom, 1328, 2**30)
    assert not formats.get("somatom-plus").identify(bytes(somatom))
    with pytest.raises(DecodeError) as err:
        decode(bytes(somatom), "somatom-plus")
    assert err.value.field == "matrix"
    vision = bytearray(next(generate("vision-ima", 1, SimOptions(), seed=2)).data)
    struct.pack_into(">h", vision, 4994, -5)
    with pytest.raises(DecodeError):
        decode(bytes(vision), "vision-ima")


@st.composite
def mutated(draw, originals):
    data = bytearray(draw(st.sampled_from(originals)))
    header = min(len(data), 9000)  # where the structure is: elements before the pixels
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(header - 1, 0)))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


@pytest.fixture(scope="module")
def originals(samples):
    return [
        (samples / "siemens_spi_acrnema" / "mr.001").read_bytes(),
        (samples / "acr_nema" / "CT-MONO2-12-lomb-an2.acr").read_bytes(),
    ]


def test_mutated_real_samples_never_crash(originals):
    @settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(originals))
    def check(data: bytes) -> None:
        for name in OURS:
            decoder = formats.get(name)
            decoder.identify(data)  # must not raise
            try:
                decoder.decode(data)
            except DecodeError:
                pass

    check()


def test_big_endian_us_values_in_a_little_endian_stream_are_fixed():
    """dicom3tools' FIXUPSWAPPEDUS case (acr-nema.md 4.3 step 6): LE tags and lengths, but US
    values and pixels big endian; Samples per Pixel reads 256 instead of 1."""
    pixels = bytes.fromhex("0001 0002 0003 0FFF")  # big-endian words 1, 2, 3, 4095
    swapped = [(tag, "US", ((v & 0xFF) << 8) | (v >> 8))
               for tag, v in ((0x00280002, 1), (0x00280010, 2), (0x00280011, 2), (0x00280100, 16), (0x00280101, 12),
                              (0x00280102, 11))]
    data = encode_stream([(0x00080010, "LO", "ACR-NEMA 2.0"), (0x00080060, "CS", "OT"), *swapped,
                          (0x7FE00010, "OB", pixels)], ByteOrder.LITTLE)
    ds = decode(data).dataset
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel) == (2, 2, 16, 1)
    assert struct.unpack("<4H", ds.PixelData) == (1, 2, 3, 4095)


def test_overlay_bits_inside_the_pixels_are_masked_and_the_overlay_dropped():
    """A Magnetom GBS III-like image (acr-nema.md 7.3): 12 bits stored, an overlay in bit 12."""
    pixels = struct.pack("<4H", 0x0123, 0x1456, 0x0789, 0x1ABC)
    extra = [(0x00280101, "US", 12), (0x00280102, "US", 11), (0x60000010, "US", 2), (0x60000011, "US", 2),
             (0x60000040, "CS", "G"), (0x60000100, "US", 16), (0x60000102, "US", 12), (0x60000200, "US", 0x7FE0)]
    decoded = decode(minimal(pixels, extra=extra))
    ds = decoded.dataset
    assert struct.unpack("<4H", ds.PixelData) == (0x0123, 0x0456, 0x0789, 0x0ABC)
    assert not any(elem.tag.group == 0x6000 for elem in ds)
    assert any("overlay" in note for note in decoded.notes)
