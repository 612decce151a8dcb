"""Siemens SPI shadow groups to DICOM successors (siemens-spi.md 3, 6, 8).

Private elements are found through their creator string in the element's group, never by
full tag. What the Siemens private data says better than the standard part of an SPI file:
image geometry in Siemens' +Left/+Anterior/+Feet coordinates (turned into LPS), head or feet
first, slice location, and the MR and CT acquisition details listed with a DICOM target in
our dictionary (flip angle, field strength, feed per rotation, …). Everything private stays
in the output with its creator; this only fills DICOM attributes the source left empty.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from gateway.dicom import values as acrvalues
from gateway.dicom.geometry import put_plane
from gateway.formats.engine.fieldtable import put, value_of
from gateway.formats.tagstream import geometry as acrgeometry
from gateway.formats.tagstream.convert import Converted
from gateway.formats.tagstream.dictionary import PRIVATE

CMS = "SIEMENS CM VA0  CMS"
MR_GEN = "SIEMENS MR VA0  GEN"
MR_COAD = "SIEMENS MR VA0  COAD"
_LOCATION = 0x00200050
_KERNEL = 0x00181210


def _numbers(value: Any) -> list[float] | None:
    many = isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str)
    values = value if many else [value]
    try:
        return [float(acrvalues.number(str(v))) for v in values]
    except (TypeError, ValueError):
        return None


def is_siemens(ds: Dataset) -> bool:
    return str(value_of(ds, "Manufacturer") or "").strip().upper().startswith("SIEMENS")


def apply(conv: Converted) -> None:
    """Fill DICOM attributes from Siemens private data; the generic mapping runs after."""
    ds = conv.dataset
    _rest_direction(conv)
    _patient_position(conv)
    _geometry(conv)
    _slice_location(conv)
    _targets(conv)
    if str(value_of(ds, "Modality") or "") == "MR":
        _mr_acquisition(conv)
    _series_number(conv)
    _kernel(conv)


def _rest_direction(conv: Converted) -> None:
    for group, low in ((0x0013, 0x42), (0x0021, 0x32)):
        value = str(conv.private(group, CMS, low) or "").strip().upper()
        if value in ("HEAD", "FEET"):
            conv.head_first = value == "HEAD"
            return


def _patient_position(conv: Converted) -> None:
    ds = conv.dataset
    modified = str(conv.private(0x0013, CMS, 0x44) or "").strip()
    if modified:  # the position of a modified image overrides the original (antodc)
        put(ds, "PatientPosition", modified)


def _geometry(conv: Converted) -> None:
    ds = conv.dataset
    centre = _numbers(conv.private(0x0021, CMS, 0x60))
    row = _numbers(conv.private(0x0021, CMS, 0x6A))
    col = _numbers(conv.private(0x0021, CMS, 0x6B))
    spacing = _numbers(value_of(ds, "PixelSpacing")) if value_of(ds, "PixelSpacing") else None
    if not (centre and row and col and spacing) or len(centre) != 3 or len(row) != 3 or len(col) != 3:
        return
    if len(spacing) == 1:
        spacing = spacing * 2
    try:
        geometry = acrgeometry.from_siemens(centre, row, col, int(ds.Rows), int(ds.Columns), spacing)
    except (ValueError, AttributeError) as exc:
        conv.notes.append(f"Siemens private geometry unusable: {exc}")
        return
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and not _same_plane(conv, geometry):
        return
    put_plane(ds, *geometry)


def _same_plane(conv: Converted, geometry: acrgeometry.Geometry) -> bool:
    """Whether the file's own Image Position/Orientation (Patient) describe the plane of the
    private geometry; a stored position off by half a pixel is then replaced.

    The Vision SPI sample holds both: its (0020,0032) lies exactly half the field of view
    (N/2 pixels) from Siemens' image centre, i.e. at the outer corner of the image, while its
    retired (0020,0030) and MINC's (N-1)/2 rule give the centre of the first pixel, which is
    what DICOM defines (PS3.3 C.7.6.2.1.1; siemens-spi.md 6). So a file with and without a stored position gets
    the same one. A stored orientation that differs is another plane (a modified image):
    then the file's own geometry is kept as written.
    """
    ds = conv.dataset
    try:
        own_position = [float(v) for v in ds.ImagePositionPatient]
        own_orientation = [float(v) for v in ds.ImageOrientationPatient]
    except (TypeError, ValueError):
        return True
    position, orientation = geometry
    if len(own_orientation) != 6 or max(abs(a - b) for a, b in zip(own_orientation, orientation)) > 1e-3:
        conv.notes.append("Image Orientation (Patient) differs from Siemens' private geometry: the file's own kept")
        return False
    if len(own_position) == 3:
        shift = max(abs(a - b) for a, b in zip(own_position, position))
        if shift > 1e-3:
            conv.notes.append(f"stored Image Position (Patient) is {shift:.4f} mm from the first pixel's centre "
                              "computed from Siemens' image centre (siemens-spi.md 6): the centre written")
    return True


def _slice_location(conv: Converted) -> None:
    ds = conv.dataset
    distance = conv.private(0x0021, CMS, 0x63)
    if "SliceLocation" in ds or distance is None:
        return
    value = acrvalues.ds(str(distance))
    if value is None:
        return
    location = conv.retired.get(_LOCATION)
    if location and acrvalues.number(str(location[0])) is not None:
        if abs(float(acrvalues.number(str(location[0]))) - float(value)) > 1.0:
            conv.notes.append("Siemens Image Distance and ACR-NEMA Location disagree: Location kept")
            return
    put(ds, "SliceLocation", value)


def _targets(conv: Converted) -> None:
    """Private values whose dictionary entry names a DICOM target fill that target if empty."""
    ds = conv.dataset
    for (creator, group, low), entry in PRIVATE.items():
        if not entry.target or str(ds.get(entry.target) or "").strip():
            continue
        value = conv.private(group, creator, low)
        if value is None or str(value).strip() == "":
            continue
        vr = dictionary_VR(entry.target)
        fixed = acrvalues.conform(vr, str(value))
        if fixed is not None:
            setattr(ds, entry.target, fixed)


def _mr_acquisition(conv: Converted) -> None:
    ds = conv.dataset
    partitions = conv.private(0x0021, MR_GEN, 0x30)
    if not value_of(ds, "MRAcquisitionType") and partitions is not None:
        put(ds, "MRAcquisitionType", "3D" if _int(partitions) else "2D")
    direction = str(conv.private(0x0019, MR_COAD, 0xDA) or "").strip().upper()
    phase = {"PLUSX": "ROW", "MINUSX": "ROW", "PLUSY": "COL", "MINUSY": "COL"}.get(direction)
    if phase and "InPlanePhaseEncodingDirection" not in ds:
        put(ds, "InPlanePhaseEncodingDirection", phase)
    lines = _int(conv.private(0x0019, MR_GEN, 0x20))
    base = _int(conv.private(0x0019, MR_COAD, 0xD4))
    if phase and lines and base and "AcquisitionMatrix" not in ds:
        # Fourier lines are the phase-encoding lines, the base matrix the readout (the
        # notes' correction of antodc, siemens-spi.md 3.3; image text "210 *256").
        put(ds, "AcquisitionMatrix", [0, base, lines, 0] if phase == "ROW" else [base, 0, 0, lines])
        if "NumberOfPhaseEncodingSteps" not in ds:
            put(ds, "NumberOfPhaseEncodingSteps", str(lines))


def _series_number(conv: Converted) -> None:
    """Siemens MR numbers series by the Study ID, Siemens CT by the acquisition (antodc)."""
    ds = conv.dataset
    if not is_siemens(ds) or _int(value_of(ds, "SeriesNumber")):
        return
    source = {"MR": "StudyID", "CT": "AcquisitionNumber"}.get(str(value_of(ds, "Modality") or ""))
    if source:
        m = re.match(r"\s*0*(\d+)", str(ds.get(source) or ""))
        if m and int(m.group(1)):
            put(ds, "SeriesNumber", str(int(m.group(1))))
            conv.notes.append(f"Series Number taken from {source} (Siemens convention)")


def _kernel(conv: Converted) -> None:
    """Somatom writes the kernel as ``59 convkernel.10.AB40``: the kernel is the last part."""
    original = conv.truncated.get(_KERNEL)
    if original and is_siemens(conv.dataset):
        name = original.strip().rsplit(".", 1)[-1].strip()
        if name and acrvalues.is_valid("SH", name):
            conv.dataset.ConvolutionKernel = name


def _int(value: Any) -> int:
    try:
        return int(round(float(acrvalues.number(str(value)) or 0)))
    except (TypeError, ValueError):
        return 0
