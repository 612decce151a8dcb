"""The NM Image IOD for Interfile's nuclear medicine studies: image type, frame vectors, NM modules.

Interfile 3.3 names its study kind in ``type of data`` (Static, Dynamic, Gated, Tomographic)
and, for tomographic data, whether it is acquired projections or reconstructed slices
(``process status``). Each maps to the NM Image Type (value 3) and the Frame Increment Pointer
that PS3.3 C.8.4.8.1 prescribes for it; the vectors say, frame by frame, which energy window,
detector, phase, R-R interval, time slot, rotation, view or slice the frame is. Frames are
in the data file's order: 3.3 stores images one after another in the order its sections list
them (energy windows, then frame groups or time windows or projections).
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.dicom import values
from gateway.formats.engine.fieldtable import put, set_value, tag_and_vr
from gateway.formats.interfile.header import Header
from gateway.formats.interfile.layout import Layout

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"

# Frame Increment Pointer per NM image type (PS3.3 C.8.4.8.1.1).
_POINTERS = {
    "STATIC": ("EnergyWindowVector", "DetectorVector"),
    "DYNAMIC": ("EnergyWindowVector", "DetectorVector", "PhaseVector", "TimeSliceVector"),
    "GATED": ("EnergyWindowVector", "DetectorVector", "RRIntervalVector", "TimeSlotVector"),
    "TOMO": ("EnergyWindowVector", "DetectorVector", "RotationVector", "AngularViewVector"),
    "RECON TOMO": ("SliceVector",),
}


def kind(header: Header) -> str | None:
    """The NM image type of the header's ``type of data`` (None: not an NM image kind)."""
    data = header.text("type of data").strip().upper()
    if data == "TOMOGRAPHIC":
        return "RECON TOMO" if header.text("process status").strip().upper() == "RECONSTRUCTED" else "TOMO"
    return data if data in ("STATIC", "DYNAMIC", "GATED") else None


def frames_hint(header: Header, nm_kind: str | None) -> tuple[int, str] | None:
    """How many images a header with only two matrix sizes holds, and the key that says so
    (3.3 counts them per study kind)."""
    total = header.integer("total number of images")
    if total is not None:
        return total, "total number of images"
    if nm_kind in ("DYNAMIC", "GATED"):
        key = "number of images this frame group" if nm_kind == "DYNAMIC" else "number of images in window"
        counts = [_int(e.value) for e in header.every(key)]
        return (sum(counts), key) if counts and all(c is not None for c in counts) else None  # type: ignore[arg-type]
    for kind_, key in (("TOMO", "number of projections"), ("RECON TOMO", "number of slices")):
        if nm_kind == kind_:
            n = header.integer(key)
            return (n, key) if n is not None else None
    if nm_kind == "STATIC":
        per = header.integer("number of images/energy window", "number of images")
        return (per * _windows(header), "number of images/energy window") if per is not None else None
    return None


def apply(ds: Dataset, header: Header, lay: Layout, nm_kind: str, notes: list[str]) -> None:
    """Make ``ds`` an NM Image instance of ``nm_kind`` (SOP class, NM modules, frame vectors)."""
    n = lay.frames
    put(ds, "SOPClassUID", NM_IMAGE_STORAGE)
    put(ds, "ImageType", ["ORIGINAL", "PRIMARY", nm_kind, "EMISSION"])
    windows = _windows(header)
    if n % windows:
        notes.append(f"{n} frames do not divide into {windows} energy windows: one window assumed")
        windows = 1
    vectors: dict[str, list[int]] = {
        "EnergyWindowVector": [f * windows // n + 1 for f in range(n)],
        "DetectorVector": [1] * n,
    }
    counts = {"NumberOfEnergyWindows": windows, "NumberOfDetectors": 1}
    per_window = n // windows
    if nm_kind == "DYNAMIC":
        groups = _group_sizes(header, "number of images this frame group", per_window)
        vectors["PhaseVector"] = _repeat(windows, [g + 1 for g, size in enumerate(groups) for _ in range(size)])
        vectors["TimeSliceVector"] = _repeat(windows, [i + 1 for size in groups for i in range(size)])
        counts["NumberOfPhases"] = len(groups)
        _phases(ds, header, groups)
    elif nm_kind == "GATED":
        groups = _group_sizes(header, "number of images in window", per_window)
        vectors["RRIntervalVector"] = _repeat(windows, [g + 1 for g, size in enumerate(groups) for _ in range(size)])
        vectors["TimeSlotVector"] = _repeat(windows, [i + 1 for size in groups for i in range(size)])
        counts["NumberOfRRIntervals"] = len(groups)
        counts["NumberOfTimeSlots"] = max(groups)
    elif nm_kind == "TOMO":
        vectors["RotationVector"] = [1] * n
        vectors["AngularViewVector"] = _repeat(windows, list(range(1, per_window + 1)))
        counts["NumberOfRotations"] = 1
        _rotation(ds, header, per_window)
    elif nm_kind == "RECON TOMO":
        vectors = {"SliceVector": list(range(1, n + 1))}
        counts = {"NumberOfSlices": n, "NumberOfRotations": 1}
        put(ds, "RotationInformationSequence", Sequence())  # type 2: the acquisition is not described
        _reconstruction(ds, header)
    for keyword, vector in vectors.items():
        put(ds, keyword, vector)
    for keyword, count in counts.items():
        put(ds, keyword, count)
    put(ds, "FrameIncrementPointer", [tag_and_vr(k)[0] for k in _POINTERS[nm_kind]])
    put(ds, "NumberOfEnergyWindows", windows)  # type 1 in the NM Multi-frame module, whatever the kind
    put(ds, "NumberOfDetectors", 1)
    _energy_windows(ds, header, windows)
    for keyword in ("RadiopharmaceuticalInformationSequence", "DetectorInformationSequence",
                    "PatientOrientationCodeSequence", "PatientGantryRelationshipCodeSequence",
                    "AcquisitionContextSequence"):
        put(ds, keyword, Sequence())
    put(ds, "CountsAccumulated", None)
    if nm_kind == "STATIC":  # type 1C for static images; 0 where the header states no duration
        duration = _ms(header.number("image duration (sec)"))
        if duration is None:
            notes.append("image duration (sec) not given: Actual Frame Duration 0")
        put(ds, "ActualFrameDuration", duration or 0)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _windows(header: Header) -> int:
    n = header.integer("number of energy windows")
    return n if n is not None and n > 0 else 1


def _repeat(times: int, vector: list[int]) -> list[int]:
    return vector * times


def _group_sizes(header: Header, key: str, frames: int) -> list[int]:
    """Images per frame group (or time window) as the header lists them; one group when they do
    not add up to the frames there are."""
    sizes = [_int(e.value) for e in header.every(key)]
    if sizes and all(s is not None and s > 0 for s in sizes) and sum(sizes) == frames:
        return sizes  # type: ignore[return-value]
    return [frames]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def _phases(ds: Dataset, header: Header, groups: list[int]) -> None:
    durations = [values.number(e.value) for e in header.every("image duration (sec)")]
    items = []
    for g, size in enumerate(groups):
        item = Dataset()
        put(item, "PhaseDelay", 0)
        put(item, "ActualFrameDuration", _ms(durations[g]) if g < len(durations) and durations[g] is not None else 0)
        put(item, "PauseBetweenFrames", 0)
        put(item, "NumberOfFramesInPhase", size)
        items.append(item)
    put(ds, "PhaseInformationSequence", Sequence(items))


def _rotation(ds: Dataset, header: Header, views: int) -> None:
    item = Dataset()
    arc = header.number("extent of rotation")
    start = header.number("start angle")
    put(item, "StartAngle", values.decimal_string(start if start is not None else 0.0))
    if arc is not None and views:
        put(item, "AngularStep", values.decimal_string(arc / views))
        put(item, "ScanArc", values.decimal_string(arc))
    else:
        put(item, "AngularStep", None)
        put(item, "ScanArc", None)
    direction = {"CW": "CW", "CCW": "CC", "CC": "CC"}.get(header.text("direction of rotation").strip().upper())
    put(item, "RotationDirection", direction)
    put(item, "ActualFrameDuration", _ms(header.number("time per projection (sec)")) or 0)
    put(item, "NumberOfFramesInRotation", views)
    put(item, "TableTraverse", None)
    radius = header.number("radius")
    put(item, "RadialPosition", [values.decimal_string(radius)] if radius is not None else None)
    put(ds, "RotationInformationSequence", Sequence([item]))


def _reconstruction(ds: Dataset, header: Header) -> None:
    size = header.number("scaling factor (mm/pixel)", index=3)
    thickness = header.number("slice thickness (pixels)")
    pixel = header.number("scaling factor (mm/pixel)", index=1)
    separation = header.number("centre-centre slice separation (pixels)")
    if size is None and separation is not None and pixel is not None:
        size = separation * pixel
    put(ds, "SpacingBetweenSlices", values.decimal_string(size) if size else None)
    if thickness is not None and pixel is not None:
        put(ds, "SliceThickness", values.decimal_string(thickness * pixel))
    else:
        put(ds, "SliceThickness", values.decimal_string(size) if size else None)


def _energy_windows(ds: Dataset, header: Header, windows: int) -> None:
    """One Energy Window Information item per window, with its range where the header gives it."""
    items = []
    for w in range(1, windows + 1):
        item = Dataset()
        lower = header.number("energy window lower level", index=w)
        upper = header.number("energy window upper level", index=w)
        if lower is not None and upper is not None:
            window = Dataset()
            put(window, "EnergyWindowLowerLimit", values.decimal_string(lower))
            put(window, "EnergyWindowUpperLimit", values.decimal_string(upper))
            put(item, "EnergyWindowRangeSequence", Sequence([window]))
        set_value(item, "EnergyWindowName", header.text("energy window", index=w))
        items.append(item)
    put(ds, "EnergyWindowInformationSequence", Sequence(items))
