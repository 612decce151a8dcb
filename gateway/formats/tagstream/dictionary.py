"""The data dictionary of ACR-NEMA and SPI streams: pydicom's dictionary plus our additions.

Implicit-VR streams carry no types, so every value is typed from here. Standard tags come
from pydicom's dictionary (which keeps the retired ACR-NEMA elements); the tables below add
what it lacks or types differently, taken from acr-nema.md 6 and siemens-spi.md 1-3.
Private elements are looked up by (group, private creator, low byte of the element), never
by the full tag (siemens-spi.md 2.1): first in our table, then in pydicom's private
dictionaries. VRs of our private table are dicom3tools' (the dictionary dciodvfy checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType


@dataclass(frozen=True)
class Entry:
    vr: str
    vm: str
    name: str
    retired: bool = False
    target: str = ""  # DICOM keyword the value fills when the standard attribute is absent


# Standard-group elements of ACR-NEMA/SPI messages that pydicom's dictionary lacks.
# (tag, VR, VM, name) — SPI command group 0001 from the MNI Gyroscan SPI definitions.
_STANDARD_ADDITIONS: list[tuple[int, str, str, str]] = [
    (0x00010010, "LO", "1", "SPI Recognition Code"),
    (0x00010018, "US", "1", "SPI Command"),
    (0x00010019, "UL", "1", "SPI Status"),
    (0x00010040, "US", "1", "SPI Data Set Type"),
]

# Retired elements that have a DICOM successor (acr-nema.md 6, "map→"). The geometry pair
# (0020,0030)/(0020,0035) is converted by rule (acrgeometry), the others copied.
RETIRED_SUCCESSORS: dict[int, str] = {
    0x00200030: "ImagePositionPatient",
    0x00200035: "ImageOrientationPatient",
    0x00200050: "SliceLocation",
}

# Private elements: (creator, group, element low byte, VR, VM, name, DICOM target).
# A target is filled from the private value only when the DICOM attribute is absent.
_SPI = ("SPI", "SPI RELEASE 1", "SPI Release 1")
_PRIVATE: list[tuple[str | tuple[str, ...], int, int, str, str, str, str]] = [
    # siemens-spi.md 3.1 — SPI generic
    (_SPI, 0x0009, 0x10, "LO", "1", "Comments", ""),
    (_SPI, 0x0009, 0x15, "LO", "1", "SPI Image UID", ""),
    (_SPI, 0x0009, 0x40, "US", "1", "Data Object Type", ""),
    (_SPI, 0x0009, 0x41, "SH", "1", "Data Object Subtype", ""),
    (_SPI, 0x0011, 0x10, "LO", "1", "Organ", ""),
    (_SPI, 0x0011, 0x15, "LO", "1", "Allergy Indication", ""),
    (_SPI, 0x0011, 0x20, "LO", "1", "Pregnancy", ""),
    (_SPI, 0x0029, 0x60, "LO", "1", "Compression Algorithm", ""),
    # 3.2 — Siemens common
    ("SIEMENS CM VA0  CMS", 0x0009, 0x00, "DS", "1", "Number of Measurements", ""),
    ("SIEMENS CM VA0  CMS", 0x0009, 0x10, "CS", "1", "Storage Mode", ""),
    ("SIEMENS CM VA0  CMS", 0x0009, 0x12, "UL", "1", "Evaluation Mask Image", ""),
    ("SIEMENS CM VA0  CMS", 0x0009, 0x26, "DA", "1", "Last Move Date", ""),
    ("SIEMENS CM VA0  CMS", 0x0009, 0x27, "TM", "1", "Last Move Time", ""),
    ("SIEMENS CM VA0  CMS", 0x0011, 0x10, "DA", "1", "Registration Date", ""),
    ("SIEMENS CM VA0  CMS", 0x0011, 0x11, "TM", "1", "Registration Time", ""),
    ("SIEMENS CM VA0  CMS", 0x0011, 0x23, "DS", "1", "Used Patient Weight", "PatientWeight"),
    ("SIEMENS CM VA0  CMS", 0x0011, 0x40, "IS", "1", "Organ Code", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x00, "PN", "1", "Modifying Physician", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x10, "DA", "1", "Modification Date", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x12, "TM", "1", "Modification Time", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x20, "PN", "1", "Patient Name (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x22, "LO", "1", "Patient ID (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x30, "DA", "1", "Patient Birth Date (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x31, "DS", "1", "Patient Weight (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x32, "LO", "1", "Patient Maiden Name", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x33, "LO", "1", "Referring Physician", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x34, "LO", "1", "Admitting Diagnosis", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x35, "LO", "1", "Patient Sex (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x40, "LO", "1", "Procedure Description", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x42, "LO", "1", "Patient Rest Direction (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x44, "LO", "1", "Patient Position (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0013, 0x46, "LO", "1", "View Direction (modified image)", ""),
    ("SIEMENS CM VA0  CMS", 0x0019, 0x10, "IS", "1", "Net Frequency", ""),
    ("SIEMENS CM VA0  CMS", 0x0019, 0x20, "CS", "1", "Measurement Mode", ""),
    ("SIEMENS CM VA0  CMS", 0x0019, 0x30, "CS", "1", "Calculation Mode", ""),
    ("SIEMENS CM VA0  CMS", 0x0019, 0x50, "IS", "1", "Noise Level", ""),
    ("SIEMENS CM VA0  CMS", 0x0019, 0x60, "IS", "1", "Number of Data Bytes", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x20, "DS", "2", "Field of View", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x22, "DS", "1", "Image Magnification Factor", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x24, "DS", "2", "Image Scroll Offset", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x26, "IS", "1", "Image Pixel Offset", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x30, "CS", "1", "View Direction", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x32, "CS", "1", "Patient Rest Direction", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x60, "DS", "3", "Image Position (centre, +L+A+F)", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x61, "DS", "3", "Image Normal", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x63, "DS", "1", "Image Distance", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x65, "US", "1", "Image Positioning History Mask", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x6A, "DS", "3", "Image Row", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x6B, "DS", "3", "Image Column", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x70, "CS", "3", "Patient Orientation Set 1", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x71, "CS", "3", "Patient Orientation Set 2", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x80, "LO", "1", "Study Name", ""),
    ("SIEMENS CM VA0  CMS", 0x0021, 0x82, "SH", "3", "Study Type", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x10, "CS", "1", "Window Style", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x20, "CS", "3", "Pixel Quality Code", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x22, "IS", "3", "Pixel Quality Value", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x50, "CS", "1", "Archive Code", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x51, "CS", "1", "Exposure Code", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x52, "IS", "1", "Sort Code", ""),
    ("SIEMENS CM VA0  CMS", 0x0029, 0x60, "LO", "1", "Splash", ""),
    ("SIEMENS CM VA0  CMS", 0x0051, 0x10, "LO", "1-n", "Image Text", ""),
    ("SIEMENS CM VA0  CMS", 0x6021, 0x00, "LO", "1", "Image Graphics Format Code", ""),
    ("SIEMENS CM VA0  CMS", 0x6021, 0x10, "LO", "1", "Image Graphics", ""),
    ("SIEMENS CM VA0  CMS", 0x7FE1, 0x00, "OB", "1", "Binary Data", ""),
    # 3.3 — Siemens MR
    ("SIEMENS MR VA0  GEN", 0x0019, 0x10, "DS", "1", "Total Measurement Time Nominal", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x11, "DS", "1", "Total Measurement Time Current", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x12, "DS", "1", "Start Delay Time", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x13, "DS", "1", "Dwell Time", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x14, "IS", "1", "Number of Phases", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x20, "IS", "1", "Number of Fourier Lines Nominal", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x21, "IS", "1", "Number of Fourier Lines Current", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x26, "IS", "1", "Number of Fourier Lines After Zero", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x28, "IS", "1", "First Measured Fourier Line", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x30, "IS", "1", "Acquisition Columns", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x31, "IS", "1", "Reconstruction Columns", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x44, "DS", "1-n", "Array Coil Element Noise Level", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x50, "IS", "1", "Number of Averages Current", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x60, "DS", "1", "Flip Angle", "FlipAngle"),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x70, "IS", "1", "Number of Prescans", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x90, "IS", "1", "Number of Saturation Regions", ""),
    ("SIEMENS MR VA0  GEN", 0x0019, 0x94, "DS", "1", "Image Rotation Angle", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x30, "IS", "1", "Number of 3D Raw Partitions Nominal", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x31, "IS", "1", "Number of 3D Raw Partitions Current", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x34, "IS", "1", "Number of 3D Image Partitions", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x36, "IS", "1", "Actual 3D Image Partition Number", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x39, "DS", "1", "Slab Thickness", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x40, "IS", "1", "Number of Slices Nominal", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x41, "IS", "1", "Number of Slices Current", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x42, "IS", "1", "Current Slice Number", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x43, "IS", "1", "Current Group Number", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x4F, "CS", "1", "Order of Slices", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x56, "DS", "1", "Repetition Time Effective", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x70, "IS", "1", "Number of Echoes", "EchoTrainLength"),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x72, "DS", "1", "Second Echo Time", ""),
    ("SIEMENS MR VA0  GEN", 0x0021, 0x73, "DS", "1", "Second Repetition Time", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x12, "DS", "1", "Magnetic Field Strength", "MagneticFieldStrength"),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x14, "DS", "1", "ADC Voltage", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x16, "DS", "2", "ADC Offset", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x50, "DS", "1", "Receiver Total Gain", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x51, "DS", "1", "Receiver Amplifier Gain", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x52, "DS", "1", "Receiver Preamplifier Gain", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x54, "DS", "1", "Receiver Cable Attenuation", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x55, "DS", "1", "Receiver Reference Gain", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x56, "DS", "1", "Receiver Filter Frequency", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x60, "DS", "1", "Reconstruction Scale Factor", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0x62, "DS", "1", "Reference Scale Factor", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0xA5, "DS", "3", "SAR Whole Body", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0xA6, "DS", "3", "Specific Energy Dose", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0xD3, "DS", "1", "Field of View Ratio", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0xD4, "IS", "1", "Base Raw Matrix Size", ""),
    ("SIEMENS MR VA0  COAD", 0x0019, 0xDA, "CS", "1", "Phase Coding Direction", ""),
    ("SIEMENS MR VA0  RAW", 0x0021, 0x50, "LO", "1", "Saturation Type", ""),
    # 3.4 — Siemens CT
    ("SIEMENS CT VA0  GEN", 0x0019, 0x10, "DS", "1", "Source Side Collimator Aperture", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x11, "DS", "1", "Detector Side Collimator Aperture", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x20, "IS", "1", "Exposure Time", "ExposureTime"),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x21, "IS", "1", "Exposure Current", "XRayTubeCurrent"),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x25, "DS", "1", "KVP Generator Power Current", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x26, "DS", "1", "Generator Voltage", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x40, "UL", "1", "Master Control Mask", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x42, "US", "5", "Processing Mask", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x70, "IS", "1", "Number of Readings", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x74, "IS", "1", "Number of Projections", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x75, "IS", "1", "Number of Bytes", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x80, "LO", "1", "Reconstruction Algorithm Set", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x81, "LO", "1", "Reconstruction Algorithm Index", ""),
    ("SIEMENS CT VA0  GEN", 0x0019, 0x82, "LO", "1", "Regeneration Software Version", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x10, "IS", "1", "Rotation Angle", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x11, "IS", "1", "Start Angle", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x30, "IS", "1", "Topogram Tube Position", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x32, "DS", "1", "Length of Topogram", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x34, "DS", "1", "Topogram Correction Factor", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x36, "DS", "1", "Maximum Table Position", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x40, "IS", "1", "Table Move Direction Code", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x70, "DS", "3", "Object Orientation", ""),
    ("SIEMENS CT VA0  GEN", 0x0021, 0x72, "DS", "3", "Light Orientation", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x10, "IS", "1", "Distance Source to Source Side Collimator", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x11, "IS", "1", "Distance Source to Detector Side Collimator", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x22, "DS", "1", "Detector Spacing", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x23, "DS", "1", "Detector Center", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x70, "DS", "1", "Water Scaling Factor", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x71, "DS", "1", "Interpolation Factor", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x80, "CS", "1", "Patient Region", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0x82, "CS", "1", "Patient Phase of Life", ""),
    ("SIEMENS CT VA0  COAD", 0x0019, 0xB0, "DS", "1", "Feed per Rotation", "TableFeedPerRotation"),
    # 2.2 — creators found in the Vision sample, names from DCMTK's private dictionary
    ("SIEMENS MED", 0x0021, 0x10, "DS", "1", "Zoom", ""),
    ("SIEMENS MED", 0x0021, 0x11, "DS", "2", "Target", ""),
    ("SIEMENS MED", 0x0021, 0x20, "US", "1", "ROI Mask", ""),
    ("SIEMENS MED DISPLAY", 0x0029, 0x04, "CS", "1", "Photometric Interpretation", ""),
    ("SIEMENS MED DISPLAY", 0x0029, 0x10, "US", "1", "Rows of Submatrix", ""),
    ("SIEMENS MED DISPLAY", 0x0029, 0x11, "US", "1", "Columns of Submatrix", ""),
    ("SIEMENS MED DISPLAY", 0x0029, 0x50, "US", "2", "Origin of Submatrix", ""),
]


def _index_private() -> dict[tuple[str, int, int], Entry]:
    index: dict[tuple[str, int, int], Entry] = {}
    for creators, group, low, vr, vm, name, target in _PRIVATE:
        for creator in (creators,) if isinstance(creators, str) else creators:
            index[(creator, group, low)] = Entry(vr, vm, name, target=target)
    return index


PRIVATE: dict[tuple[str, int, int], Entry] = _index_private()
STANDARD_ADDITIONS: dict[int, Entry] = {tag: Entry(vr, vm, name) for tag, vr, vm, name in _STANDARD_ADDITIONS}

# Creators whose presence makes a stream SPI (siemens-spi.md 2.2, 4). "SIEMENS MED…"
# creators also occur in later DICOM files, so only the VA0 (SPI-era) ones count.
SPI_CREATORS = frozenset(_SPI)
SIEMENS_SPI_CREATORS = frozenset(c for c, *_ in _PRIVATE if isinstance(c, str) and " VA0 " in c)


@lru_cache(maxsize=None)
def _pydicom_datadict() -> ModuleType:
    """pydicom's dictionary, imported by the first look-up, not with this module: recognising a
    stream (``recognise``) needs only the creator tables above, and no pydicom."""
    import pydicom.datadict

    return pydicom.datadict


@lru_cache(maxsize=4096)
def standard_entry(tag: int) -> Entry | None:
    """The dictionary entry of a standard (even-group) tag, or None if no dictionary has it.

    pydicom's ``get_entry`` also resolves repeating groups (60xx overlays, 50xx curves).
    """
    if tag in STANDARD_ADDITIONS:
        return STANDARD_ADDITIONS[tag]
    if tag & 0xFFFF == 0:
        return Entry("UL", "1", "Group Length", retired=True)
    try:
        vr, vm, name, retired, _keyword = _pydicom_datadict().get_entry(tag)
    except KeyError:
        return None
    return Entry(vr, vm, name, retired=bool(retired))


@lru_cache(maxsize=4096)
def private_entry(creator: str, group: int, low: int) -> Entry | None:
    """The entry of private element ``low`` of ``creator``'s block in ``group``, if known."""
    entry = PRIVATE.get((creator, group, low))
    if entry is not None:
        return entry
    try:
        vr, vm, name, _retired = _pydicom_datadict().get_private_entry((group << 16) | 0x1000 | low, creator)
    except KeyError:
        return None
    return Entry(vr, vm, name)
