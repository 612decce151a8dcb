"""Simulated Siemens fixed-header files: Somatom Plus (VAX) and Magnetom Vision ``.IMA`` (SPARC).

``somatom-plus``: 4096-byte header (binary fields, VAX F reals, text header at 3072) and
little-endian 16-bit CT pixels; ``vision-ima``: 6144-byte big-endian header with IEEE
doubles and Siemens +L+A+F geometry, then big-endian 16-bit MR pixels. Every header field is
written through the decoders' own field tables (``somatom_plus.BINARY``/``TEXT``,
``vision_ima.HEADER``; siemens-spi.md 5.2, 7.3), so a table change moves both; values are
drawn from the seed. Text is blank-padded, as the old hand-written headers were.
"""

from __future__ import annotations

import random

from gateway.formats.siemens import somatom_plus, vision_ima
from gateway.formats.tagstream.simulate import phantom
from gateway.simulate import SimFile, SimOptions, register_format

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


def _scene(rng: random.Random, index: int, opts: SimOptions) -> tuple[dict, int]:
    """The study shared by a run's files (drawn anew at index 0) and the matrix size."""
    extra = opts.extra
    if index == 0:
        extra.pop("_study", None)
    return _study(rng, extra), int(extra.get("size", 64))


def _study(rng: random.Random, extra: dict) -> dict:
    if "_study" not in extra:
        extra["_study"] = {
            "date": (rng.randint(1988, 1996), rng.randint(1, 12), rng.randint(1, 28)),
            "time": (rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)),
            "patient": f"SIM^PATIENT{rng.randint(1, 999):03d}",
            "patient_id": f"SIM{rng.randint(100000, 999999)}",
        }
    return extra["_study"]


def write_somatom_plus(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    study, matrix = _scene(rng, index, opts)
    y, m, d = study["date"]
    hh, mi, ss = study["time"]
    date = f"{d:02d}-{_MONTHS[m - 1]}-{y:04d}"
    pixel_blocks = -(-matrix * matrix * 2 // 512)
    buf = bytearray(somatom_plus.HEADER_SIZE)
    somatom_plus.BINARY.write({
        "block_size": 512,
        "total_blocks": 8 + pixel_blocks,
        "header_blocks": 8,
        "pixel_block": 9,
        "pixel_blocks": pixel_blocks,
        "software_version": "VB20",
        "study_date": date,
        "study_time": f"{hh:02d}:{mi:02d}:{ss:02d}",
        "model": "SOMATOM PLUS",
        "description": "SIM HEAD",
        "gantry_rotation": 360,
        "kv": 120,
        "mas": 300 + 10 * index,
        "acquisition_time_s": 1.5 + 0.5 * (index % 4),
        "slice_thickness_mm": 5,
        "ma": 200,
        "matrix": matrix,
        "zoom": 1.25,
        "table_position_mm": -40 + 5 * index,
        "table_height_mm": 150,
        "scan_number": index + 1,
        "scan_date": date,
        "scan_time": f"{hh:02d}:{mi + index // 60 % 60:02d}:{(ss + index) % 60:02d}",
    }, into=buf, pad=b" ")
    somatom_plus.TEXT.write({
        "hospital": "SIMULATED HOSPITAL",
        "patient_name": study["patient"],
        "patient_id": study["patient_id"],
        "gantry_tilt_label": "GT",
        "gantry_tilt": "0.0",
        "right_edge": "LEFT",
        "top_edge": "ANTERIOR",
    }, into=buf, base=somatom_plus.TEXT_BASE, pad=b" ")
    pixels = phantom(rng, matrix, matrix)
    return SimFile(f"somp{index + 1:04d}.img", bytes(buf) + pixels.astype("<u2").tobytes())


def write_vision_ima(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    study, n = _scene(rng, index, opts)
    date = study["date"]
    time = study["time"] + (0,)
    spacing = 250.0 / n
    distance = 10.0 + 4.0 * index
    buf = bytearray(vision_ima.HEADER_SIZE)
    vision_ima.HEADER.write({"manufacturer": "SIEMENS"}, into=buf)  # NUL after it: the magic
    vision_ima.HEADER.write({
        "study_date": date, "acquisition_date": date, "image_date": date,
        "study_time": time, "acquisition_time": time, "image_time": time,
        "modality": 2,
        "institution": "SIMULATED HOSPITAL",
        "model": "MAGNETOM VISION SIM",
        "patient_name": study["patient"],
        "patient_id": study["patient_id"],
        "birth_date": (1950, 6, 15),
        "sex": 1,
        "weight_kg": 70,
        "slice_thickness": 5.0,
        "tr_ms": 600.0,
        "te_ms": 15.0,
        "averages": 2,
        "frequency": 63.6,
        "patient_position": 4,  # supine
        "fourier_lines": 192,
        "acquisition_columns": n,
        "flip_angle": 90.0,
        "field_strength": 1.5,
        "display_matrix": n,
        "study_number": 4,
        "acquisition_number": 1,
        "image_number": index + 1,
        "rest_direction": 2,  # head first
        # Coronal slices: DICOM row to the left (1,0,0), column to the feet (0,0,-1); in
        # Siemens +L+A+F that is row (1,0,0), column (0,0,1); slices step anteriorly.
        "centre": (0.0, distance, 20.0),
        "normal": (0.0, 1.0, 0.0),
        "distance": distance,
        "row": (1.0, 0.0, 0.0),
        "column": (0.0, 0.0, 1.0),
        "partitions_3d": 0,
        "slices_nominal": 1,
        "image_dimension": 2,
        "rows": n,
        "columns": n,
        "pixel_spacing": (spacing, spacing),
        "bits_allocated": 16,
        "bits_stored": 12,
        "high_bit": 11,
        "pixel_representation": 0,
        "window_center": (600, 600),
        "window_width": (1200, 1200),
    }, into=buf, pad=b" ")
    pixels = phantom(rng, n, n)
    return SimFile(f"vision{index + 1:04d}.ima", bytes(buf) + pixels.astype(">u2").tobytes())


register_format("somatom-plus", write_somatom_plus)
register_format("vision-ima", write_vision_ima)
