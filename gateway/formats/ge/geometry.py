"""Image plane geometry from a scanner's corner points (GE R/A/S) to DICOM patient LPS.

GE scanners store three corners of the image in patient R/A/S millimetres (+R right,
+A anterior, +S superior): Genesis stores top-left, top-right and bottom-right (TLHC, TRHC,
BRHC), Signa 4.x top-left, top-right and bottom-left (TLHC, TRHC, BLHC). DICOM wants L/P/S
(L = -R, P = -A), the direction cosines of a row and a column, and the position of the
*centre* of the first pixel.

Edge or centre? If the corners were pixel centres, |TRHC - TLHC| would be (cols - 1) pixel
widths; if they are the outer edges of the image it is cols pixel widths. Real Genesis files
measure 239.988 and 240.000 mm for 256 x 0.9375 mm = 240.0 (edges), not 239.06 (centres),
and their stored centre is the corners' midpoint (ge-genesis.md 8). So we measure every file:
with edge corners the first pixel's centre lies half a pixel inside TLHC along the row and
along the column direction. dicom3tools, ITK and VTK all put IPP at TLHC itself (half a
pixel off); the decision and the measured distances are returned so the decoder can note it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.dicom import geometry as dicom_geometry
from gateway.dicom.vectors import Vector, add, cross, dot, norm, scale, sub
from gateway.errors import DecodeError
from gateway.formats.engine.fieldtable import Elements

# A plane whose row and column directions are further from perpendicular than this is not
# an image plane but a damaged header (cos 89.4 degrees); below it, DG float rounding of the
# corners (about 4e-4 mm at 150 mm) is absorbed by re-orthogonalising.
_MAX_COS = 0.01
_MIN_EXTENT_MM = 1e-3


@dataclass(frozen=True)
class Plane:
    """DICOM image plane: IPP (first pixel centre), IOP (row, column cosines), corner kind."""

    position: Vector
    row: Vector
    column: Vector
    corners_are_edges: bool
    row_extent_mm: float
    column_extent_mm: float

    @property
    def orientation(self) -> list[float]:
        return [*self.row, *self.column]

    @property
    def normal(self) -> Vector:
        return cross(self.row, self.column)


def ras_to_lps(p: Vector) -> Vector:
    """GE patient R/A/S millimetres to DICOM L/P/S."""
    return (-p[0], -p[1], p[2])


def plane_from_corners(
    tlhc: Vector,
    trhc: Vector,
    third: Vector,
    third_is: str,
    rows: int,
    cols: int,
    row_spacing: float,
    column_spacing: float,
    field: str = "corners",
    offset: int | None = None,
) -> Plane:
    """The DICOM plane from three R/A/S corners.

    ``third`` is BRHC (``third_is="brhc"``, Genesis) or BLHC (``"blhc"``, Signa 4.x).
    ``row_spacing`` is the distance between rows (pixel height, DICOM PixelSpacing[0]),
    ``column_spacing`` between columns (pixel width). Degenerate or non-perpendicular corners
    raise ``DecodeError`` naming ``field`` and ``offset``: no geometry is better than a wrong one.
    """
    values = [*tlhc, *trhc, *third]
    if any(v is None or not math.isfinite(v) for v in values):
        raise DecodeError("corner coordinates missing or not finite", field=field, offset=offset)
    tl, tr, th = ras_to_lps(tlhc), ras_to_lps(trhc), ras_to_lps(third)
    along_row = sub(tr, tl)
    along_col = sub(th, tr) if third_is == "brhc" else sub(th, tl)
    row_len, col_len = norm(along_row), norm(along_col)
    if row_len < _MIN_EXTENT_MM or col_len < _MIN_EXTENT_MM:
        raise DecodeError("corner points coincide: no image plane", field=field, offset=offset)
    row = scale(along_row, 1 / row_len)
    col = scale(along_col, 1 / col_len)
    cos = dot(row, col)
    if abs(cos) > _MAX_COS:
        raise DecodeError(f"corner points do not span a rectangle (cos {cos:.4f})", field=field, offset=offset)
    col = sub(col, scale(row, cos))  # Gram-Schmidt: remove the rounding residue
    col = scale(col, 1 / norm(col))
    edges = _edges(row_len, cols, column_spacing) and _edges(col_len, rows, row_spacing)
    position = tl
    if edges:
        position = add(add(position, scale(row, column_spacing / 2)), scale(col, row_spacing / 2))
    return Plane(position, _clean(row), _clean(col), edges, row_len, col_len)


def _edges(extent: float, count: int, spacing: float) -> bool:
    """True when ``extent`` is nearer count x spacing (edges) than (count - 1) x spacing."""
    if count < 2 or spacing <= 0:
        return True
    return abs(extent - count * spacing) <= abs(extent - (count - 1) * spacing)


def _clean(v: Vector) -> Vector:
    """Round away float noise (1e-17 instead of 0) so IOP reads as the scanner meant it."""
    return tuple(0.0 if abs(x) < 1e-9 else round(x, 9) for x in v)  # type: ignore[return-value]


def put_plane(ds: Elements, plane: "Plane", row_spacing: float, column_spacing: float) -> None:
    """The Image Plane attributes (and Patient Orientation) of a plane found from corners."""
    dicom_geometry.put_plane(ds, plane.position, plane.orientation, (row_spacing, column_spacing), labels=True)
