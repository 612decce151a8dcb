"""The decoder contract, checked for every registered decoder on its own files.

Each decoder gets its format's simulated files (``gateway.simulate``) in every variant the
simulator offers, and the real samples of its format (``shared/samples``); formats without a
simulator (the DICOM pass-through) have only real samples. A registered decoder with no files
here fails, so a new format cannot slip past the contract. What is checked is what the
registry and the drivers rely on: identification by content without claiming another
format's files, ``length`` (serial lines cut streams with it), clean ``DecodeError``s on
truncated captures (tape and serial deliver them), and ``dump`` rows that point into the file.

The decoders are called directly, not through ``formats.decode``: that wrapper turns any
exception into a DecodeError, which would hide exactly the crashes looked for here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from gateway import formats
from gateway.errors import DecodeError
from gateway.formats import Decoder
from gateway.simulate import SimOptions, generate

# Simulated variants per decoder: (simulator, options).
SIMULATED: dict[str, list[tuple[str, SimOptions]]] = {
    "acr-nema": [("acrnema", SimOptions(byte_order=order)) for order in ("little", "big", "badbig")]
    + [("acrnema", SimOptions(variant="packed12")), ("acrnema", SimOptions(extra={"group_lengths": False}))],
    "siemens-spi": [("spi", SimOptions(byte_order=order)) for order in ("little", "big", "badbig")]
    + [("spi", SimOptions(extra={"group_lengths": False}))],
    "somatom-plus": [("somatom-plus", SimOptions(extra={"size": size})) for size in (64, 256)],
    "vision-ima": [("vision-ima", SimOptions(extra={"size": size})) for size in (64, 256)],
    "ge-genesis": [("genesis", SimOptions(variant=variant, compression=code))
                   for variant in ("disk", "tape", "aw") for code in (0, 1, 2, 3, 4)],
    "ge-signa4x": [("signa4x", SimOptions(variant=variant)) for variant in ("disk", "tape")],
    "ge-ct9800": [("ge9800", SimOptions(extra={"size": 256, "kind": kind})) for kind in ("axial", "scout", "tilted")]
    + [("ge9800", SimOptions(extra={"size": 256, "map": False}))],
}

# Real samples per decoder: folders (or files) of shared/samples.
REAL: dict[str, list[str]] = {
    "dicom": ["dicom_vendor"],
    "dicom-headerless": ["dicom_vendor_nopreamble"],
    "acr-nema": ["acr_nema"],
    "siemens-spi": ["siemens_spi_acrnema"],
    "ge-genesis": ["ge_genesis"],
    # Interfile headers (their data files are no format of their own: the decoder takes them as parts)
    "interfile": ["interfile/stir/examples/recon_demo/init.hv", "interfile/stir/examples/recon_demo/smalllong.hs",
                  "interfile/stir/recon_test_pack/scatter_cylinder.hs"],
}

CUTS = 30  # evenly spread truncation points per file, besides the header boundary
PADDING = b"\0" * 1024  # what XMODEM (and a tape record's slack) leaves after an object

DECODERS = formats.decoders()


def _ids(decoder: Decoder) -> str:
    return decoder.name


@functools.cache
def _simulated(name: str) -> tuple[tuple[str, bytes], ...]:
    files = []
    for simulator, options in SIMULATED.get(name, []):
        for sim in generate(simulator, 2, options, seed=12):
            chosen = {"variant": options.variant, "byte order": options.byte_order, "compression": options.compression,
                      "group lengths": options.extra.get("group_lengths"), "size": options.extra.get("size")}
            shown = ", ".join(f"{k} {v}" for k, v in chosen.items() if v is not None)
            files.append((f"simulated {sim.name} ({shown or 'defaults'})", sim.data))
    return tuple(files)


@functools.cache
def _real(name: str, root: Path) -> tuple[tuple[str, bytes], ...]:
    paths = [path for entry in REAL.get(name, [])
             for path in ([root / entry] if (root / entry).is_file() else sorted((root / entry).iterdir()))]
    found = tuple((str(path.relative_to(root)), path.read_bytes()) for path in paths if path.is_file())
    for label, data in found:
        names = formats.companions(data) or []
        if names and all((root / label).with_name(n).is_file() for n in names):
            _PARTS[data] = {n: (root / label).with_name(n).read_bytes() for n in names}
    return found


@pytest.fixture
def files(decoder: Decoder, samples: Path) -> tuple[tuple[str, bytes], ...]:
    """The decoder's own files: simulated variants, then the real samples."""
    found = _simulated(decoder.name) + _real(decoder.name, samples)
    if not found:
        pytest.fail(f"decoder {decoder.name!r} has no files in this test: add its simulator to "
                    f"SIMULATED or its samples to REAL")
    return found


def _cuts(data: bytes, boundary: int) -> list[int]:
    """About ``CUTS`` truncation lengths spread over the file, plus either side of the header
    boundary and a few within the first bytes (a capture cut inside the magic)."""
    spread = {len(data) * i // (CUTS + 1) for i in range(1, CUTS + 1)}
    edges = {boundary - 1, boundary, boundary + 1, 0, 1, 4, 16}
    return sorted(n for n in spread | edges if 0 <= n < len(data))


_PARTS: dict[bytes, dict[str, bytes]] = {}  # a real header's companion files, by the header's bytes


def _header_boundary(decoder: Decoder, data: bytes) -> int:
    """Where the header ends and the pixels begin: the vendor header kept by the decoder, or
    (DICOM, which keeps none) the Pixel Data element's dump row."""
    parts = _PARTS.get(data)
    decoded = formats.decode(data, parts) if parts else decoder.decode(data)
    if decoded.vendor_header:
        assert data.startswith(decoded.vendor_header), "vendor_header must be the file's own leading bytes"
        return len(decoded.vendor_header)
    rows = [r for r in decoder.dump(data) if r.name == "PixelData"]
    assert rows, f"{decoder.name}: no vendor header and no Pixel Data row to find the header boundary"
    return rows[0].offset


@pytest.mark.parametrize("decoder", DECODERS, ids=_ids)
def test_decoder_satisfies_protocol(decoder: Decoder):
    assert isinstance(decoder, Decoder)
    assert formats.protocol_problems(decoder) == []
    if isinstance(decoder, formats.Format):  # the cheap half: its decoder class is whole too, and the same format
        full = decoder.decoder()
        assert isinstance(full, type(decoder)) and full.name == decoder.name
        assert formats.protocol_problems(full) == []


def test_identification_fields_agree_with_the_decoders_tables():
    """The few fields identification reads without the field-table engine (``engine.peek``)
    are the tables' own: same name, offset and type."""
    from gateway.formats.siemens import recognise, somatom_plus, vision_ima

    pairs = [(somatom_plus.BINARY, peek) for peek in recognise.SOMATOM_FIELDS]
    pairs.append((vision_ima.HEADER, recognise.VISION_MATRIX))
    for table, peek in pairs:
        declared = table.by_name[peek.name]
        assert (declared.offset, declared.type) == (peek.offset, peek.type), peek.name


class _Partial:
    """A format that forgot ``length`` and ``dump``."""

    name, description, priority = "test-partial", "a decoder missing half the protocol", 1

    def identify(self, data: bytes) -> bool:
        return data.startswith(b"PARTIAL")

    def decode(self, data: bytes):
        raise DecodeError("never", offset=0)


class _Whole(_Partial):
    name = "test-whole"

    def length(self, data: bytes) -> int | None:
        return None

    def dump(self, data: bytes) -> list:
        return []


class _Cheap(formats.Format):
    """A format's cheap half whose decoder class forgot ``length`` and ``dump``."""

    name, description, priority = "test-cheap", "a format whose decoder is missing half", 1
    implementation = "tests.formats.test_contract:_CheapDecoder"

    def identify(self, data: bytes) -> bool:
        return data.startswith(b"CHEAP")


class _CheapDecoder(_Cheap):
    def decode(self, data: bytes):
        raise DecodeError("never", offset=0)


def test_a_format_whose_decoder_class_is_not_whole_fails_on_first_use():
    cheap = _Cheap()
    assert formats.protocol_problems(cheap) == []  # registrable: the decoder is loaded only when used
    with pytest.raises(TypeError, match="_CheapDecoder defines no length; _CheapDecoder defines no dump"):
        cheap.dump(b"CHEAP")
    cheap.implementation = "tests.formats.test_contract"
    assert formats.protocol_problems(cheap) == ["implementation is not 'module:Class'"]


def test_register_refuses_a_decoder_missing_part_of_the_protocol(monkeypatch):
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats._REGISTRY))
    with pytest.raises(TypeError, match="no length; no dump"):
        formats.register(_Partial())
    assert "test-partial" not in formats._REGISTRY
    broken = _Whole()
    broken.priority = "first"
    with pytest.raises(TypeError, match="priority is not a int"):
        formats.register(broken)
    assert formats.register(_Whole()).name in formats._REGISTRY


@pytest.mark.parametrize("decoder", DECODERS, ids=_ids)
def test_identifies_its_own_files_and_only_those(decoder: Decoder, files):
    problems = []
    for label, data in files:
        if not decoder.identify(data):
            problems.append(f"{decoder.name} refuses its own file {label}")
        elif formats.identify(data) is not decoder:
            problems.append(f"{label}: the registry picks {formats.identify(data).name}")
        problems += [f"{other.name} claims {label}" for other in DECODERS
                     if other is not decoder and other.identify(data)]
        problems += [f"{other.name} measures {label}: {other.length(data)}" for other in DECODERS
                     if other is not decoder and other.length(data) is not None]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("decoder", DECODERS, ids=_ids)
def test_length_of_whole_padded_followed_and_truncated_files(decoder: Decoder, files):
    problems = []
    for label, data in files:
        if (n := decoder.length(data)) != len(data):
            problems.append(f"{label}: whole file of {len(data)} bytes measured {n}")
        for after, what in ((PADDING, "padding"), (data, "the next object")):
            if (n := decoder.length(data + after)) != len(data):
                problems.append(f"{label}: file of {len(data)} bytes followed by {what} measured {n}")
        if (n := formats.object_length(data)) != len(data):
            problems.append(f"{label}: the registry measured the whole file {n}")
        for cut in _cuts(data, _header_boundary(decoder, data)):
            for who, n in ((decoder.name, decoder.length(data[:cut])), ("registry", formats.object_length(data[:cut]))):
                if n is not None and not cut < n <= len(data):
                    problems.append(f"{label}: {who} measured a {cut}-byte prefix {n} (the file has {len(data)})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("decoder", DECODERS, ids=_ids)
def test_truncated_files_raise_decode_error_naming_where(decoder: Decoder, files):
    problems = []
    for label, data in files:
        for cut in _cuts(data, _header_boundary(decoder, data)):
            for other in DECODERS:  # identify looks at any bytes and never raises
                try:
                    other.identify(data[:cut])
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{label} cut at {cut}: {other.name}.identify raised {type(exc).__name__}: {exc}")
            try:
                decoder.decode(data[:cut])
            except DecodeError as exc:
                if exc.field is None and exc.offset is None:
                    problems.append(f"{label} cut at {cut}: {exc!s} names neither field nor offset")
            except Exception as exc:  # noqa: BLE001 - exactly what this test looks for
                problems.append(f"{label} cut at {cut}: {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{label} cut at {cut} of {len(data)} bytes decoded without complaint")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("decoder", DECODERS, ids=_ids)
def test_dump_rows_point_into_the_file(decoder: Decoder, files):
    for label, data in files:
        rows = decoder.dump(data)
        assert rows, f"{label}: empty dump"
        outside = [(r.offset, r.name) for r in rows if not 0 <= r.offset < len(data)]
        assert not outside, f"{label}: rows outside the file: {outside[:5]}"
