"""Image position and orientation in DICOM patient coordinates (LPS) from pre-DICOM sources.

Three sources, most trustworthy first (acr-nema.md §8.3, siemens-spi.md §6):

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

import numpy as np

Geometry = tuple[list[float], list[float]]  # (Image Position (Patient), Image Orientation (Patient))

_AXIS = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "H": (0, 0, 1), "F": (0, 0, -1)}


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError(f"{what} is not a direction")
    return v / norm


def check_orientation(iop: list[float]) -> list[float]:
    """Unit row and column vectors at right angles, or ValueError."""
    if len(iop) != 6:
        raise ValueError("orientation needs 6 values")
    row = _unit(np.array(iop[:3], dtype=float), "row vector")
    col = _unit(np.array(iop[3:], dtype=float), "column vector")
    if abs(float(row @ col)) > 1e-3:
        raise ValueError("row and column vectors are not perpendicular")
    return [*row.tolist(), *col.tolist()]


def from_siemens(centre: list[float], row: list[float], col: list[float], rows: int, cols: int, spacing: list[float]) -> Geometry:
    """First-pixel position and orientation (LPS) from Siemens' +L+A+F private geometry.

    ``spacing`` is DICOM Pixel Spacing (row spacing, column spacing): the first value is the
    step along the column vector, the second along the row vector.
    """
    r = _unit(np.array(row, dtype=float), "Siemens image row")
    c = _unit(np.array(col, dtype=float), "Siemens image column")
    centre_v = np.array(centre, dtype=float)
    first = centre_v - spacing[1] * (cols - 1) / 2 * r - spacing[0] * (rows - 1) / 2 * c
    flip = np.array([1.0, -1.0, -1.0])
    iop = check_orientation([*(r * flip).tolist(), *(c * flip).tolist()])
    return (first * flip).tolist(), iop


def from_retired(position: list[float], orientation: list[float], patient_position: str) -> Geometry:
    """ACR-NEMA gantry-relative Image Position/Orientation to patient LPS (antodc's rule)."""
    pos = np.array(position, dtype=float)
    row = np.array(orientation[:3], dtype=float)
    col = np.array(orientation[3:], dtype=float)
    if patient_position in ("HFP", "FFP"):
        for v in (pos, row, col):
            v[:2] = -v[:2]
    elif patient_position.endswith(("DR", "DL")):
        for v in (pos, row, col):
            v[0], v[1] = v[1], -v[0]
    if patient_position.startswith("FF"):
        for v in (pos, row, col):
            v[0], v[2] = -v[0], -v[2]
    return pos.tolist(), check_orientation([*row.tolist(), *col.tolist()])


def from_labels(patient_orientation: list[str], slice_location: float) -> Geometry:
    """Orthogonal plane from Patient Orientation letters; position along the normal only."""
    if len(patient_orientation) != 2 or any(len(x) != 1 or x not in _AXIS for x in patient_orientation):
        raise ValueError("Patient Orientation does not name an orthogonal plane")
    row = np.array(_AXIS[patient_orientation[0]], dtype=float)
    col = np.array(_AXIS[patient_orientation[1]], dtype=float)
    normal = np.cross(row, col)
    if not normal.any():
        raise ValueError("Patient Orientation names the same axis twice")
    return (normal * slice_location).tolist(), check_orientation([*row.tolist(), *col.tolist()])


def labels(iop: list[float]) -> list[str]:
    """The main-axis letters of the row and column directions (for Patient Orientation)."""
    out = []
    for v in (iop[:3], iop[3:]):
        axis = int(np.argmax(np.abs(v)))
        letter = "LPH"[axis] if v[axis] > 0 else "RAF"[axis]
        out.append(letter)
    return out
