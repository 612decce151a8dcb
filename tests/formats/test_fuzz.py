"""Fuzzing every decoder and the whole capture path: bad input is a rejected capture, nothing else.

Seeds are the real samples and one simulated file of every simulated format; each is mutated
by a seeded random generator (byte changes, truncations, inserted bytes, header words and
tag-stream element values set to extremes). For every case ``pipeline.prepare`` (identify,
decode, normalise, encode the Part-10 file: what the spool stores) must either return an
instance whose bytes read back as DICOM or raise ``DecodeError``; each decoder on its own
likewise. Each case must take under 1 s of CPU and allocate under 200 MB at its peak
(``tracemalloc``, which also sees numpy's buffers).

The regression cases below were found by this fuzzer on the code before the fix (they passed
decoding and then failed in the spool's encoding step, so the service retried them forever);
they are rebuilt from the samples by code, not kept as binary files.
"""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import warnings

import pydicom
import pytest

from gateway import formats, simulate
from gateway.capture import Capture, Origin
from gateway.errors import DecodeError
from gateway.formats.tagstream.stream import read_stream
from gateway.pipeline import prepare
from tests.support.poison import POISON
from tests.support.samples import SAMPLES

SAMPLE_DIRS = ("dicom_vendor", "dicom_vendor_nopreamble", "ge_genesis", "siemens_spi_acrnema", "acr_nema")
CASES_PER_SEED = 60
CPU_LIMIT = 1.0          # seconds per case
MEMORY_LIMIT = 200 << 20  # bytes, peak per case
EXTREMES = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
            b"\x00\x00\x01\x00", b"\x00\x01\x00\x00")


def _seeds() -> dict[str, bytes]:
    seeds = {}
    for sub in SAMPLE_DIRS:
        for path in sorted((SAMPLES / sub).iterdir()):
            seeds[f"{sub}/{path.name}"] = path.read_bytes()
    for fmt in simulate.formats():
        sim = next(simulate.generate(fmt, 1, seed=7))
        seeds[f"simulated/{fmt}"] = sim.data
    for fmt, label, options in VARIANTS:
        seeds[f"simulated/{fmt}-{label}"] = next(simulate.generate(fmt, 1, options, seed=7)).data
    return seeds


# Encodings the default simulated files do not use: every pixel compression of Genesis, its
# Advantage Windows layout, and tag streams in the other byte orders and packed 12-bit.
VARIANTS = [
    *(("genesis", f"compression{code}", simulate.SimOptions(compression=code)) for code in (0, 1, 2, 3, 4)),
    ("genesis", "aw", simulate.SimOptions(variant="aw")),
    ("acrnema", "big", simulate.SimOptions(byte_order="big")),
    ("spi", "badbig", simulate.SimOptions(byte_order="badbig")),
    ("acrnema", "packed12", simulate.SimOptions(variant="packed12")),
]
SEEDS = _seeds()



def _element_spans(data: bytes) -> list[tuple[int, int]]:
    """(value offset, length) of the short values of a tag stream (ACR-NEMA, SPI): the header
    fields a mutation should push to extremes. Empty for other formats."""
    try:
        stream = read_stream(data)
    except Exception:  # noqa: BLE001 - not a tag stream
        return []
    return [(e.value_offset, e.length) for e in stream.elements if 0 < e.length <= 8]


def mutate(rng: random.Random, data: bytes, spans: list[tuple[int, int]]) -> tuple[str, bytes]:
    """One random mutation of ``data`` and a short description of it (for the failure message)."""
    b = bytearray(data)
    head = min(len(b), 8192)  # headers live at the front: most mutations go there
    kind = rng.choice(("flip", "flip", "truncate", "insert", "extreme", "element"))
    if kind == "flip":
        where = [rng.randrange(head) for _ in range(rng.randint(1, 4))]
        for i in where:
            b[i] = rng.randrange(256)
        return f"bytes {where} changed", bytes(b)
    if kind == "truncate":
        cut = rng.randrange(len(b))
        return f"truncated at {cut}", bytes(b[:cut])
    if kind == "insert":
        at, n = rng.randrange(head), rng.randint(1, 16)
        b[at:at] = bytes(rng.randrange(256) for _ in range(n))
        return f"{n} bytes inserted at {at}", bytes(b)
    if kind == "element" and spans:
        offset, length = rng.choice(spans)
        value = rng.choice(EXTREMES)
        b[offset:offset + length] = (value * 2)[:length]
        return f"element value at {offset} ({length} bytes) set to {value.hex()}", bytes(b)
    at, width = rng.randrange(max(1, head - 4)) & ~1, rng.choice((2, 4))
    value = rng.choice(EXTREMES)[:width]
    b[at:at + width] = value
    return f"word at {at} set to {value.hex()}", bytes(b)


def _check_case(name: str, what: str, data: bytes) -> str:
    """Run one case through the whole path; returns "accepted" or "rejected"."""
    tracemalloc.reset_peak()
    start = time.process_time()
    try:
        instance = prepare(Capture(data, Origin("fuzz", name)))
    except DecodeError as exc:
        outcome = "rejected"
        assert str(exc), f"{name} ({what}): a rejection without a reason"
        assert "ZeroDivisionError" not in str(exc), f"{name} ({what}): {exc}"
    except Exception as exc:  # noqa: BLE001 - the failure this test exists for
        raise AssertionError(f"{name} ({what}): {type(exc).__name__}: {exc} (not a rejection)") from exc
    else:
        outcome = "accepted"
        again = pydicom.dcmread(io.BytesIO(instance.data))  # what the spool stores reads back
        assert again.SOPInstanceUID == instance.dataset.SOPInstanceUID
    cpu = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1]
    assert cpu < CPU_LIMIT, f"{name} ({what}): {cpu:.2f} s of CPU"
    assert peak < MEMORY_LIMIT, f"{name} ({what}): {peak >> 20} MB allocated"
    return outcome


@pytest.fixture
def traced():
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about every odd value: expected here
            yield
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_inputs_are_accepted_or_rejected_with_a_reason(name, traced):
    data = SEEDS[name]
    rng = random.Random(f"fuzz:{name}")  # seeded: a failure is reproducible
    spans = _element_spans(data)
    outcomes = {"accepted": 0, "rejected": 0}
    assert _check_case(name, "unchanged", data) == "accepted"
    for _ in range(CASES_PER_SEED):
        what, mutated = mutate(rng, data, spans)
        outcomes[_check_case(name, what, mutated)] += 1
    assert outcomes["rejected"] > 0  # the mutations do reach the decoders' checks


@pytest.mark.parametrize("decoder", [d.name for d in formats.decoders()])
def test_every_decoder_on_every_seed_returns_or_raises_decode_error(decoder, traced):
    """Each registered decoder alone, also on bytes it would not identify (identification
    is cheap and can be fooled by a mutation; decode must still fail cleanly)."""
    dec = formats.get(decoder)
    rng = random.Random(f"decoder:{decoder}")
    for name, data in sorted(SEEDS.items()):
        for _ in range(6):
            what, mutated = mutate(rng, data, [])
            tracemalloc.reset_peak()
            start = time.process_time()
            try:
                assert isinstance(dec.identify(mutated), bool)
                formats.safe_decode(dec.decode, mutated, dec.name)
            except DecodeError as exc:
                assert "ZeroDivisionError" not in str(exc), f"{decoder} on {name} ({what}): {exc}"
            assert time.process_time() - start < CPU_LIMIT, f"{decoder} on {name} ({what})"
            assert tracemalloc.get_traced_memory()[1] < MEMORY_LIMIT, f"{decoder} on {name} ({what})"


# -- regressions found by the fuzzer on the unfixed code -------------------------------------


def _genesis_matrix_below_one() -> tuple[bytes, int]:
    """A simulated Genesis MR file whose acquisition matrix width (dim_x, float32 at image
    header + 42) is 0.25: it rounds to 0 samples, and PixelBandwidth divided by it."""
    data = bytearray(SEEDS["simulated/genesis"])
    rows = formats.get("ge-genesis").dump(bytes(data))
    field = next(row for row in rows if row.name.endswith(".dim_x"))
    data[field.offset:field.offset + 4] = struct.pack(">f", 0.25)
    return bytes(data), field.offset


@pytest.mark.parametrize("case", sorted(POISON))
def test_found_inputs_are_rejected_with_a_reason(case):
    data = POISON[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DecodeError) as err:
            prepare(Capture(data, Origin("regression", case)))
    assert str(err.value)


def test_genesis_matrix_rounding_to_zero_names_the_field():
    data, offset = _genesis_matrix_below_one()
    with pytest.raises(DecodeError) as err:
        formats.decode(data)
    assert err.value.field == "dim_x" and err.value.offset == offset
    assert "internal decoder error" not in str(err.value)
