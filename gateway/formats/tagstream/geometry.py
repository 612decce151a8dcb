"""Image position and orientation in DICOM patient coordinates (LPS) from pre-DICOM sources.

Three sources, most trustworthy first (acr-nema.md 8.3, siemens-spi.md 6):

* Siemens' private geometry (image centre, row, column; axes +Left, +Anterior, +Feet): the
  DICOM vector of a Siemens vector (x, y, z) is (x, −y, −z); the first pixel lies half the
  image minus half a pixel from the centre along row and column ((N−1)/2, MINC's rule, which
  reproduces the scanner's own retired Image Position).
* ACR-NEMA's retired Image Position/Orientation, gantry relative: identical to patient LPS
  for a head-first supine patient; antodc's rule adjusts other positions (prone: negate x and
  y; decubitus: swap x and y and negate the new y; feet first: negate x and z). Only the
  supine case is confirmed on real files; the others follow antodc and are noted as such.
* Orthogonal planes from Patient Orientation letters and Slice Location (antodc's last
  resort); approximate, since the in-plane origin is unknown.
"""

from __future__ import annotations

from gateway.dicom.geometry import letter_direction
from gateway.dicom.vectors import Vector, cross, dot, scale, sub, unit, vec

Geometry = tuple[list[float], list[float]]  # (Image Position (Patient), Image Orientation (Patient))



def check_orientation(iop: list[float]) -> list[float]:
    """Unit row and column vectors at right angles, or ValueError."""
    if len(iop) != 6:
        raise ValueError("orientation needs 6 values")
    row = unit(vec(iop[:3]), "row vector")
    col = unit(vec(iop[3:]), "column vector")
    if abs(dot(row, col)) > 1e-3:
        raise ValueError("row and column vectors are not perpendicular")
    return [*row, *col]


def _lps(v: Vector) -> Vector:
    """Siemens +L+A+F to DICOM +L+P+H."""
    return (v[0], -v[1], -v[2])


def from_siemens(centre: list[float], row: list[float], col: list[float], rows: int, cols: int,
                 spacing: list[float]) -> Geometry:
    """First-pixel position and orientation (LPS) from Siemens' +L+A+F private geometry.

    ``spacing`` is DICOM Pixel Spacing (row spacing, column spacing): the first value is the
    step along the column vector, the second along the row vector.
    """
    r = unit(vec(row), "Siemens image row")
    c = unit(vec(col), "Siemens image column")
    first = sub(sub(vec(centre), scale(r, spacing[1] * (cols - 1) / 2)), scale(c, spacing[0] * (rows - 1) / 2))
    iop = check_orientation([*_lps(r), *_lps(c)])
    return list(_lps(first)), iop


def from_retired(position: list[float], orientation: list[float], patient_position: str) -> Geometry:
    """ACR-NEMA gantry-relative Image Position/Orientation to patient LPS (antodc's rule)."""
    vectors = [list(vec(position)), list(vec(orientation[:3])), list(vec(orientation[3:]))]
    if patient_position in ("HFP", "FFP"):
        for v in vectors:
            v[0], v[1] = -v[0], -v[1]
    elif patient_position.endswith(("DR", "DL")):
        for v in vectors:
            v[0], v[1] = v[1], -v[0]
    if patient_position.startswith("FF"):
        for v in vectors:
            v[0], v[2] = -v[0], -v[2]
    pos, row, col = vectors
    return pos, check_orientation([*row, *col])


def from_labels(patient_orientation: list[str], slice_location: float) -> Geometry:
    """Orthogonal plane from Patient Orientation letters; position along the normal only."""
    axes = [letter_direction(x) if len(x) == 1 else None for x in patient_orientation]
    if len(axes) != 2 or None in axes:
        raise ValueError("Patient Orientation does not name an orthogonal plane")
    row, col = axes
    normal = cross(row, col)
    if not any(normal):
        raise ValueError("Patient Orientation names the same axis twice")
    return list(scale(normal, slice_location)), check_orientation([*row, *col])
