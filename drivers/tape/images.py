"""Tape images: SIMH ``.tap``, AWSTAPE and raw ``dd`` copies of fixed-block tapes.

SIMH (Supnik, "SIMH Magtape Representation and Handling", 2006/2017/2022): a sequence of
32-bit little-endian words. ``0x00000000`` is a tape mark, ``0xFFFFFFFF`` end of medium,
``0xFFFFFFFE`` an erase gap (skipped), ``0xFFFEFFFF`` a half gap (skip two bytes). Any other
word starts a record: its top four bits are the class (0 good data, 8 data read with errors,
1-6 and 9-D private or reserved records, 7/E/F single-word markers), the low 28 bits the
length n; n data bytes follow, padded to an even count, then the same word again. Some tools
(E11 and others) write odd records unpadded; the reader learns which from the trailing word.

AWSTAPE (P/390, Hercules): each chunk has a 6-byte header: length of this chunk (16-bit LE),
length of the previous chunk (16-bit LE), flags byte 1 (0x80 start of record, 0x40 tape mark,
0x20 end of record) and flags byte 2 (0). A record longer than 65535 bytes spans chunks.

Raw ``dd`` images hold the records of one tape file back to back; the user gives the record
size. They have no structure to check, so they carry exactly one tape file.

Every check names the byte offset. A corrupt length word does not lose the rest of the tape:
with the ``skip`` policy the reader looks for the next place where the structure is valid
again (a record whose trailing word matches, followed by another valid object) and reports
the stretch in between as one BAD event.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from drivers.tape.records import (
    END,
    FILEMARK,
    RECORD,
    RECORDS,
    ErrorPolicy,
    ImageReader,
    RecordRun,
    TapeError,
    TapeEvent,
    _tuple_new,
)

log = logging.getLogger("drivers.tape")

_U32 = struct.Struct("<I")
_AWS = struct.Struct("<HHBB")

SIMH_EOM = 0xFFFFFFFF
SIMH_GAP = 0xFFFFFFFE
SIMH_HALF_GAP = 0xFFFEFFFF
SIMH_BAD_FLAG = 0x80000000
SIMH_LENGTH_MASK = 0x0FFFFFFF

AWS_NEWREC = 0x80
AWS_TAPEMARK = 0x40
AWS_ENDREC = 0x20
AWS_HEADER = 6
AWS_MAX_CHUNK = 0xFFFF

RESYNC_WINDOW = 2 << 20
RESYNC_LOOKAHEAD = 2 << 20  # records longer than this are not used to re-synchronise

_NOTHING = memoryview(b"")  # the reader's buffer view before the first read and after a jump


_RUN_PATTERNS: dict[int, re.Pattern] = {}
_RUN_PATTERNS_KEPT = 64  # distinct record lengths remembered (a tape has a few)


def _run_length(buf: memoryview, i: int, n: int, end: int) -> int:
    """How many records of length ``n`` (even) follow each other from ``i`` before ``end``,
    leading and trailing words both right: one regex match per run. The engine steps over a
    record's body with a pointer addition (a fixed-count ``.`` repeat) and compares the two
    words in C, so a run costs one call, not a Python step (or a slice) per record."""
    pattern = _RUN_PATTERNS.get(n)
    if pattern is None:
        if len(_RUN_PATTERNS) >= _RUN_PATTERNS_KEPT:
            _RUN_PATTERNS.clear()
        word = re.escape(_U32.pack(n))
        pattern = _RUN_PATTERNS[n] = re.compile(b"(?:%s.{%d}%s)++" % (word, n, word), re.DOTALL)
    m = pattern.match(buf, i, end)
    return 0 if m is None else (m.end() - i) // (n + 8)


def _le32(arr: np.ndarray, n: int) -> np.ndarray:
    """The little-endian 32-bit word starting at each of the first ``n`` byte offsets."""
    a = arr.astype(np.uint32)
    return a[:n] | (a[1:n + 1] << 8) | (a[2:n + 2] << 16) | (a[3:n + 3] << 24)


class SimhReader(ImageReader):
    kind = "simh"
    CHUNK = 2 << 20  # with read buffers reused, 2 MiB reads did best (bench/tape.py: 1, 1.5, 2, 4, 8 MiB)

    def __init__(self, path: str | Path, policy: ErrorPolicy = ErrorPolicy()):
        super().__init__(path, policy)
        self.unpadded: bool | None = None  # learned from the first odd-length record
        self.beyond_eot: tuple[int, int] | None = None  # (offset, bytes) left unread past the logical end

    def _word(self, offset: int) -> int | None:
        b = os.pread(self._f.fileno(), 4, offset)
        return _U32.unpack(b)[0] if len(b) == 4 else None

    def _trailer(self, pos: int, n: int, w: int) -> int | None:
        """Bytes the data occupies (n, or n+1 when padded) if the trailing word matches."""
        order = (n, n + 1) if self.unpadded else (n + (n & 1), n)
        for span in dict.fromkeys(order):
            end = pos + 4 + span
            if end + 4 <= self.size and self._word(end) == w:
                if n & 1 and self.unpadded is None:
                    self.unpadded = span == n
                    if self.unpadded:
                        log.info("event=tape_unpadded medium=%s note='odd records are not padded (E11 style)'",
                                 self.path)
                return span
        return None

    def events(self) -> Iterator[TapeEvent]:
        """One loop on purpose: it is the hot path (bench/tape.py). Good records of even
        length and tape marks are taken from the buffer without copies, a run of equal
        records (with its tape file's shorter last one) as one RECORDS event checked by one
        regex match; a record that runs past the buffer is read again from its start.
        Everything else (gaps, odd records, records larger than the buffer, damage, the end)
        goes through the slower branches below."""
        size, policy = self.size, self.policy
        unpack, chunk, maxrec, past_eot = _U32.unpack_from, self.CHUNK, policy.max_record, policy.past_eot
        new, fill = _tuple_new, self._fill
        pos, file, rec, marks = self.start_offset, self.start_file, 0, 0
        buf, base = _NOTHING, pos  # buf: a read-only view of a read buffer (ImageReader._fill)
        while True:
            i = pos - base
            # Fast path: tape marks, and good records of even length; where several of the same
            # length follow, one RECORDS event for the run.
            end = len(buf)
            while i + 4 <= end:
                w = unpack(buf, i)[0]
                if w & 0xF0000001 or w > maxrec:
                    break
                if not w:
                    if marks and not past_eot:
                        break  # a second mark in a row: the end (below)
                    yield new(TapeEvent, (FILEMARK, None, file, rec, base + i, None))
                    file, rec, marks, i = file + 1, 0, 1, i + 4
                    continue
                j = i + 4 + w
                if j + 4 > end:  # the record runs past the buffer: read again from its start
                    if base + end >= size or w + 8 > chunk:
                        break
                    base += i
                    self.position = base
                    buf = _NOTHING  # (so that a buffer no one holds can be read into again)
                    buf = fill(base)
                    i, end = 0, len(buf)
                    continue
                if unpack(buf, j)[0] != w:
                    break
                count = _run_length(buf, i, w, end) if j + 8 <= end and unpack(buf, j + 4)[0] == w else 1
                if count > 1:
                    k, last = i + count * (w + 8), w
                    t = unpack(buf, k)[0] if k + 4 <= end else 0
                    if 0 < t < w and not t & 1 and k + 8 + t <= end and unpack(buf, k + 4 + t)[0] == t:
                        count, last, k = count + 1, t, k + 8 + t  # the tape file's shorter last record
                    yield new(TapeEvent, (RECORDS, RecordRun(buf, i + 4, w, w + 8, count, 4, last), file, rec,
                                          base + i, None))
                    rec, marks, i = rec + count, 0, k
                else:
                    yield new(TapeEvent, (RECORD, buf[i + 4:j], file, rec, base + i, None))
                    rec, marks, i = rec + 1, 0, j + 4
            pos = base + i
            self.position = pos
            if len(buf) - i < 4:
                if pos >= size:
                    yield TapeEvent(END, None, file, rec, pos)
                    return
                buf = _NOTHING
                buf = fill(pos)  # re-reading a partial record beats copying the buffer
                base, i = pos, 0
                if len(buf) < 4:
                    yield self.bad(f"image ends inside a length word ({len(buf)} of 4 bytes)", file, rec, pos, buf)
                    yield TapeEvent(END, None, file, rec, pos, "truncated image")
                    return
                continue
            w = unpack(buf, i)[0]
            cls = w >> 28
            if w == 0:
                marks += 1
                if marks == 2 and not past_eot:
                    self._note_beyond_eot(pos + 4)
                    yield TapeEvent(END, None, file, rec, pos)
                    return
                yield TapeEvent(FILEMARK, None, file, rec, pos)
                file, rec, pos = file + 1, 0, pos + 4
            elif w == SIMH_EOM:
                yield TapeEvent(END, None, file, rec, pos)
                return
            elif w == SIMH_GAP:
                pos += 4
            elif w == SIMH_HALF_GAP:
                pos += 2
            elif cls in (7, 0xE, 0xF):
                log.warning("event=tape_marker_skipped medium=%s offset=%d word=0x%08x", self.path, pos, w)
                pos += 4
            else:  # a bracketed record: tape data (class 0, or 8: read with errors) or private (1-6, 9-D)
                n = w & SIMH_LENGTH_MASK
                tape_data = cls == 0 or cls == 8
                if tape_data and i + 9 + n > len(buf) and n + 9 <= chunk and base + len(buf) < size:
                    buf = _NOTHING
                    buf = fill(pos)  # bring the whole record into the buffer
                    base = pos
                    continue
                believed = 0 < n <= maxrec or not tape_data  # private records are skipped, never read
                span = self._trailer(pos, n, w) if believed and pos + 8 + n <= size else None
                if span is None:
                    bad, nxt = self._corrupt(pos, w, n, file, rec)
                    yield bad
                    if nxt is None:
                        yield TapeEvent(END, None, file, rec + 1, pos, bad.error)
                        return
                    pos, rec, marks = nxt, rec + 1, 0
                    buf, base = _NOTHING, pos
                    continue
                if not tape_data:
                    log.warning("event=tape_private_record_skipped medium=%s offset=%d class=%d bytes=%d",
                                self.path, pos, cls, n)
                    pos += 8 + span
                    continue
                start = pos + 4
                if i + 4 + n <= len(buf):
                    data = buf[i + 4:i + 4 + n]
                else:
                    data = self._read_at(start, n)
                    buf, base = _NOTHING, start + n
                if cls == 0:
                    yield TapeEvent(RECORD, data, file, rec, pos)
                else:
                    yield self.bad("record flagged as read with errors when the image was made", file, rec, pos, data)
                    if policy.on_error == "stop":
                        yield TapeEvent(END, None, file, rec + 1, pos, "stopped at a bad record (policy stop)")
                        return
                pos, rec, marks, data = start + span + 4, rec + 1, 0, None

    def _read_at(self, offset: int, n: int) -> memoryview:
        """``n`` bytes at ``offset`` (already checked to lie inside the image)."""
        data = bytearray(n)
        got = os.preadv(self._f.fileno(), [data], offset)
        if got != n:
            raise TapeError(f"short read: {got} of {n} bytes", offset=offset)
        return memoryview(data).toreadonly()

    def _note_beyond_eot(self, offset: int) -> None:
        left = self.size - offset
        tail = os.pread(self._f.fileno(), 64, offset)
        words = {w for (w,) in struct.iter_unpack("<I", tail[: len(tail) // 4 * 4])}
        if left > 0 and not (left <= 64 and left % 4 == 0 and words <= {0, SIMH_EOM, SIMH_GAP}):
            self.beyond_eot = (offset, left)
            log.warning("event=tape_data_beyond_eot medium=%s offset=%d bytes=%d "
                        "note='two tape marks end the recorded data; read past them with past_eot'",
                        self.path, offset, left)

    def _corrupt(self, pos: int, w: int, n: int, file: int, rec: int) -> tuple[TapeEvent, int | None]:
        """A length word that does not fit: the BAD event, and where reading resumes (or None).

        The BAD event carries the raw bytes skipped (up to ``max_record``), so an extract of
        the damaged tape file keeps everything that was there.
        """
        left = self.size - pos - 4
        if n > left:
            why = (f"length word 0x{w:08x} says {n} bytes but only {max(left, 0)} remain: "
                   "truncated image or corrupt length word")
        elif n > self.policy.max_record:
            why = (f"length word 0x{w:08x} says {n} bytes, more than the largest record believed "
                   f"({self.policy.max_record})")
        elif n == 0:
            why = f"length word 0x{w:08x}: an error-flagged record of length 0"
        else:
            trail = self._word(pos + 4 + n + (n & 1))
            why = (f"corrupt length word: 0x{w:08x} at the start of the record, "
                   + (f"0x{trail:08x} where its copy should be" if trail is not None else "no copy before the end"))
        return _damaged(self, why, pos, pos, file, rec, self._simh_candidates, self._simh_valid,
                        RESYNC_LOOKAHEAD, "record")

    # -- re-synchronisation after corruption ---------------------------------------------

    def _simh_candidates(self, start: int, arr: np.ndarray, limit: int) -> np.ndarray:
        """Offsets in the window where a record word is followed, n bytes on, by its copy."""
        words = _le32(arr, limit)
        n = words & SIMH_LENGTH_MASK
        cls = words >> 28
        ok = ((cls == 0) | (cls == 8)) & (n > 0) & (n <= min(self.policy.max_record, RESYNC_LOOKAHEAD))
        idx = np.flatnonzero(ok)
        nn = n[idx].astype(np.int64)
        match = np.zeros(len(idx), dtype=bool)
        for span in (nn + (nn & 1), nn):
            t = idx + 4 + span
            inside = t + 4 <= len(arr)
            m = np.zeros(len(idx), dtype=bool)
            m[inside] = _le32_at(arr, t[inside]) == words[idx[inside]]
            match |= m
        found = idx[match]
        # A tape mark right before such a record is where to resume (the filemark counts).
        marks = found[found >= 4] - 4
        marks = marks[words[marks] == 0]
        return np.union1d(found, marks)

    def _simh_valid(self, p: int) -> bool:
        """A record starts at ``p``, and a valid object (or the end) follows it."""
        w = self._word(p)
        if w == 0:
            return self._simh_valid(p + 4) and self._word(p + 4) != 0
        if w is None or w >> 28 not in (0, 8):
            return False
        n = w & SIMH_LENGTH_MASK
        if n == 0 or n > self.policy.max_record or p + 8 + n > self.size:
            return False
        span = self._trailer(p, n, w)
        if span is None:
            return False
        q = p + 8 + span
        if q == self.size:
            return True
        nw = self._word(q)
        if nw is None:
            return False
        if nw in (0, SIMH_EOM, SIMH_GAP):
            return True
        if nw >> 28 in (0, 8):
            m = nw & SIMH_LENGTH_MASK
            return 0 < m <= self.policy.max_record and q + 8 + m <= self.size and self._trailer(q, m, nw) is not None
        return False


def _le32_at(arr: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    a = arr.astype(np.uint32)
    return a[offsets] | (a[offsets + 1] << 8) | (a[offsets + 2] << 16) | (a[offsets + 3] << 24)


def _damaged(reader: ImageReader, why: str, pos: int, start: int, file: int, rec: int, candidates: Callable,
             valid: Callable[[int], bool], lookahead: int, unit: str) -> tuple[TapeEvent, int | None]:
    """The BAD event for damage found at ``pos`` in the record that began at ``start`` (its
    raw bytes up to where reading resumes, at most ``max_record``), and where reading resumes:
    the next valid ``unit`` under the skip policy, None under stop or when none is left."""
    nxt = None
    if reader.policy.on_error == "skip":
        nxt = _resync(reader, pos + 1, candidates, valid, lookahead)
    stop = reader.size if nxt is None else nxt
    raw = reader._read_at(start, min(stop - start, reader.policy.max_record))
    if reader.policy.on_error == "stop":
        why += " (policy stop)"
    elif nxt is None:
        why += f"; no valid {unit} after it: the last {reader.size - pos} bytes are unreadable"
    else:
        why += (f"; {nxt - pos} bytes skipped, reading again at byte offset {nxt} "
                "(tape file numbers after this point may be too low)")
    return reader.bad(why, file, rec, start, raw), nxt


def _resync(reader: ImageReader, start: int, candidates: Callable, valid: Callable[[int], bool],
            lookahead: int) -> int | None:
    """The first offset >= ``start`` where ``valid`` holds, scanning window by window.

    ``candidates(window_start, bytes_as_array, n)`` narrows the first ``n`` byte offsets of a
    window at once (NumPy); ``valid`` confirms one. Runs only after corruption.
    """
    fd, size = reader._f.fileno(), reader.size
    p = start
    while p < size:
        raw = os.pread(fd, RESYNC_WINDOW + lookahead, p)
        arr = np.frombuffer(raw, dtype=np.uint8)
        limit = min(RESYNC_WINDOW, len(arr) - 3)
        if limit <= 0:
            return None
        for k in candidates(p, arr, limit):
            if valid(p + int(k)):
                return p + int(k)
        p += limit
    return None


class AwsReader(ImageReader):
    kind = "aws"

    def __init__(self, path: str | Path, policy: ErrorPolicy = ErrorPolicy()):
        super().__init__(path, policy)
        self.beyond_eot: tuple[int, int] | None = None

    _read_at = SimhReader._read_at

    def _header(self, offset: int) -> tuple[int, int, int, int] | None:
        b = os.pread(self._f.fileno(), AWS_HEADER, offset)
        return _AWS.unpack(b) if len(b) == AWS_HEADER else None

    def events(self) -> Iterator[TapeEvent]:
        size, policy, fd = self.size, self.policy, self._f.fileno()
        unpack, chunk = _AWS.unpack_from, self.CHUNK
        pos, file, rec, marks = self.start_offset, self.start_file, 0, 0
        parts: list = []
        rec_start, total, in_record = pos, 0, False
        buf, base = b"", pos
        mv = memoryview(buf)
        while True:
            self.position = pos
            i = pos - base
            if len(buf) - i < AWS_HEADER + AWS_MAX_CHUNK and base + len(buf) < size:
                buf = os.pread(fd, chunk, pos)  # a whole chunk always fits from here
                base, i, mv = pos, 0, memoryview(buf)
            if i >= len(buf):
                if in_record:
                    yield self.bad("image ends inside a record (no end-of-record chunk)", file, rec, rec_start,
                                   self._read_at(rec_start, min(pos - rec_start, policy.max_record)))
                    yield TapeEvent(END, None, file, rec + 1, pos, "truncated image")
                    return
                yield TapeEvent(END, None, file, rec, pos)
                return
            if len(buf) - i < AWS_HEADER:
                start = rec_start if in_record else pos
                yield self.bad(f"image ends inside a chunk header ({len(buf) - i} of 6 bytes)", file, rec, start,
                               self._read_at(start, min(size - start, policy.max_record)))
                yield TapeEvent(END, None, file, rec, pos, "truncated image")
                return
            cur, prv, f1, f2 = unpack(buf, i)
            problem = _aws_problem(cur, f1, f2, in_record)
            q = i + AWS_HEADER + cur
            if problem is None and pos + AWS_HEADER + cur > size:
                problem = f"chunk of {cur} bytes runs past the end of the image ({size - pos - AWS_HEADER} remain)"
            elif problem is None and q + AWS_HEADER <= len(buf):
                problem = _aws_follows(cur, f1, unpack(buf, q), base + q)
            if problem is None and total + cur > policy.max_record:
                problem = f"record longer than the largest record believed ({policy.max_record})"
            if problem is not None:
                parts, total = [], 0
                bad, nxt = self._corrupt(pos, problem, file, rec, rec_start if in_record else pos)
                yield bad
                if nxt is None:
                    yield TapeEvent(END, None, file, rec + 1, pos, bad.error)
                    return
                pos, rec, marks, in_record = nxt, rec + 1, 0, False
                buf, base, mv = b"", pos, memoryview(b"")
                continue
            if f1 & AWS_TAPEMARK:
                marks += 1
                if marks == 2 and not policy.past_eot:
                    self._note_beyond_eot(pos + AWS_HEADER)
                    yield TapeEvent(END, None, file, rec, pos)
                    return
                yield TapeEvent(FILEMARK, None, file, rec, pos)
                file, rec, pos = file + 1, 0, pos + AWS_HEADER
                continue
            marks = 0
            if f1 & AWS_NEWREC:
                rec_start = pos
            data = mv[i + AWS_HEADER:i + AWS_HEADER + cur]
            if f1 & AWS_ENDREC and not parts:
                yield TapeEvent(RECORD, data, file, rec, rec_start)
                rec, in_record = rec + 1, False
            elif f1 & AWS_ENDREC:
                parts.append(data)
                yield TapeEvent(RECORD, b"".join(parts), file, rec, rec_start)
                parts, total, rec, in_record = [], 0, rec + 1, False
            else:
                parts.append(data)  # the view keeps its chunk alive; no copy needed
                total += cur
                in_record = True
            pos += AWS_HEADER + cur

    def _note_beyond_eot(self, offset: int) -> None:
        left = self.size - offset
        tail = os.pread(self._f.fileno(), 60, offset)
        marks_only = left <= 60 and left % AWS_HEADER == 0 and all(
            _AWS.unpack_from(tail, k)[2] == AWS_TAPEMARK for k in range(0, left, AWS_HEADER))
        if left > 0 and not marks_only:
            self.beyond_eot = (offset, left)
            log.warning("event=tape_data_beyond_eot medium=%s offset=%d bytes=%d "
                        "note='two tape marks end the recorded data; read past them with past_eot'",
                        self.path, offset, left)

    def _corrupt(self, pos: int, why: str, file: int, rec: int, start: int) -> tuple[TapeEvent, int | None]:
        """A chunk header that cannot be right: the BAD event (raw bytes from the start of the
        record it broke) and where reading resumes, or None."""
        why = f"corrupt chunk header at byte offset {pos}: {why}"
        return _damaged(self, why, pos, start, file, rec, self._aws_candidates, self._aws_valid,
                        AWS_HEADER * 2 + AWS_MAX_CHUNK, "chunk")

    def _aws_candidates(self, start: int, arr: np.ndarray, limit: int) -> np.ndarray:
        """Offsets in the window that look like a record start or a tape mark."""
        k = np.arange(min(limit, len(arr) - 5))
        a = arr.astype(np.int64)
        cur = a[k] | (a[k + 1] << 8)
        f1, f2 = a[k + 4], a[k + 5]
        starts = ((f1 == AWS_NEWREC) | (f1 == AWS_NEWREC | AWS_ENDREC)) & (cur > 0)
        marks = (f1 == AWS_TAPEMARK) & (cur == 0)
        return k[(f2 == 0) & (starts | marks)]

    def _aws_valid(self, p: int) -> bool:
        """A record start or tape mark at ``p`` that the following header agrees with."""
        h = self._header(p)
        if h is None:
            return False
        cur, _, f1, f2 = h
        if _aws_problem(cur, f1, f2, False) is not None:
            return False
        q = p + AWS_HEADER + cur
        if q == self.size:
            return True
        nxt = self._header(q)
        if nxt is None or _aws_follows(cur, f1, nxt, q) is not None:
            return False
        in_record = bool(f1 & AWS_NEWREC and not f1 & AWS_ENDREC)
        return _aws_problem(nxt[0], nxt[2], nxt[3], in_record) is None


def _aws_problem(cur: int, f1: int, f2: int, in_record: bool) -> str | None:
    """Why a chunk header cannot be right where it stands, or None."""
    if f2 != 0 or f1 & 0x1F:
        return f"unknown flags 0x{f1:02x} 0x{f2:02x} (compressed HET chunks are not supported)"
    if f1 & AWS_TAPEMARK:
        if cur != 0 or f1 != AWS_TAPEMARK:
            return f"tape mark with length {cur} and flags 0x{f1:02x}"
        if in_record:
            return "tape mark inside a record"
        return None
    if cur == 0:
        return "data chunk of length 0"
    if f1 & AWS_NEWREC and in_record:
        return "a new record starts before the previous one ended"
    if not f1 & AWS_NEWREC and not in_record:
        return "continuation chunk without a record start"
    return None


def _aws_follows(cur: int, f1: int, nxt: tuple[int, int, int, int], at: int) -> str | None:
    """Why the header after a chunk (at byte offset ``at``) contradicts it, or None.

    The next header must have known flags and name this chunk's length as 'previous'. Around
    tape marks writers differ (some put 0 there), so a tape mark on either side is lenient.
    When they disagree either header may be the corrupt one: the record is not trusted.
    """
    ncur, nprv, nf1, nf2 = nxt
    if nf2 != 0 or nf1 & 0x1F:
        return (f"the header after this {cur}-byte chunk, at byte offset {at}, has unknown flags "
                f"0x{nf1:02x} 0x{nf2:02x} (this chunk's length or that header is corrupt)")
    if nprv != cur and not (f1 & AWS_TAPEMARK or nf1 & AWS_TAPEMARK):
        return (f"this chunk holds {cur} bytes but the header after it, at byte offset {at}, "
                f"says the previous held {nprv}")
    return None


class RawReader(ImageReader):
    """A ``dd`` copy of one fixed-block tape file: records of ``block_size`` bytes back to back."""

    kind = "raw"

    def __init__(self, path: str | Path, block_size: int, policy: ErrorPolicy = ErrorPolicy()):
        if block_size <= 0 or block_size > policy.max_record:
            raise TapeError(f"block size {block_size} out of range 1..{policy.max_record}")
        super().__init__(path, policy)
        self.block_size = block_size

    def seek_file(self, file: int, offset: int | None = None) -> None:
        if file != 0 and offset != self.size:
            raise TapeError(f"a raw image holds one tape file; there is no tape file {file}")
        super().seek_file(file, offset if offset is not None else 0)

    def events(self) -> Iterator[TapeEvent]:
        bs, size = self.block_size, self.size
        pos = self.start_offset
        if self.start_file:
            yield TapeEvent(END, None, self.start_file, 0, pos)
            return
        per_read = max(1, self.CHUNK // bs) * bs
        self._f.seek(pos)
        rec = pos // bs
        while pos < size:
            self.position = pos
            buf = self._f.read(per_read)
            if not buf:
                break
            mv = memoryview(buf)
            whole = len(buf) // bs
            if whole:
                yield TapeEvent(RECORDS, RecordRun(mv, 0, bs, bs, whole), 0, rec, pos)
                rec += whole
            if len(buf) % bs:
                data = mv[whole * bs:]
                log.warning("event=tape_short_block medium=%s offset=%d bytes=%d block_size=%d",
                            self.path, pos + whole * bs, len(data), bs)
                yield TapeEvent(RECORD, data, 0, rec, pos + whole * bs)
                rec += 1
            pos += len(buf)
        self.position = pos
        yield TapeEvent(END, None, 0, rec, pos)


# -- recognising an image by its first bytes ----------------------------------------------


def looks_like_simh(head: bytes, size: int) -> bool:
    """The first objects parse as SIMH and at least one record's trailing word matches."""
    pos, records = 0, 0
    for _ in range(16):
        if pos + 4 > len(head):
            break
        w = _U32.unpack_from(head, pos)[0]
        if w == 0 or w == SIMH_GAP:
            pos += 4
            continue
        if w == SIMH_EOM:
            return records > 0
        if w >> 28 not in (0, 8):
            return False
        n = w & SIMH_LENGTH_MASK
        for span in dict.fromkeys((n + (n & 1), n)):
            end = pos + 4 + span
            if end + 4 <= len(head) and _U32.unpack_from(head, end)[0] == w:
                pos, records = end + 4, records + 1
                break
        else:
            return records > 0 and pos + 8 + n <= size
    return records > 0


def looks_like_aws(head: bytes, size: int) -> bool:
    """The first chunk headers chain: flags make sense and each names its predecessor's length."""
    pos, chunks, in_record = 0, 0, False
    prev: tuple[int, int] | None = None
    for _ in range(16):
        if pos == size and chunks:
            return True
        if pos + AWS_HEADER > len(head):
            break
        h = _AWS.unpack_from(head, pos)
        cur, prv, f1, f2 = h
        if chunks == 0 and prv != 0:
            return False
        if _aws_problem(cur, f1, f2, in_record) is not None:
            return False
        if prev is not None and _aws_follows(prev[0], prev[1], h, pos) is not None:
            return False
        if not f1 & AWS_TAPEMARK:
            in_record = not f1 & AWS_ENDREC
        prev = (cur, f1)
        pos += AWS_HEADER + cur
        chunks += 1
    return chunks >= 2 or (chunks == 1 and pos == size)
