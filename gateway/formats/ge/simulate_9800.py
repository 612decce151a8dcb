"""Simulated GE CT 9800 files (``ge9800``), written through the decoder's own tables.

From the format notes (shared/formats/ge-9800.md): a global header with word pointers and
block counts, exam header, image header 1, an empty image header 2, the line map and the
byte-coded pixels, each part at the offset its pointer gives. A simulated file shows only that
the decoder reads what the tables and the notes say; the tests read the same bytes a second
way, written from the notes alone.

Every file varies: axial prospective and retrospective images (CT Image Storage), scouts,
tilted and off-centre reconstructions and screen saves (Secondary Capture); 256/320/512
matrices with and without the line map; pointers left 0 (the defaults, both group-type
layouts), written out, or moved (exam and image header swapped, a gap before the pixels);
all four patient positions and both entries; year fields 86-99, 100, 0 and 1.

Options (``extra``): ``kind`` (axial, retro, scout, tilted, offcentre, screensave), ``size``
(the matrix of non-scout images) and ``map`` (True/False: the line map), for benchmarks.
"""

from __future__ import annotations

import random

import numpy as np

from gateway.formats.ge import ct9800 as c98
from gateway.formats.ge.simulate import HeaderWriter
from gateway.formats.tagstream.simulate import phantom
from gateway.simulate import SimFile, SimOptions, register_format

BLOCK = c98.BLOCK

# (calendar date, year field): before 2000, and after it counted on (100) or wrapped (0, 1).
_DATES = [((1986, 4, 17), 86), ((1989, 11, 2), 89), ((1993, 6, 30), 93), ((1999, 12, 31), 99),
          ((2000, 1, 3), 100), ((2000, 1, 3), 0), ((2001, 5, 23), 1)]
_KINDS = ["axial"] * 5 + ["retro", "scout", "tilted", "offcentre", "screensave"]


def encode(values: np.ndarray, restart_every: int = 0) -> bytes:
    """The 9800 byte code of 12-bit ``values`` (notes 4): a one-byte delta where it fits
    (-64..63), else the two-byte absolute value; ``restart_every`` > 0 forces an absolute
    code every that many pixels (as an encoder restarting each row would)."""
    v = values.astype(np.int64).ravel()
    prev = np.concatenate(([0], v[:-1]))
    d = v - prev
    one = (d >= -64) & (d <= 63)
    if restart_every > 0:
        one[::restart_every] = False
    length = np.where(one, 1, 2)
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    out = np.zeros(int(length.sum()), dtype=np.uint8)
    out[start[one]] = np.where(d[one] >= 0, 0x80 | d[one], d[one] & 0xFF).astype(np.uint8)
    two = ~one
    out[start[two]] = (v[two] >> 8).astype(np.uint8)
    out[start[two] + 1] = (v[two] & 0xFF).astype(np.uint8)
    return out.tobytes()


def _half_lengths(rows: int, cols: int) -> np.ndarray:
    """A round field of view: each row's half chord of a circle of diameter ``cols``."""
    dy = np.arange(rows) + 0.5 - rows / 2
    half = np.floor(np.sqrt(np.maximum((cols / 2) ** 2 - (dy * cols / rows) ** 2, 0)))
    return np.minimum(half, cols // 2).astype(np.int64)


def _blocks(n: int) -> int:
    return -(-n // BLOCK)


def ge9800(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    if opts.compression not in (None, 0) or opts.variant not in (None, "disk"):
        raise ValueError("GE 9800 files have one encoding (the byte code) and one variant (disk)")
    # Exam and series values repeat for every image of the exam / series (index // 12 and
    # (index // 4) % 3), drawn from generators keyed by the run and the exam / series.
    if "_ge9800_run" not in opts.extra:
        opts.extra["_ge9800_run"] = rng.getrandbits(32)
    run = opts.extra["_ge9800_run"]
    exam_number = 1000 + index // 12
    exam_rng = random.Random(f"{run}/{exam_number}")
    (_year, month, day), year_field = exam_rng.choice(_DATES)
    hour, minute = exam_rng.randint(7, 18), exam_rng.randint(0, 58)
    station = exam_rng.choice([1, 2, 7])
    position = (exam_rng.choice([1, 1, 1, 2]), exam_rng.choice([2, 2, 2, 1, 3, 4]))
    patient = exam_rng.randint(1, 999)
    series = 1 + (index // 4) % 3
    series_rng = random.Random(f"{run}/{exam_number}/{series}")
    series_group = series_rng.choice([3, 3, 4, 5])
    series_size = series_rng.choice([256, 256, 320, 512])
    fov = series_rng.choice([250.0, 350.0, 480.0])

    kind = rng.choice(_KINDS)
    kind = opts.extra.get("kind", kind)  # drawn first either way: the same seed, the same rest
    if kind not in _KINDS:
        raise ValueError(f"GE 9800 kinds: {', '.join(sorted(set(_KINDS)))}")
    scout = kind == "scout"
    group_type = 2 if scout else series_group
    file_type = {"scout": 2, "retro": 3, "screensave": 5}.get(kind, 1)
    if scout:
        rows, cols, use_map = rng.choice([256, 400]), rng.choice([368, 512]), False
    else:
        rows = cols = int(opts.extra.get("size", series_size))
        use_map = rng.random() < 0.8
        use_map = bool(opts.extra.get("map", use_map))
        if not 0 < rows <= c98.MAX_DIM:
            raise ValueError(f"matrix size {rows} is outside 1-{c98.MAX_DIM}")
    layout = rng.choice(["defaults", "explicit", "moved"])

    # Pixels: the phantom (12-bit stored values; 1024 is water), 0 outside the round field.
    stored = phantom(rng, rows, cols).astype(np.int64)
    restart = rng.random() < 0.3
    if use_map:
        half = _half_lengths(rows, cols)
        left, width = cols // 2 - half, 2 * half
        inside = (np.arange(cols)[None, :] >= left[:, None]) & (np.arange(cols)[None, :] < (left + width)[:, None])
        stored = np.where(inside, stored, 0)
        span_values = stored[inside]  # row-major: each row's span in order
    else:
        half = None
        span_values = stored.ravel()
    stream = encode(span_values, cols if restart else 0)

    # Where the parts go.
    arr = group_type == 5
    default = {"exam": BLOCK, "image1": 2 * BLOCK, "image2": 3 * BLOCK,
               "map": (9 if arr else 4) * BLOCK, "data": (11 if arr else 6) * BLOCK}
    map_blocks = _blocks(2 * rows) if use_map else 0
    if layout == "moved":
        at = {"exam": 2 * BLOCK, "image1": BLOCK, "image2": 3 * BLOCK, "map": 4 * BLOCK}
        at["data"] = at["map"] + (map_blocks + 1) * BLOCK
    else:
        at = dict(default)
    data_blocks = _blocks(len(stream))
    buf = bytearray(at["data"] + data_blocks * BLOCK)
    buf[at["data"]:at["data"] + len(stream)] = stream

    g = HeaderWriter(buf, c98.GLOBAL, 0, b" ")
    g["membership_id"] = "9800"
    g["revision"], g["format_code"], g["user_revision"] = "A3", "IM", "01"
    g["created_mdyhms"] = (month, day, year_field, hour, minute + 1, 12)
    g["station_id"] = station
    g["file_name"] = f"{exam_number:05d}{index % 1000:03d}.YV"
    g["global_pointer"] = 1
    for part in ("exam", "image1", "image2", "map", "data"):
        g[f"{part}_pointer"] = 0 if layout == "defaults" else at[part] // 2 + 1
    g["global_blocks"], g["exam_blocks"], g["image1_blocks"], g["image2_blocks"] = 1, 1, 1, 1
    g["map_blocks"], g["data_blocks"] = map_blocks, data_blocks
    g["max_images"] = 1
    g["constant_1"], g["constant_512"] = 1, 512

    e = HeaderWriter(buf, c98.EXAM, at["exam"], b" ")
    e["revision"] = "A3"
    e["system_number"] = 9800
    e["station_id"] = station
    e["exam_number"] = exam_number
    e["exam_number_text"] = str(exam_number)
    e["patient_id"] = f"SIM{patient:05d}"
    e["patient_name"] = f"SIMULATED^PATIENT{patient}"
    e["referring"] = "SIM^REFERRER"
    e["hospital"] = "SIMULATED HOSPITAL"
    e["diagnostician"] = "SIM^READER"
    e["operator"] = rng.choice(["AB", "CDE", "FG"])
    e["description"] = "SIMULATED 9800 EXAM"
    e["scan_counts"] = (1, 20, 20, 0, 0, 0)
    e["month"], e["day"], e["year"] = month, day, year_field
    e["hour"], e["minute"], e["second"] = hour, minute, 5
    e["source_detector_mm"], e["source_centre_mm"] = 1099.0, 630.0

    i = HeaderWriter(buf, c98.IMAGE1, at["image1"], b" ")
    image_number = 1 + index % 12
    i["revision"] = "A3"
    i["station_id"], i["exam_number"] = station, exam_number
    i["group_type"], i["group_number"] = group_type, series
    i["group_description"] = "SCOUT" if scout else f"SIM GROUP {series}"
    i["scan_number"], i["image_number"] = image_number, image_number
    i["entry"], i["ap_orientation"] = position
    i["position_reference"] = rng.choice(["OM", "SN", "XIPH"])
    if rng.random() < 0.3:
        i["contrast_flag"], i["contrast"] = 1, "OMNIPAQUE 300"
    i["bowtie"] = rng.choice([1, 2, 3])
    i["aperture_mm"] = rng.choice([1.5, 3.0, 5.0, 10.0])
    i["kvp"], i["ma"] = rng.choice([120, 140]), rng.choice([70, 150, 200, 300])
    i["gantry_angle"] = rng.choice([-12.0, 15.0, -20.5]) if kind == "tilted" else 0.0
    i["table_height"] = rng.choice([120.0, 142.5])
    location = round(rng.uniform(-300, 300) * 4) / 4
    i["table_location"] = location
    i["scan_time_s"] = rng.choice([2.0, 4.5, 9.6])
    i["scan_mdyhms"] = (month, day, year_field, hour, minute, 30)
    i["rotation"] = rng.choice([1, 2])
    i["image_size"] = 0 if scout else cols
    if scout:
        i["tube_azimuth"], i["scout_end_mm"] = rng.choice([0, 90]), location + 256.0
        i["detectors_per_view"], i["views_per_scan"] = cols, rows
        i["scout_orientation"] = 0
    i["scan_x_diameter"], i["scan_y_diameter"] = fov, fov
    off = kind == "offcentre"
    i["display_mag"] = rng.choice([0.0, 1.0]) if not off else 1.5
    i["target_x_centre"], i["target_y_centre"] = (12.5, -30.0) if off else (0.0, 0.0)
    i["target_mag"] = 1.0
    i["window"], i["level"] = rng.choice([(400, 40), (2000, 300), (-1, 0)])
    i["recon_mdyhms"] = (month, day, year_field, hour, minute + 1, 2)
    i["use_map"] = 1 if use_map else 2
    i["pixel_size_mm"] = fov / cols
    i["file_type"] = file_type
    i["data_range"] = rng.choice([12, -1])
    i["recon_type"] = rng.choice([1, 2, 3])
    i["recon_x_diameter"], i["recon_y_diameter"] = fov, fov
    if use_map:
        c98.map_table(rows).write({"half_lengths": tuple(int(h) for h in half)}, into=buf, base=at["map"])
    return SimFile(f"E{exam_number}I{image_number:03d}.YV", bytes(buf))


register_format("ge9800", ge9800)
