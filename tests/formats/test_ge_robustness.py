"""Bad input never crashes: mutated real samples and simulated GE files decode, or raise
DecodeError naming a field, each within one second (hypothesis, bounded).

The decoders are called directly, not through ``formats.decode``: that wrapper turns any
exception into a DecodeError, which would hide exactly the crashes this test looks for.
"""

from __future__ import annotations

import struct
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import formats
from gateway.dicom.normalize import normalize
from gateway.errors import DecodeError
from gateway.simulate import SimOptions, generate
from tests.support.samples import SAMPLES

REAL = [(SAMPLES / "ge_genesis" / name).read_bytes() for name in ("heart.1", "E07733S002I009.MR")]
SYNTHETIC = [
    sim.data
    for opts in (SimOptions(compression=4, variant="tape"), SimOptions(compression=2, variant="aw"),
                 SimOptions(compression=3), SimOptions(compression=0))
    for sim in generate("genesis", 1, opts, seed=41)
] + [sim.data for sim in generate("signa4x", 2, SimOptions(), seed=42)]

# Offsets where a wrong value matters most: IMGF fields and pointers, the DB headers of the
# real files (exam type, corners, pixel sizes), the Signa identifiers, sizes and corners.
HOT = list(range(4, 156, 4)) + [2418 + 305, 4462 + 50, 4462 + 154, 4462 + 166, 5346 + 305, 7390 + 154,
                                5394, 5396, 5398, 5402, 5538, 5550, 5562, 4398]


@st.composite
def mutated(draw, bases):
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "bytes", "hot_int", "insert", "delete"]))
        if kind == "truncate" and len(data) > 1:
            del data[draw(st.integers(0, len(data) - 1)):]
        elif kind == "bytes" and data:
            at = draw(st.integers(0, len(data) - 1))
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif kind == "hot_int":
            at = draw(st.sampled_from(HOT))
            if at + 4 <= len(data):
                value = draw(st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31), 3180, 8192, 65535, 16, 3, 4])
                             | st.integers(-(2**31), 2**31 - 1))
                struct.pack_into(">i", data, at, value)
        elif kind == "insert":
            at = draw(st.integers(4, max(4, len(data))))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete" and len(data) > 4:
            at = draw(st.integers(4, len(data) - 1))
            del data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


def _decode_or_reject(data: bytes) -> None:
    decoder = formats.identify(data)
    if decoder is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about dubious values; that is no crash
        try:
            normalize(decoder.decode(data), origin="fuzz")
        except DecodeError as exc:
            assert str(exc)
        try:
            decoder.dump(data)
        except DecodeError:
            pass


_SETTINGS = settings(max_examples=120, deadline=1000, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(mutated(REAL))
def test_mutated_real_samples(data):
    _decode_or_reject(data)


@_SETTINGS
@given(mutated(SYNTHETIC))
def test_mutated_synthetic_files(data):
    _decode_or_reject(data)


@pytest.mark.parametrize("data", [b"", b"IMGF", b"IMGF" + bytes(200), b"GEMS" + b"IMGF" * 3])
def test_tiny_inputs(data):
    _decode_or_reject(data)
