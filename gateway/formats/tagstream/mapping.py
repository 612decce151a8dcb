"""Retired ACR-NEMA attributes to their DICOM successors, and the vendor identity of an image.

Runs after vendor rules (``siemens_shadow``), so a vendor's better knowledge wins; this fills
what is still missing the way antodc does (acr-nema.md 8.2-8.3): Patient Position from
posture words, image geometry from the retired gantry-relative elements (or, as a last
resort, from Patient Orientation letters), Slice Location from Location, enumerations in
DICOM spelling, Study ID and Series Number when the source has none. An image whose geometry
cannot be stated becomes a Secondary Capture rather than a CT/MR image with invented geometry.
"""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

from gateway.dicom import values as acrvalues
from gateway.dicom.geometry import patient_orientation, put_plane
from gateway.dicom.iods import SECONDARY_CAPTURE_STORAGE
from gateway.formats.engine.fieldtable import put, value_of
from gateway.formats.tagstream import geometry as acrgeometry
from gateway.formats.tagstream.convert import Converted

_IMAGE_POSITION = 0x00200030
_IMAGE_ORIENTATION = 0x00200035
_LOCATION = 0x00200050
_IMAGE_TYPE_3 = {"MR": "OTHER", "CT": "AXIAL"}


def finish(conv: Converted) -> None:
    ds = conv.dataset
    _enumerations(conv)
    _slice_location(conv)
    _geometry(conv)
    _conditions(conv)
    if not str(value_of(ds, "StudyID") or "").strip():
        digits = re.sub(r"\D", "", f"{value_of(ds, 'StudyDate') or ''}{value_of(ds, 'StudyTime') or ''}")[:16]
        if digits:
            put(ds, "StudyID", digits)
    if not _number(value_of(ds, "SeriesNumber")):
        for source in ("AcquisitionNumber", "StudyID"):
            n = _leading_number(ds.get(source))
            if n:
                put(ds, "SeriesNumber", str(n))
                conv.notes.append(f"Series Number taken from {source}")
                break


def _enumerations(conv: Converted) -> None:
    ds = conv.dataset
    if "PatientSex" in ds:
        put(ds, "PatientSex", acrvalues.patient_sex(str(ds.PatientSex or "")) or None)
    put(ds, "Laterality", acrvalues.laterality(str(value_of(ds, "Laterality") or "")) or None)
    if value_of(ds, "PatientPosition"):
        position, assumed = acrvalues.patient_position(str(ds.PatientPosition), conv.head_first)
        if position is None:
            conv.notes.append("Patient Position not a DICOM term: dropped")
            del ds.PatientPosition
        else:
            put(ds, "PatientPosition", position)
            if assumed:
                conv.notes.append("Patient Position: head first assumed (the source gives only the posture)")


def _conditions(conv: Converted) -> None:
    """Drop attributes DICOM forbids in the situation at hand (type 1C/2C conditions).

    Pixel Aspect Ratio is implied by Pixel Spacing when the Image Plane module is there;
    Inversion Time belongs only to inversion-recovery scans; CT and MR Image Type need a
    third value (the IODs' defaults, as normalisation would choose).
    """
    ds = conv.dataset
    image_type = value_of(ds, "ImageType")
    if image_type and value_of(ds, "Modality") in _IMAGE_TYPE_3:
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        if len(values) == 2:  # CT and MR images need a third value (pre-DICOM files had two)
            put(ds, "ImageType", values + [_IMAGE_TYPE_3[ds.Modality]])
    if "PixelAspectRatio" in ds and "PixelSpacing" in ds:
        del ds.PixelAspectRatio
    if value_of(ds, "Modality") == "MR" and "InversionTime" in ds:
        sequence = value_of(ds, "ScanningSequence") or []
        sequence = [sequence] if isinstance(sequence, str) else list(sequence)
        if "IR" not in sequence:
            del ds.InversionTime
            conv.notes.append("Inversion Time dropped: the scanning sequence is not inversion recovery")


def _slice_location(conv: Converted) -> None:
    ds = conv.dataset
    location = conv.retired.get(_LOCATION)
    if "SliceLocation" not in ds and location:
        value = acrvalues.ds(str(location[0]))
        if value is not None:
            put(ds, "SliceLocation", value)


def _geometry(conv: Converted) -> None:
    ds = conv.dataset
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        try:
            iop = acrgeometry.check_orientation([float(v) for v in ds.ImageOrientationPatient])
            if len(ds.ImagePositionPatient) != 3:
                raise ValueError("position needs 3 values")
        except (ValueError, TypeError) as exc:
            conv.notes.append(f"Image Position/Orientation (Patient) unusable ({exc}): dropped")
            del ds.ImagePositionPatient, ds.ImageOrientationPatient
        else:
            _check_labels(conv, iop)
            return
    for key in ("ImagePositionPatient", "ImageOrientationPatient"):
        if key in ds:
            del ds[key]
    geometry = _retired_geometry(conv) or _label_geometry(conv)
    if geometry is None:
        if value_of(ds, "Modality") in ("CT", "MR"):
            conv.notes.append("no image geometry in the source: written as Secondary Capture")
        put(ds, "SOPClassUID", SECONDARY_CAPTURE_STORAGE)
        return
    put_plane(ds, *geometry)
    _check_labels(conv, geometry[1])


def _retired_geometry(conv: Converted) -> acrgeometry.Geometry | None:
    position, orientation = conv.retired.get(_IMAGE_POSITION), conv.retired.get(_IMAGE_ORIENTATION)
    if not position or not orientation:
        return None
    try:
        pos = [float(acrvalues.number(str(v))) for v in position]
        ori = [float(acrvalues.number(str(v))) for v in orientation]
        if len(pos) != 3:
            raise ValueError("Image Position needs 3 values")
        patient_position = str(value_of(conv.dataset, "PatientPosition") or "HFS")
        geometry = acrgeometry.from_retired(pos, ori, patient_position)
    except (TypeError, ValueError) as exc:
        conv.notes.append(f"retired Image Position/Orientation unusable: {exc}")
        return None
    if patient_position != "HFS":
        conv.notes.append(f"geometry converted from gantry coordinates for {patient_position} by antodc's rule "
                          "(verified only for HFS)")
    return geometry


def _label_geometry(conv: Converted) -> acrgeometry.Geometry | None:
    ds = conv.dataset
    labels = value_of(ds, "PatientOrientation")
    location = value_of(ds, "SliceLocation")
    if not labels or location is None:
        return None
    try:
        geometry = acrgeometry.from_labels([str(x) for x in labels], float(location))
    except (TypeError, ValueError):
        return None
    conv.notes.append("geometry approximated from Patient Orientation and Slice Location (in-plane origin unknown)")
    return geometry


def _check_labels(conv: Converted, iop: list[float]) -> None:
    labels = value_of(conv.dataset, "PatientOrientation")
    if labels and len(labels) == 2:
        expected = patient_orientation(iop)
        if [str(x)[:1] for x in labels] != [x[:1] for x in expected]:
            conv.notes.append(f"Patient Orientation {list(labels)} disagrees with the image orientation ({expected})")


def _number(value) -> int:
    try:
        return int(str(value).strip() or 0)
    except ValueError:
        return 0


def _leading_number(value) -> int:
    m = re.match(r"\s*0*(\d+)", str(value or ""))
    return int(m.group(1)) if m else 0


def identity(ds: Dataset, fmt: str) -> dict[str, tuple[str, ...]]:
    """The vendor identity of study, series and image, from which UIDs are derived.

    Equipment (manufacturer, model, serial number, station) and patient keep studies of
    different scanners and patients apart; dates, times and numbers separate the rest.
    """

    def get(*keywords: str) -> tuple[str, ...]:
        return tuple(str(value_of(ds, k) or "") for k in keywords)

    study = (fmt,) + get(
        "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "StationName", "InstitutionName",
        "PatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime", "StudyID",
    )
    series = study + get("Modality", "SeriesNumber", "SeriesDate", "SeriesTime")
    instance = series + get(
        "AcquisitionNumber", "InstanceNumber", "AcquisitionDate", "AcquisitionTime", "ContentDate", "ContentTime",
        "ImagePositionPatient", "SliceLocation",
    )
    return {"study": study, "series": series, "instance": instance, "frame_of_reference": series}

