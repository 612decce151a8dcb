"""Where an object ends, by its own element lengths: checked against real files (whose true
length is their size on disk) and against files written by pydicom, an independent writer."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from drivers.serial.xmodem import trim_padding
from gateway import formats
from gateway.formats.tagstream.extent import dataset_length
from tests.support.helpers import ct_instance

REAL = ["dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm", "dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm",
        "dicom_vendor_nopreamble/prostate_Marconi_nopreamble.img",
        "dicom_vendor_nopreamble/OT-MONO2-8-a7_Philips_nopreamble.dcm", "siemens_spi_acrnema/mr.001",
        "acr_nema/CT-MONO2-12-lomb-an2.acr", "ge_genesis/heart.1", "ge_genesis/E07733S002I009.MR"]
SUB = b"\x1a"


@pytest.fixture(params=REAL, ids=lambda p: p.split("/")[1])
def real(request, samples) -> bytes:
    return (samples / request.param).read_bytes()


def test_a_real_file_measures_its_size_on_disk(real):
    assert formats.object_length(real) == len(real)


def test_padding_after_a_real_file_is_not_part_of_it(real):
    for pad in (1, 7, 127, 1023):
        assert formats.object_length(real + SUB * pad) == len(real)


def test_a_real_file_followed_by_another_object_ends_where_it_should(real, samples):
    other = (samples / "dicom_vendor_nopreamble" / "OT-MONO2-8-a7_Philips_nopreamble.dcm").read_bytes()
    assert formats.object_length(real + other) == len(real)


def test_every_prefix_of_a_real_file_asks_for_more(real):
    for cut in range(200, len(real), 4999):
        n = formats.object_length(real[:cut])
        assert n is None or n > cut, f"prefix of {cut} bytes taken as a complete object of {n}"
    assert formats.object_length(real[:-10]) >= len(real) - 9


def test_each_real_file_is_measured_by_its_own_format(samples):
    """ACR-NEMA by its elements, SPI by its elements, Genesis by header + pixel lengths (the
    DPCM-compressed one by walking its codes: no header field gives that size)."""
    expect = {"acr_nema/CT-MONO2-12-lomb-an2.acr": "acr-nema", "siemens_spi_acrnema/mr.001": "siemens-spi",
              "ge_genesis/heart.1": "ge-genesis", "ge_genesis/E07733S002I009.MR": "ge-genesis"}
    for path, fmt in expect.items():
        data = (samples / path).read_bytes()
        assert formats.identify(data).name == fmt
        assert formats.get(fmt).length(data) == len(data)


def test_formats_without_real_samples_measure_what_their_simulators_write():
    """Signa 4.x, Vision and Somatom Plus exist here only as simulated files; their lengths
    come from header fields (Signa 4.x: 14336 + 2 * dim_x * dim_y, i.e. 145408 for 256²)."""
    from gateway.simulate import SimOptions, generate

    cases = [("signa4x", SimOptions()), ("vision-ima", SimOptions()), ("somatom-plus", SimOptions()),
             ("acrnema", SimOptions(byte_order="badbig")), ("acrnema", SimOptions(byte_order="big")),
             *[("genesis", SimOptions(compression=c)) for c in range(5)],
             ("genesis", SimOptions(variant="tape", compression=3)), ("genesis", SimOptions(variant="aw"))]
    for fmt, opts in cases:
        (sim,) = generate(fmt, 1, opts, 5)
        data = sim.data
        assert formats.object_length(data) == len(data), (fmt, opts)
        assert formats.object_length(data + SUB * 77) == len(data), (fmt, opts)
        assert formats.object_length(data + data) == len(data), (fmt, opts)
        assert formats.object_length(data[:-1]) >= len(data), (fmt, opts)
    (signa,) = generate("signa4x", 1, SimOptions(), 1)
    assert formats.object_length(signa.data[:20000]) == 145408 == len(signa.data)


def test_acr_nema_stream_is_measured_by_the_generic_walker(samples):
    acr = (samples / "acr_nema" / "CT-MONO2-12-lomb-an2.acr").read_bytes()
    assert dataset_length(acr, 0, explicit=False, little=True) == len(acr)
    assert dataset_length(acr + SUB * 50, 0, explicit=False, little=True) == len(acr)
    assert dataset_length(acr[:5000], 0, explicit=False, little=True) > 5000


def _written(ds: Dataset, syntax, *, little: bool = True, implicit: bool = False) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, little_endian=little, implicit_vr=implicit)
    return out.getvalue()


def _with_sequences(ds: Dataset) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D1100", "SRT", "Head"
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "1", "99X", "x" * 33
    item.ModifierCodeSequence = Sequence([inner])
    ds.AnatomicRegionSequence = Sequence([item, item])
    ds.ReferencedImageSequence = Sequence([])
    for kw in ("AnatomicRegionSequence", "ReferencedImageSequence"):
        ds[kw].is_undefined_length = True
    item["ModifierCodeSequence"].is_undefined_length = True
    item.is_undefined_length_sequence_item = True  # items closed by item delimiters, too
    inner.is_undefined_length_sequence_item = True
    return ds


@pytest.mark.parametrize("syntax,little,implicit", [(ExplicitVRLittleEndian, True, False),
                                                    (ImplicitVRLittleEndian, True, True),
                                                    (ExplicitVRBigEndian, False, False)])
def test_pydicom_files_with_undefined_length_sequences(syntax, little, implicit):
    data = _written(_with_sequences(ct_instance(3)), syntax, little=little, implicit=implicit)
    assert formats.object_length(data) == len(data)
    assert formats.object_length(data + SUB * 100) == len(data)
    assert formats.object_length(data[:len(data) // 3]) > len(data) // 3


def test_encapsulated_pixel_data_is_followed_to_its_delimiter():
    ds = _with_sequences(ct_instance(4))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    frames = [bytes(np.random.default_rng(1).integers(0, 255, 3001, dtype=np.uint8))]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    data = _written(ds, JPEGBaseline8Bit)
    assert formats.object_length(data) == len(data)
    assert formats.object_length(data[:-4]) > len(data) - 4  # the sequence delimiter is missing


def test_deflated_and_garbage_cannot_be_measured():
    data = _written(ct_instance(5), DeflatedExplicitVRLittleEndian)
    assert formats.object_length(data) is None
    assert formats.object_length(b"this is not an image" * 100) is None
    assert formats.object_length(b"") is None


def test_pydicom_reads_what_the_length_check_cut_out(samples):
    a = (samples / "dicom_vendor_nopreamble" / "OT-MONO2-8-a7_Philips_nopreamble.dcm").read_bytes()
    stream = a + _written(ct_instance(6), ExplicitVRLittleEndian)
    n = formats.object_length(stream)
    first = pydicom.dcmread(io.BytesIO(stream[:n]), force=True)
    assert first.Rows == 512 and len(first.PixelData) == 512 * 512


# -- XMODEM padding ----------------------------------------------------------------------------------


def test_padding_is_trimmed_only_where_the_format_says_the_object_ended():
    obj = b"x" * 300
    assert trim_padding(obj + SUB * 84, 300, 128)[0] == obj
    # A file that really ends in SUB bytes, and no format that can say so: left alone.
    genuine = b"y" * 250 + SUB * 6
    assert trim_padding(genuine, None, 128)[0] == genuine
    # The format ends the object earlier, but what follows is not padding: left alone.
    assert trim_padding(obj + b"z" + SUB * 83, 300, 128)[0] == obj + b"z" + SUB * 83
    # More "padding" than a block holds cannot be XMODEM padding.
    assert trim_padding(obj + SUB * 200, 300, 128)[0] == obj + SUB * 200
    # The format wants more than arrived: delivered as received, for the pipeline to refuse.
    assert trim_padding(obj, 400, 128)[0] == obj
