"""The Image Plane rules every decoder shares: Patient Orientation letters and the attributes
of a plane already in DICOM patient coordinates (LPS).

How a format finds its plane (GE's R/A/S corners, Siemens' +L+A+F centre and vectors,
ACR-NEMA's gantry-relative elements) stays in its own package; from an LPS position and
direction cosines on, there is one way to write them.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.dicom.values import decimal_string
from gateway.formats.engine.fieldtable import Elements, put

# A direction component counts when its cosine exceeds this (0.0057 degrees of tilt). Pre-DICOM
# headers carry directions to about 1e-6 (32-bit float corners, 7-digit decimal texts), so
# anything above 1e-4 is a real tilt, not rounding; a scanner prescribes obliquity in steps of
# 0.1 degree or more (cos 89.9 degrees = 1.7e-3), far above it. It is also the threshold of the
# orientation-letter routine published with the DICOM FAQ (getOrientation) that viewers follow.
OBLIQUE_COSINE = 1e-4

# Letter of the positive and the negative direction of each LPS axis (PS3.3 C.7.6.1.1.1).
_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))


def letter_direction(letter: str) -> tuple[float, float, float] | None:
    """The LPS unit vector a single letter names (``R`` -> (-1, 0, 0)), None for another text."""
    for axis, pair in enumerate(_LETTERS):
        if letter in pair:
            v = [0.0, 0.0, 0.0]
            v[axis] = 1.0 if letter == pair[0] else -1.0
            return (v[0], v[1], v[2])
    return None


def opposite(letter: str) -> str:
    """The letter of the opposite direction (``A`` -> ``P``)."""
    for pair in _LETTERS:
        if letter in pair:
            return pair[1] if letter == pair[0] else pair[0]
    raise ValueError(f"{letter!r} is not an anatomical direction letter")


def direction_letters(v: Sequence[float]) -> str:
    """The anatomical letters of one direction (PS3.3 C.7.6.1.1.1): the principal axis first,
    then up to two refinements for an oblique direction, each component above
    ``OBLIQUE_COSINE``, strongest first (a row running mostly left, a little posterior: ``LP``)."""
    order = sorted(range(3), key=lambda i: -abs(v[i]))
    return "".join(_LETTERS[i][0 if v[i] > 0 else 1] for i in order if abs(v[i]) > OBLIQUE_COSINE)


def patient_orientation(orientation: Sequence[float]) -> list[str]:
    """Patient Orientation (0020,0020) from Image Orientation (Patient): the letters of the
    row direction, then of the column direction."""
    return [direction_letters(orientation[:3]), direction_letters(orientation[3:6])]


def put_plane(ds: Elements, position: Sequence[float], orientation: Sequence[float],
              pixel_spacing: Sequence[float] | None = None, *, labels: bool = False) -> None:
    """Image Position (Patient), Image Orientation (Patient) and, when given, Pixel Spacing
    (row spacing, column spacing) as DS; with ``labels`` also Patient Orientation.

    Positions are written to 1e-6 mm and cosines to 1e-8: far below what any source
    measures, and the same text for the same plane whichever format it came from (the text of
    the position is part of some formats' instance identity).
    """
    put(ds, "ImagePositionPatient", [decimal_string(round(v, 6)) for v in position])
    put(ds, "ImageOrientationPatient", [decimal_string(round(v, 8)) for v in orientation])
    if pixel_spacing is not None:
        put(ds, "PixelSpacing", [decimal_string(v) for v in pixel_spacing])
    if labels:
        put(ds, "PatientOrientation", patient_orientation(orientation))
