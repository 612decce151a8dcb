"""ACR-NEMA and SPI text values made conformant to DICOM value representations (acr-nema.md 5).

ACR-NEMA wrote dates as ``yyyy.mm.dd``, times as ``hh:mm:ss.frac`` (and, in some sources,
``hh.mm.ss.frac``), decimals with leading zeros and exponents, integers in exponent notation,
code strings in lower case or space padded. DICOM allows none of that. Each function here
takes one value as read (trailing pad removed) and returns the DICOM form, or None when the
value cannot be read as that type at all (the caller decides whether to drop or keep it).
"""

from __future__ import annotations

import math
import re

from pydicom import config
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.valuerep import DSfloat

# Maximum value lengths in characters (PS3.5 6.2, Table 6.2-1); PN is per component group,
# TM is 14 since the fractional part has at most 6 digits (HHMMSS.FFFFFF), UC and UT are
# bounded only by the 32-bit length field.
MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
              "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UC": 2**32 - 2, "UI": 64, "UT": 2**32 - 2}

_DA_RE = re.compile(r"^(\d{4})[.\-/]?(\d{2})[.\-/]?(\d{2})$")
_TM_DICOM_RE = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_TM_SEP_RE = re.compile(r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.(\d+))?)?$")
_CS_RE = re.compile(r"^[A-Z0-9 _]*$")
_AS_RE = re.compile(r"^\d{3}[DWMY]$")
_DS_RE = re.compile(r"^[ ]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ ]*$")
_IS_RE = re.compile(r"^[ ]*[+-]?\d+[ ]*$")
_UI_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

# Control characters (PS3.5 6.1.3, 6.2): the text VRs ST, LT and UT may hold CR, LF, FF and
# ESC; LO, SH, PN and UC only ESC (the start of an ISO 2022 escape sequence); every other VR
# none. TAB is in none of these lists (dciodvfy rejects it in LO and in LT alike). DEL and
# the C1 controls (0x7F-0x9F) are not graphic characters of ISO_IR 100 either.
_TEXT_CONTROLS = "\r\n\f\x1b"
_ALLOWED_CONTROLS = {"ST": _TEXT_CONTROLS, "LT": _TEXT_CONTROLS, "UT": _TEXT_CONTROLS,
                     "LO": "\x1b", "SH": "\x1b", "PN": "\x1b", "UC": "\x1b"}
_ALL_CONTROLS = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))


def _forbidden(vr: str) -> re.Pattern[str]:
    allowed = _ALLOWED_CONTROLS.get(vr, "")
    return re.compile("[" + re.escape("".join(c for c in _ALL_CONTROLS if c not in allowed)) + "]")


_FORBIDDEN = {vr: _forbidden(vr) for vr in MAX_LENGTH}


def forbidden_controls(vr: str) -> re.Pattern[str]:
    """The control characters a value of ``vr`` must not contain (one rule, PS3.5 6.1.3/6.2)."""
    return _FORBIDDEN.get(vr) or _forbidden(vr)


def ready_to_write(ds: Dataset) -> None:
    """Tell pydicom the values are already little endian and Latin-1 (ISO_IR 100).

    Every value a decoder here makes is a Python value decoded as Latin-1 (pre-DICOM files
    name no character set; normalisation writes ISO_IR 100). Without this, pydicom's writer
    makes an extra pass over every element of a fresh dataset to re-check its encoding.
    """
    ds.set_original_encoding(False, True, convert_encodings("ISO_IR 100"))


def date(value: str) -> str | None:
    """``yyyymmdd`` from ``yyyymmdd``, ``yyyy.mm.dd``, ``yyyy-mm-dd`` or ``yyyy/mm/dd``.

    ACR-NEMA dates are always year first; nothing here guesses a month-first order.
    """
    m = _DA_RE.match(value.strip())
    if not m:
        return None
    year, month, day = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and year >= 1850):
        return None
    return f"{year:04d}{month:02d}{day:02d}"


def time(value: str) -> str | None:
    """``HHMMSS[.FFFFFF]`` from DICOM form, ``hh:mm[:ss[.frac]]`` or ``hh.mm[.ss[.frac]]``."""
    text = value.strip().rstrip("\0").strip()
    m = _TM_SEP_RE.match(text)
    if m and (":" in text or text.count(".") >= 2 or len(text.split(".")[0]) <= 2):
        hh, mm, ss, frac = m.groups()
        parts = [int(hh), int(mm), int(ss or 0)]
        out = "{:02d}{:02d}{:02d}".format(*parts)
        if frac:
            out += "." + frac[:6]
    else:
        m = _TM_DICOM_RE.match(text)
        if not m:
            return None
        parts = [int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)]
        out = text
    if not (parts[0] < 24 and parts[1] < 60 and parts[2] < 61):
        return None
    return out


def number(value: str) -> float | None:
    """The number in a DS or IS text (leading zeros, signs and exponents allowed)."""
    text = value.strip()
    if not _DS_RE.match(text):
        return None
    x = float(text)
    return x if math.isfinite(x) else None


def decimal_string(x: float) -> str:
    """The DS text for ``x`` (PS3.5 6.2: at most 16 bytes): up to 12 significant digits,
    fewer only when 16 characters cannot hold them; no trailing zeros; never ``-0``.

    Twelve digits is more than any pre-DICOM header carries (32-bit floats hold about 7,
    decimal texts 7-8), so nothing measured is lost, and float noise beyond it
    (0.30000000000000004) is not written. The text is part of the instance identity of the
    tag-stream and Vision formats (Image Position), so it must not change between releases.
    """
    x = float(x) + 0.0  # -0.0 becomes 0.0
    if not math.isfinite(x):
        raise ValueError(f"{x} has no DS form")
    for digits in range(12, 0, -1):
        text = f"{x:.{digits}g}"
        if "e" in text:
            mantissa, exp = text.split("e")
            text = f"{mantissa}e{int(exp)}"
        if len(text) <= 16 and (abs(x) < 1e300 or math.isfinite(float(text))):  # not rounded past the double range
            return text
    return f"{x:.6g}"[:16]


def ds_number(x: float) -> DSfloat:
    """``decimal_string(x)`` as the DS value pydicom keeps (for ``fieldtable.put``)."""
    return DSfloat(decimal_string(x), validation_mode=config.IGNORE)


def ds(value: str) -> str | None:
    x = number(value)
    return None if x is None else decimal_string(x)


def integer_string(value: str) -> str | None:
    """IS text from an integer or a decimal written where an integer belongs (rounded)."""
    x = number(value)
    if x is None:
        return None
    n = int(round(x))
    return str(n) if -(2**31) <= n < 2**31 else None


def code_string(value: str) -> str | None:
    """Upper-case CS without padding, or None if it has characters CS never allows."""
    text = value.strip().upper()
    return text if len(text) <= 16 and _CS_RE.match(text) else None


def age_string(value: str) -> str | None:
    text = value.strip().upper()
    return text if _AS_RE.match(text) else None


def uid(value: str) -> str | None:
    text = value.strip().strip("\0").strip()
    return text if len(text) <= 64 and _UI_RE.match(text) else None


def is_valid(vr: str, value: str) -> bool:
    """Whether ``value`` is already a valid single value of ``vr`` as DICOM defines it."""
    if vr == "DA":
        return bool(_DA_RE.match(value)) and value.isdigit() and date(value) == value
    if vr == "TM":
        return bool(_TM_DICOM_RE.match(value)) and time(value) == value
    if vr == "DS":
        return len(value) <= 16 and bool(_DS_RE.match(value))
    if vr == "IS":
        return len(value) <= 12 and bool(_IS_RE.match(value)) and -(2**31) <= int(value) < 2**31
    if vr == "CS":
        return len(value) <= 16 and bool(_CS_RE.match(value))
    if vr == "AS":
        return bool(_AS_RE.match(value))
    if vr == "UI":
        return uid(value) == value
    if vr in MAX_LENGTH:
        return len(value) <= MAX_LENGTH[vr] and not forbidden_controls(vr).search(value)
    return True


_DS_ONE = r"[ ]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ ]*"
_IS_ONE = r"[ ]*[+-]?\d+[ ]*"
_ALL_DS = re.compile(rf"(?:{_DS_ONE})?(?:\\(?:{_DS_ONE})?)*")
_ALL_IS = re.compile(rf"(?:{_IS_ONE})?(?:\\(?:{_IS_ONE})?)*")


def all_valid(vr: str, values: list[str]) -> bool:
    """True when every value is empty or valid ``vr`` (``is_valid``), checked in one pass over
    the joined text; False means "look at them one by one". Siemens headers hold hundreds of
    multi-valued numbers, where a call per value was most of the decoding time."""
    if not values:
        return True
    longest = max(map(len, values))
    if vr == "DS":
        return longest <= 16 and _ALL_DS.fullmatch("\\".join(values)) is not None
    if vr == "IS":  # nine characters at most: always inside the 32-bit range
        return longest <= 9 and _ALL_IS.fullmatch("\\".join(values)) is not None
    if vr in ("LO", "SH", "ST", "LT", "PN", "AE"):
        return longest <= MAX_LENGTH[vr] and not forbidden_controls(vr).search("".join(values))
    return False


def conform(vr: str, value: str) -> str | None:
    """``value`` rewritten to valid ``vr`` form, or None if it cannot be read as ``vr``."""
    if vr == "DA":
        return date(value)
    if vr == "TM":
        return time(value)
    if vr == "DS":
        return ds(value)
    if vr == "IS":
        return integer_string(value)
    if vr == "CS":
        return code_string(value)
    if vr == "AS":
        return age_string(value)
    if vr == "UI":
        return uid(value)
    return value if is_valid(vr, value) else None


# --- enumerated values written in pre-DICOM spellings (acr-nema.md 5, 8.2) ---

_SEX = {"M": "M", "F": "F", "O": "O", "MALE": "M", "FEMALE": "F"}
_LATERALITY = {"R": "R", "L": "L", "RIGHT": "R", "LEFT": "L"}
_POSITIONS = {"HFS", "HFP", "FFS", "FFP", "HFDR", "HFDL", "FFDR", "FFDL"}
# Lying posture words (and Siemens' 4-letter truncations) -> DICOM suffix.
_POSTURE = {"SUPINE": "S", "SUPI": "S", "PRONE": "P", "PRON": "P", "RIGHT": "DR", "RIGH": "DR", "LEFT": "DL"}


def patient_sex(value: str) -> str:
    """M, F or O; anything else becomes empty (unknown), never a guess."""
    return _SEX.get(value.strip().upper(), "")


def laterality(value: str) -> str:
    """R or L; other values (``NO``, ``B``) say nothing DICOM can hold and become empty."""
    return _LATERALITY.get(value.strip().upper(), "")


def patient_position(value: str, head_first: bool | None) -> tuple[str | None, bool]:
    """A DICOM Patient Position and whether head-first had to be assumed.

    ``value`` may already be DICOM (``HFS``, or Philips' ``HF S``) or a posture word
    (``SUPINE``, ``PRON``…) that needs ``head_first`` from elsewhere; when that is unknown,
    head first is assumed (antodc's default) and the second item says so.
    """
    text = value.strip().upper().replace(" ", "")
    if text in _POSITIONS:
        return text, False
    posture = _POSTURE.get(text)
    if posture is None:
        return None, False
    prefix = "FF" if head_first is False else "HF"
    return prefix + posture, head_first is None
