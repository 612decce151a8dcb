"""Simulated GE files: Signa 3.x/4.x (``signa4x``) and Genesis (``genesis``).

Written from the format notes (shared/formats/ge-signa-4x.md, ge-genesis.md) through the
decoders' own field tables, so a simulated file can only show that the decoder reads what the
tables say; the independent checks are the real samples, SimpleITK's GE4/GE5 readers, VTK and
the notes' test vectors (see tests). Every file varies: matrix, pixel size, plane (axial,
sagittal, coronal, double oblique), patient position, dates on both sides of 2000 (Signa
year fields 99, 100, 101, 0, 1; Genesis Unix times), sequence parameters, signed and
unsigned pixels, GE packed UIDs or none.

Options: ``--compression 0-4`` (Genesis; default varies by file), ``--variant`` ``disk``
(ximg file, the default), ``tape`` (DAT/tape file: DB headers first, IMGF at 3180, a byte
count before the pixels; Signa tape files are byte-identical to disk files) or ``aw``
(Advantage Windows: padded headers, IMGF at 3228 for MR / 3240 for CT).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
from typing import Any

import numpy as np

from gateway.formats.engine.fieldtable import Table
from gateway.formats.ge import genesis as gen
from gateway.formats.ge import signa4x as sig
from gateway.simulate import SimFile, SimOptions, register_format


class HeaderWriter:
    """Named fields of a table written into ``buf`` at ``base`` by the table's own encoders
    (``Table.write``), one at a time as the scene is drawn; ``pad`` fills text fields."""

    def __init__(self, buf: bytearray, table: Table, base: int, pad: bytes = b"\0"):
        self.buf, self.table, self.base, self.pad = buf, table, base, pad

    def __setitem__(self, name: str, value: Any) -> None:
        self.table.write({name: value}, into=self.buf, base=self.base, pad=self.pad)

    def maybe(self, name: str, value: Any) -> None:
        """Set a field the table may not have (padded tables omit some packed fields)."""
        if name in self.table.by_name:
            self[name] = value


# --------------------------------------------------------------------------- shared scene


def _rotation(rng: random.Random) -> tuple[str, np.ndarray, np.ndarray]:
    """(plane name, row and column direction in LPS) for a random plane."""
    plane = rng.choice(["AXIAL", "SAGITTAL", "CORONAL", "OBLIQUE", "OBLIQUE"])
    row, col = {
        "AXIAL": ((1, 0, 0), (0, 1, 0)),
        "SAGITTAL": ((0, 1, 0), (0, 0, -1)),
        "CORONAL": ((1, 0, 0), (0, 0, -1)),
        "OBLIQUE": ((1, 0, 0), (0, 1, 0)),
    }[plane]
    row, col = np.array(row, float), np.array(col, float)
    if plane == "OBLIQUE":
        for axis in rng.sample([0, 1, 2], 2):
            angle = math.radians(rng.uniform(-60, 60))
            c, s = math.cos(angle), math.sin(angle)
            rot = np.eye(3)
            i, j = [k for k in range(3) if k != axis]
            rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
            row, col = rot @ row, rot @ col
    return plane, row, col


def _corners(rng: random.Random, rows: int, cols: int, pixel: tuple[float, float], row: np.ndarray,
             col: np.ndarray) -> dict[str, np.ndarray]:
    """Image-edge corners in R/A/S (the convention both real Genesis files show)."""
    centre = np.array([rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-80, 80)])
    width, height = cols * pixel[0], rows * pixel[1]
    tlhc = centre - row * width / 2 - col * height / 2
    lps = {"tlhc": tlhc, "trhc": tlhc + row * width, "blhc": tlhc + col * height,
           "brhc": tlhc + row * width + col * height, "center": centre}
    ras = lambda p: np.array([-p[0], -p[1], p[2]])  # noqa: E731
    return {k: ras(v) for k, v in lps.items()} | {"normal": ras(np.cross(row, col))}


def _put_points(header: HeaderWriter, corners: dict[str, np.ndarray], prefixes: dict[str, str]) -> None:
    """Each point of ``corners`` as the three fields ``<prefix>_r``, ``_a``, ``_s``."""
    for point, prefix in prefixes.items():
        for axis, v in zip("ras", corners[point]):
            header[f"{prefix}_{axis}"] = float(v)


def _raster(rng: random.Random, rows: int, cols: int, signed: bool, ct: bool) -> np.ndarray:
    """A phantom: an ellipse of tissue with structure and noise, zero outside a circular span."""
    seed = rng.getrandbits(32)
    gen_ = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    r = np.hypot((y - cy) / (rows / 2), (x - cx) / (cols / 2))
    body = (r < 0.8).astype(float)
    if ct:
        img = -1000 + body * (1040 + 60 * np.sin(x / 7.0) + gen_.normal(0, 20, (rows, cols)))
        img[(r < 0.3) & (x > cx)] = 1800  # bone: large jumps exercise the absolute codes
    elif signed:
        img = body * 3000 * np.sin(x / 11.0 + y / 17.0) + gen_.normal(0, 40, (rows, cols))
    else:
        img = body * (800 + 400 * np.cos(y / 9.0)) + gen_.normal(0, 15, (rows, cols)) + 20
        img[(r < 0.2)] = 4095 if gen_.random() < 0.5 else 30000
    img = np.where(r < 0.98, img, 0)  # the round field of view: packed codes store only this
    lo, hi = (-32768, 32767) if (signed or ct) else (0, 65535)
    return np.clip(np.rint(img), lo, hi).astype(np.int32)


def _names(rng: random.Random, index: int) -> dict[str, str]:
    return {
        "patient": f"SIMULATED^PATIENT{index % 7}",
        "id": f"SIM{index % 7:05d}",
        "referring": "SIM^REFERRER",
        "operator": rng.choice(["AB", "CD", "EF"]),
        "hospital": "SIMULATED HOSPITAL",
    }


# Dates on both sides of 2000: (date, Signa year field) — kept counting (100, 101) or wrapped.
_DATES = [
    (dt.datetime(1999, 12, 31, 23, 59, 58), 99),
    (dt.datetime(2000, 1, 1, 0, 0, 5), 100),
    (dt.datetime(2000, 1, 1, 0, 0, 5), 0),
    (dt.datetime(2000, 2, 29, 12, 30, 0), 100),
    (dt.datetime(2001, 5, 23, 14, 9, 55), 101),
    (dt.datetime(2001, 5, 23, 14, 9, 55), 1),
    (dt.datetime(1995, 3, 15, 14, 30, 0), 95),
]


# --------------------------------------------------------------------------- Signa 4.x


def signa4x(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    if opts.compression not in (None, 0):
        raise ValueError("Signa 4.x files are never compressed")
    variant = opts.variant or "disk"
    if variant not in ("disk", "tape"):
        raise ValueError("Signa 4.x variants: disk, tape (a tape file holds the disk file's bytes)")
    cols, rows = rng.choice([(256, 256), (256, 256), (256, 192), (128, 128), (512, 512)])
    fov = rng.choice([200.0, 240.0, 300.0])
    size = fov / cols
    buf = bytearray(sig.HEADER_SIZE + 2 * rows * cols)
    system = HeaderWriter(buf, sig.SYSTEM, 0, b" ")
    study = HeaderWriter(buf, sig.STUDY, sig.STUDY_BASE, b" ")
    series = HeaderWriter(buf, sig.SERIES, sig.SERIES_BASE, b" ")
    image = HeaderWriter(buf, sig.IMAGE, sig.IMAGE_BASE, b" ")
    names = _names(rng, index)
    when, year_field = rng.choice(_DATES)
    minor = rng.choice([0, 8])
    revision = f"04.{minor:02d}.01"
    system["system_id"] = "SIM4"
    system["hospital"] = names["hospital"]
    for w, ident in ((study, "STUDY HEADER"), (series, "SERIES HEADER"), (image, "IMAGE HEADER")):
        w["identifier"] = ident
        w["revision"] = revision
        w["blocks"] = 2
        w["date_text"] = when.strftime("%d-%b-%y").upper()
        w["time_text"] = when.strftime("%H:%M:%S")
        w["day"], w["month"], w["year"] = when.day, when.month, year_field
        w["hour"], w["minute"], w["second"] = when.hour, when.minute, when.second
    study["study_number"] = str(1000 + index // 8)
    study["raw_system_id"] = "S4"
    study["patient_name"] = names["patient"]
    study["patient_id"] = names["id"]
    study["age"] = rng.choice(["42", "7M", "3W", "65Y"])
    study["sex"] = rng.choice("MF")
    study["weight_g"] = rng.randint(3000, 120000)
    study["referring"] = names["referring"]
    study["operator"] = names["operator"]
    study["description"] = "SIMULATED SIGNA STUDY"
    study["hospital"] = names["hospital"]
    series["series_number"] = str(1 + index % 5)
    series["description"] = f"SIM SERIES {1 + index % 5}"
    plane, row, col = _rotation(rng)
    series["plane_type"] = {"AXIAL": 0, "SAGITTAL": 1, "CORONAL": 2, "OBLIQUE": 3}[plane]
    series["plane_name"] = plane
    series["image_mode"] = rng.choice([0, 1, 2])
    series["gauss"] = rng.choice([15000, 5000, 10000])
    series["pulse_sequence"] = rng.choice([0, 1, 5, 13, 17, 19])
    series["fov_mm"] = fov
    series["orientation"] = rng.randint(0, 3)
    series["position"] = rng.randint(0, 1)
    series["landmark_name"] = "NASION"
    series["scan_matrix_x"], series["scan_matrix_y"] = cols, rng.choice([rows, rows // 2, 3 * rows // 4])
    series["gating"] = rng.choice([0, 1 | 8, 32, 128])
    series["psd_name"] = "SIMPSD"
    series["landmark_counter"] = 7 + index // 16
    series["protocol"] = "SIM PROTOCOL"
    series["suppression"] = rng.choice([0, 1])
    series["prep_flags"] = rng.choice([0, 1])
    image["image_number"] = str(1 + index % 100)
    corners = _corners(rng, rows, cols, (size, size), row, col)
    _put_points(image, corners,
                {"tlhc": "tlhc", "trhc": "trhc", "blhc": "blhc", "center": "center", "normal": "normal"})
    image["location"] = float(corners["center"][2])
    image["thickness"] = rng.choice([3.0, 5.0, 10.0])
    image["spacing_gap"] = rng.choice([0.0, 0.5, 1.5])
    image["tr_us"] = rng.choice([500e3, 2000e3, 33e3])
    image["scan_time_us"] = rng.uniform(10e6, 300e6)
    image["te_us"] = rng.choice([20e3, 80e3, 9e3])
    image["ti_us"] = rng.choice([0.0, 600e3])
    image["echoes"], image["echo_number"] = 1, 1
    image["slices_in_group"] = rng.randint(1, 30)
    image["dim_x"], image["dim_y"] = cols, rows
    image["pixel_size"] = size
    image["bits"] = rng.choice([0, 16])
    image["blocks_in_file"] = 28 + (2 * rows * cols) // 512
    image["nex"] = rng.choice([1.0, 2.0, 0.75])
    image["sar_avg"] = 0.5
    image["heart_rate"] = rng.choice([0, 72])
    image["trigger_delay_ms"] = 150.0
    image["flip"] = rng.choice([90, 30, 20])
    image["tx_frequency_hz"] = 63_860_000
    image["swapped"] = rng.choice([0, 1])
    image["vbw"] = rng.choice([0, 16])
    image["etl"] = rng.choice([0, 8])
    image["te_flags"] = rng.choice([0, 1])
    image_type = rng.choice([0, 0, 0, 1])
    image["image_type"] = image_type
    pixels = _raster(rng, rows, cols, signed=image_type != 0, ct=False)
    buf[sig.HEADER_SIZE:] = pixels.astype(">i2" if image_type else ">u2").tobytes()
    return SimFile(f"I.{index + 1:03d}" + (".tape" if variant == "tape" else ""), bytes(buf))


# --------------------------------------------------------------------------- Genesis


def _dpcm_encode(values: np.ndarray, strip_rows: int, cols: int) -> tuple[bytes, list[int]]:
    """The DPCM byte code for int16 ``values`` (vectorised). An absolute code starts every
    ``strip_rows`` rows, as in the real file; returns the stream and the strip byte offsets."""
    v = values.astype(np.int64) & 0xFFFF
    prev = np.concatenate([[0], v[:-1]])
    d = ((v - prev + 0x8000) & 0xFFFF) - 0x8000
    force = np.zeros(v.size, bool)
    if strip_rows and cols:
        force[:: strip_rows * cols] = True
    one = (d >= -64) & (d <= 63) & ~force
    two = (d >= -8192) & (d <= 8191) & ~one & ~force
    length = np.where(one, 1, np.where(two, 2, 3))
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    out = np.zeros(int(length.sum()), np.uint8)
    out[start[one]] = (d[one] & 0x7F).astype(np.uint8)
    out[start[two]] = (0x80 | ((d[two] >> 8) & 0x3F)).astype(np.uint8)
    out[start[two] + 1] = (d[two] & 0xFF).astype(np.uint8)
    three = ~one & ~two
    out[start[three]] = 0xC0
    out[start[three] + 1] = (v[three] >> 8).astype(np.uint8)
    out[start[three] + 2] = (v[three] & 0xFF).astype(np.uint8)
    strips = [int(s) for s in start[force]] if strip_rows else []
    return out.tobytes(), strips


def _line_map(raster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: first non-zero column and span width (0/0 for an empty row)."""
    nz = raster != 0
    any_ = nz.any(axis=1)
    left = np.where(any_, nz.argmax(axis=1), 0)
    right = np.where(any_, raster.shape[1] - nz[:, ::-1].argmax(axis=1), 0)
    return left, right - left


def genesis(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    variant = opts.variant or "disk"
    if variant not in ("disk", "tape", "aw"):
        raise ValueError("Genesis variants: disk (ximg), tape (DAT), aw (Advantage Windows)")
    # Every random choice is drawn in the same order whatever the options, so files of the
    # same seed and index differ only in their encoding.
    modality = rng.choice(["MR", "MR", "CT"])
    cols, rows = rng.choice([(256, 256), (256, 256), (512, 512), (256, 192)])
    pixel = rng.choice([0.9375, 0.46875, 0.7])
    when, _ = rng.choice(_DATES)
    when = when.replace(tzinfo=dt.timezone.utc)  # Genesis times are Unix seconds (UTC)
    names = _names(rng, index)
    plane, row, col = _rotation(rng)
    corners = _corners(rng, rows, cols, (pixel, pixel), row, col)
    signed = modality == "CT" or rng.random() < 0.25
    raster = _raster(rng, rows, cols, signed=signed, ct=modality == "CT")
    code_choice = rng.choice([0, 1, 2, 3, 4])
    uids = rng.random() < 0.7
    uid_root = f"2.25.{rng.getrandbits(64)}"
    extra = {k: rng.random() for k in ("tr", "te", "flip", "kv", "pos")}
    code = opts.compression if opts.compression is not None else code_choice
    if code not in (0, 1, 2, 3, 4):
        raise ValueError("Genesis compression codes are 0-4")

    packed = variant != "aw"
    exam_t, series_t = (gen.EXAM_PK, gen.SERIES_PK) if packed else (gen.EXAM_PD, gen.SERIES_PD)
    suite_t = gen.SUITE_PK if packed else gen.SUITE_PD
    image_t = {(True, "MR"): gen.MR_PK, (False, "MR"): gen.MR_PD, (True, "CT"): gen.CT_PK, (False, "CT"): gen.CT_PD}[
        (packed, modality)]
    sizes = [suite_t.size, exam_t.size, series_t.size, image_t.size]
    db = bytearray(sum(sizes))
    bases = np.cumsum([0] + sizes[:-1]).tolist()
    suite = HeaderWriter(db, suite_t, bases[0])
    exam = HeaderWriter(db, exam_t, bases[1])
    series = HeaderWriter(db, series_t, bases[2])
    image = HeaderWriter(db, image_t, bases[3])
    suite["suite_id"] = "SIM1"
    suite["product_id"] = "SIGNA" if modality == "MR" else "HISPEED"
    exam_number = 700 + index // 8
    series_number = 1 + index % 4
    image_number = 1 + index
    for w in (exam, series, image):
        w["exam_number"] = exam_number
    exam["suite_id"] = "SIM1"
    exam["hospital"] = names["hospital"]
    exam["patient_id"] = names["id"]
    exam["patient_name"] = names["patient"]
    exam["age"], exam["age_units"], exam["sex"] = 42, 0, 2
    exam["weight_g"] = 70000
    exam["exam_time"] = when
    exam["referring"] = names["referring"]
    exam["operator"] = names["operator"]
    exam["description"] = "SIMULATED GENESIS"
    exam["exam_type"] = modality
    exam["system_id"] = "SIMSYSTEM0001"
    exam["magnet_gauss"] = 15000 if modality == "MR" else 0
    if modality == "CT":
        exam["source_detector_mm"], exam["source_iso_mm"] = 949.0, 541.0
    series["series_number"] = series_number
    series["alloc_time"] = when + dt.timedelta(minutes=series_number)
    series["description"] = f"SIM {modality} SERIES {series_number}"
    series["series_type"] = 1
    series["position"] = 1 << int(extra["pos"] * 4)
    series["entry"] = 1 + int(extra["pos"] * 2)
    series["anatomical_ref"] = "SN"
    series["protocol"] = "SIM PROTOCOL"
    series["landmark_counter"] = 3 + index // 16
    image["series_number"] = series_number
    image["image_number"] = image_number
    image["alloc_time"] = when + dt.timedelta(minutes=series_number, seconds=image_number)
    image["actual_time"] = when + dt.timedelta(minutes=series_number, seconds=image_number + 2)
    image["scan_duration_us"] = 128.1e6
    image["thickness"] = 3.0
    image["spacing_gap"] = 0.5
    image["matrix_x"], image["matrix_y"] = cols, rows
    image["dfov_x"], image["dfov_y"] = cols * pixel, rows * pixel
    image["dim_x"], image["dim_y"] = float(cols), float(rows // 2)
    image["pixsize_x"], image["pixsize_y"] = pixel, pixel
    image["location"] = float(corners["center"][2])
    _put_points(image, corners, {"tlhc": "tlhc", "trhc": "trhc", "brhc": "brhc", "center": "ctr", "normal": "norm"})
    if modality == "MR":
        image["tr_us"] = int(500_000 + 3_500_000 * extra["tr"])
        image["te_us"] = int(5_000 + 100_000 * extra["te"])
        image["echoes"], image["echo_number"], image["nex"] = 1, 1, 1.0
        image["flip"] = int(10 + 80 * extra["flip"])
        image["xmtfreq"] = 638_600_000
        image["imode"] = 1
        image["iopt"] = 1 << 3
        image["pseq"] = 19
        image["psd_name"] = "simfse"
        image["coil_name"] = "HEAD"
        image["vbw_khz"] = 16.0
        image["freq_dir"] = 2
        image["etl"] = 8
        image["image_type"] = 1 if signed else 0
    else:
        image["kv"] = 120 if extra["kv"] < 0.5 else 140
        image["ma"] = 200
        image["tilt"] = 0.0
        image["sfov"] = 500.0
        image.maybe("filter", 2)
        image.maybe("algorithm", 4)
        image.maybe("scan_number", image_number)
        image.maybe("rotation", 1)
    if uids:
        exam["study_uid"] = f"{uid_root}.1"
        series["series_uid"] = f"{uid_root}.1.{series_number}"
        series["landmark_uid"] = f"{uid_root}.9"
        image["image_uid"] = f"{uid_root}.1.{series_number}.{image_number}"

    # Pixel data in the requested encoding.
    left, width = _line_map(raster)
    if code in (2, 4):
        spans = np.concatenate([raster[r, left[r]:left[r] + width[r]] for r in range(rows)])
    flat = raster.ravel()
    strips: list[int] = []
    if code in (0, 1):
        pixel_bytes = flat.astype(">i2").tobytes()
    elif code == 2:
        pixel_bytes = spans.astype(">i2").tobytes()
    elif code == 3:
        pixel_bytes, strips = _dpcm_encode(flat, 8, cols)
    else:
        pixel_bytes, _ = _dpcm_encode(spans, 0, cols)
    line_map = np.stack([left, width], axis=1).astype(">u2").tobytes() if code in (2, 4) else b""
    control = np.array(strips, ">i4").tobytes()

    # IMGF header + its blocks (unique id text, line map, compression control).
    blocks = [(b"MR Recon Y" + f"/{exam_number}/{series_number}/{image_number}".encode()).ljust(80, b"\0"),
              line_map, control]
    imgf = bytearray(gen.IMGF.size)
    w = HeaderWriter(imgf, gen.IMGF, 0)
    w["magic"] = "IMGF"
    w["width"], w["height"], w["depth"], w["compress"] = cols, rows, 16, code
    w["dwindow"], w["dlevel"] = (400, 40) if modality == "CT" else (0, 0)
    w["version"] = 3
    pos = gen.IMGF.size
    layout = bytearray()
    pointer_names = (("p_id", "l_id"), ("p_unpack", "l_unpack"), ("p_compress", "l_compress"))
    for (p_name, l_name), block in zip(pointer_names, blocks):
        w[p_name], w[l_name] = (pos, len(block)) if block else (0, 0)
        layout += block
        pos += len(block)
    if variant == "disk":
        db_at = pos
        hdr_length = db_at + len(db)
        for (name, size), base in zip((("suite", sizes[0]), ("exam", sizes[1]), ("series", sizes[2]),
                                       ("image", sizes[3])), bases):
            w[f"p_{name}"], w[f"l_{name}"] = db_at + base, size
        w["p_dbhdr"], w["l_dbhdr"] = db_at, len(db)
        w["hdr_length"] = hdr_length
        data = bytes(imgf) + bytes(layout) + bytes(db) + pixel_bytes
        name = f"E{exam_number}S{series_number}I{image_number}.{modality}"
    elif variant == "tape":
        record1 = bytes(db).ljust(3180, b"\0")
        junk = random.Random(index)  # garbage pointers (notes 2 C), not drawn from ``rng``
        for name in ("suite", "exam", "series", "image"):
            w[f"p_{name}"], w[f"l_{name}"] = junk.getrandbits(30), junk.getrandbits(12)
        w["hdr_length"] = pos
        data = record1 + bytes(imgf) + bytes(layout) + struct.pack(">i", len(pixel_bytes)) + pixel_bytes
        name = f"tape_file_{index + 1:04d}.dat"
    else:
        at = 3228 if modality == "MR" else 3240
        record1 = bytes(db).ljust(at, b"\0")
        w["hdr_length"] = pos
        data = record1 + bytes(imgf) + bytes(layout) + pixel_bytes
        name = f"aw_{index + 1:04d}.{modality}"
    return SimFile(name, data)


register_format("signa4x", signa4x)
register_format("genesis", genesis)
