"""Tape image readers against images built byte by byte from the format descriptions."""

from __future__ import annotations

import os
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.tape.medium import detect_kind, open_tape
from drivers.tape.records import BAD, END, FILEMARK, RECORD, RECORDS, ErrorPolicy, RecordRun, TapeError, records
from tests.support.tape_bytes import SIMH_EOM, SIMH_GAP, SIMH_MARK, aws_chunk, aws_tape, simh_record, simh_tape


def events(path, kind="auto", **kw):
    if kind == "auto" and path.suffix in (".tap", ".aws"):
        kind = {".tap": "simh", ".aws": "aws"}[path.suffix]
    return [(e.kind, None if e.data is None else bytes(e.data), e.file, e.record, e.offset, e.error)
            for e in records(open_tape(path, kind, **kw).events())]


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- SIMH ------------------------------------------------------------------------------------


def test_simh_records_marks_padding_gaps_and_eom(tmp_path):
    a, b, c = b"A" * 10, b"odd" * 7, b"C" * 4
    parts = [simh_record(a), SIMH_GAP, simh_record(b), SIMH_MARK, simh_record(c), SIMH_MARK, SIMH_MARK, SIMH_EOM]
    p = write(tmp_path, "t.tap", b"".join(parts))
    off = [sum(len(x) for x in parts[:k]) for k in range(len(parts))]
    assert detect_kind(p) == "simh"
    assert events(p, "auto") == [
        (RECORD, a, 0, 0, off[0], None),
        (RECORD, b, 0, 1, off[2], None),  # the gap is skipped; the odd record was padded
        (FILEMARK, None, 0, 2, off[3], None),
        (RECORD, c, 1, 0, off[4], None),
        (FILEMARK, None, 1, 1, off[5], None),
        (END, None, 2, 0, off[6], None),  # two tape marks: the end of the recorded data
    ]


def test_simh_unpadded_odd_records_are_read_too(tmp_path):
    recs = [b"x" * 5, b"y" * 7, b"z" * 8]
    p = write(tmp_path, "e11.tap", simh_tape([recs], pad=False))
    reader = open_tape(p)
    got = [bytes(e.data) for e in records(reader.events()) if e.kind == RECORD]
    assert got == recs
    assert reader.unpadded is True


def test_simh_runs_of_equal_records_give_every_record(tmp_path):
    # Many equal records (read as runs; more than one read buffer) between odd and short ones.
    files = [[bytes([i % 256]) * 4096 for i in range(300)] + [b"tail"], [b"odd" * 3],
             [os.urandom(1000) for _ in range(3)]]
    p = write(tmp_path, "runs.tap", simh_tape(files))
    got = events(p)
    recs = [(f, r, d) for k, d, f, r, _, _ in got if k == RECORD]
    expected = [(fi, ri, d) for fi, recs_ in enumerate(files) for ri, d in enumerate(recs_)]
    assert recs == expected
    # Each record's offset is where its length word stands.
    pos, offsets = 0, []
    for recs_ in files:
        for d in recs_:
            offsets.append(pos)
            pos += 8 + len(d) + len(d) % 2
        pos += 4
    assert [o for k, _, _, _, o, _ in got if k == RECORD] == offsets
    assert [(f, r) for k, _, f, r, _, _ in got if k == FILEMARK] == [(0, 301), (1, 1), (2, 3)]


def test_simh_error_flagged_record_is_bad_and_policy_decides(tmp_path):
    good, flagged = b"G" * 8, b"partly read"
    img = simh_record(good) + simh_record(flagged, bad=True) + simh_record(good) + SIMH_MARK + SIMH_MARK
    p = write(tmp_path, "bad.tap", img)
    skip = events(p)
    assert [k for k, *_ in skip] == [RECORD, BAD, RECORD, FILEMARK, END]
    assert skip[1][1] == flagged and skip[1][4] == 16 and "errors" in skip[1][5]
    stop = events(p, policy=ErrorPolicy(on_error="stop"))
    assert [k for k, *_ in stop] == [RECORD, BAD, END]
    assert "policy stop" in stop[-1][5]


def test_simh_corrupt_length_word_names_offset_and_resynchronises(tmp_path):
    recs = [os.urandom(2048) for _ in range(6)]
    img = bytearray(simh_tape([recs[:3], recs[3:]], eom=False))
    bad_at = 2 * (2048 + 8)  # the leading word of record 2, the last of tape file 0
    img[bad_at:bad_at + 4] = struct.pack("<I", 1000)  # a length whose copy is not where it should be
    p = write(tmp_path, "corrupt.tap", bytes(img))
    got = events(p)
    bad = [e for e in got if e[0] == BAD]
    assert len(bad) == 1
    _, raw, file, rec, offset, why = bad[0]
    mark_at = bad_at + 2048 + 8
    assert (file, rec, offset) == (0, 2, bad_at)
    assert "corrupt length word" in why and f"reading again at byte offset {mark_at}" in why
    assert raw == bytes(img[bad_at:mark_at])  # the skipped bytes are kept for the extract
    # Reading goes on at the tape mark after the damaged record: the second file keeps its number.
    assert [(k, f) for k, _, f, *_ in got] == [(RECORD, 0), (RECORD, 0), (BAD, 0), (FILEMARK, 0)] + \
        [(RECORD, 1)] * 3 + [(FILEMARK, 1), (END, 2)]
    assert [d for k, d, *_ in got if k == RECORD] == recs[:2] + recs[3:]
    stop = events(p, policy=ErrorPolicy(on_error="stop"))
    assert [k for k, *_ in stop] == [RECORD, RECORD, BAD, END]
    assert stop[-1][4] == bad_at and "policy stop" in stop[-1][5]


def test_simh_truncated_image_is_reported_with_its_offset(tmp_path):
    img = simh_tape([[b"a" * 100, b"b" * 100]])
    cut = 108 + 50  # half-way into the second record
    p = write(tmp_path, "cut.tap", img[:cut])
    got = events(p)
    assert [k for k, *_ in got] == [RECORD, BAD, END]
    _, raw, file, rec, offset, why = got[1]
    assert (file, rec, offset) == (0, 1, 108)
    assert "truncated image" in why and "only 46 remain" in why
    assert raw == img[108:cut]
    # Cut inside a length word.
    p2 = write(tmp_path, "cut2.tap", img[:110])
    got2 = events(p2)
    assert [k for k, *_ in got2] == [RECORD, BAD, END] and "inside a length word" in got2[1][5]


def test_simh_data_beyond_the_logical_end_is_noted_and_readable_on_request(tmp_path):
    old = simh_record(b"old data" * 4)
    p = write(tmp_path, "eot.tap", simh_record(b"new") + SIMH_MARK + SIMH_MARK + old + SIMH_MARK)
    reader = open_tape(p)
    assert [e.kind for e in reader.events()] == [RECORD, FILEMARK, END]
    assert reader.beyond_eot == (len(simh_record(b"new")) + 8, len(old) + 4)
    past = events(p, policy=ErrorPolicy(past_eot=True))
    assert [(k, f) for k, _, f, *_ in past] == [(RECORD, 0), (FILEMARK, 0), (FILEMARK, 1), (RECORD, 2),
                                                (FILEMARK, 2), (END, 3)]


def test_simh_length_word_larger_than_the_image_never_allocates_it(tmp_path):
    p = write(tmp_path, "huge.tap", struct.pack("<I", 0x0FFFFFF0) + b"x" * 64)
    got = events(p)
    assert [k for k, *_ in got] == [BAD, END]
    assert "268435440 bytes but only 64 remain" in got[0][5]


def simh_layout(files: list[list[bytes]], gaps: set[tuple[int, int]] = frozenset(), pad: bool = True):
    """A SIMH image built from the format description, and the events a reader must give for
    it (offsets counted here, piece by piece): records, a mark after each file, END at the
    second mark. ``gaps`` puts an erase gap before those (file, record)s."""
    parts, expected, pos = [], [], 0
    for f, recs in enumerate(files):
        for r, data in enumerate(recs):
            if (f, r) in gaps:
                parts.append(SIMH_GAP)
                pos += 4
            expected.append((RECORD, data, f, r, pos, None))
            parts.append(simh_record(data, pad=pad))
            pos += len(parts[-1])
        expected.append((FILEMARK, None, f, len(recs), pos, None))
        parts.append(SIMH_MARK)
        pos += 4
    expected.append((END, None, len(files), 0, pos, None))
    return b"".join(parts + [SIMH_MARK, SIMH_EOM]), expected


def read_all(path, chunk: int | None = None, **kw):
    reader = open_tape(path, "simh", **kw)
    if chunk:
        reader.CHUNK = chunk  # small read buffers: records and runs cross their ends often
    return [(e.kind, None if e.data is None else bytes(e.data), e.file, e.record, e.offset, e.error)
            for e in records(reader.events())]


@pytest.mark.parametrize("k", [7, 260])  # in the first read buffer, and in the second
@pytest.mark.parametrize("byte", range(4))
@pytest.mark.parametrize("word", ["leading", "trailing"])
def test_simh_one_wrong_byte_inside_a_run_ends_the_run_there(tmp_path, word, byte, k):
    # 300 equal records (1.2 MB, read as runs); one length word of record k differs in one
    # byte. The records before it come whole, record k is BAD with its raw bytes, reading
    # goes on at record k + 1 and every later record keeps its number and offset.
    rng = random.Random(byte * 1000 + k)
    recs = [rng.randbytes(4096) for _ in range(300)]
    img, expected = simh_layout([recs])
    img = bytearray(img)
    start, stride = k * 4104, 4104
    img[start + (0 if word == "leading" else 4 + 4096) + byte] ^= 0x01
    p = write(tmp_path, "run.tap", bytes(img))
    got = read_all(p)
    assert got[:k] == expected[:k] and got[k + 1:] == expected[k + 1:]
    kind, raw, file, rec, offset, why = got[k]
    assert (kind, file, rec, offset) == (BAD, 0, k, start)
    assert raw == bytes(img[start:start + stride])
    assert f"reading again at byte offset {start + stride}" in why
    stop = read_all(p, policy=ErrorPolicy(on_error="stop"))
    assert stop[:k] == expected[:k] and [e[0] for e in stop[k:]] == [BAD, END]


def test_simh_runs_of_many_record_lengths_and_buffer_ends(tmp_path):
    # Runs of 2 to 5 records of 90 different even lengths (more lengths than the reader
    # remembers run patterns for), and lengths that fill a small read buffer exactly.
    rng = random.Random(5)
    files = [[bytes([n % 251]) * n for _ in range(2 + n % 4)] for n in range(2, 182, 2)]
    files.append([rng.randbytes(500 - 8) for _ in range(9)])  # records of exactly 500 bytes with words
    img, expected = simh_layout(files)
    p = write(tmp_path, "lengths.tap", img)
    assert read_all(p) == expected
    assert read_all(p, chunk=500) == expected
    assert read_all(p, chunk=1000) == expected


def test_simh_fixed_blocks_and_a_short_last_one_come_as_one_run(tmp_path):
    # A tape file written in fixed blocks ends with a short block: one RECORDS event holds
    # them all, the last one shorter; split into records each keeps its number and offset.
    # An odd-length last block is padded on the tape, so it comes on its own.
    blocks = [bytes([k]) * 2048 for k in range(5)] + [b"end of file " * 3]  # 36 bytes
    odd = [b"x" * 2048] * 3 + [b"odd"]
    img, expected = simh_layout([blocks, blocks[:2], odd])
    p = write(tmp_path, "blocks.tap", img)
    got = list(open_tape(p, "simh").events())
    assert [e.kind for e in got] == [RECORDS, FILEMARK, RECORDS, FILEMARK, RECORDS, RECORD, FILEMARK, END]
    run = got[0].data
    assert (len(run), run.size, run.last, run.nbytes) == (6, 2048, 36, 5 * 2048 + 36)
    assert [bytes(r) for r in run] == blocks and bytes(run[5]) == blocks[5] and run.tobytes() == b"".join(blocks)
    assert (got[2].data.count, got[2].data.last) == (2, 2048)
    assert read_all(p) == expected


def test_record_run_is_a_sequence_of_its_records():
    # Three 4-byte records with 2-byte words around them, the last one 2 bytes; and the same
    # back to back (a raw image's blocks, stride == size).
    buf = memoryview(b"..AAAA....BBBB....CC..")
    run = RecordRun(buf, 2, 4, 8, 3, 2, last=2)
    assert len(run) == 3 and run.nbytes == 10
    assert [bytes(r) for r in run] == [b"AAAA", b"BBBB", b"CC"] and bytes(run[2]) == b"CC"
    assert run.tobytes() == b"".join(run) == b"AAAABBBBCC"
    parts: list = []
    parts.extend(run)
    assert [bytes(r) for r in parts] == [b"AAAA", b"BBBB", b"CC"]
    with pytest.raises(IndexError):
        run[3]
    flat = RecordRun(memoryview(b"AAAABBBBCC"), 0, 4, 4, 3, last=2)
    assert flat.tobytes() == b"AAAABBBBCC" and [bytes(r) for r in flat] == [b"AAAA", b"BBBB", b"CC"]
    assert RecordRun(buf, 2, 4, 8, 2).nbytes == 8  # every record of full size by default


def test_simh_record_views_stay_intact_while_held_and_buffers_are_reused_when_not(tmp_path):
    # Records are views of the reader's read buffers. A consumer that keeps them (as
    # tape_files does until a tape file ends) must find them unchanged however far reading
    # went; one that lets them go lets the reader read into the same few buffers again.
    rng = random.Random(9)
    files = [[rng.randbytes(700) for _ in range(5)] + [rng.randbytes(rng.randrange(2, 700, 2))]
             for _ in range(40)]  # about 150 KB: 150 reads of a 1000-byte buffer
    img, _ = simh_layout(files)
    p = write(tmp_path, "views.tap", img)
    expected = [r for recs in files for r in recs]

    reader = open_tape(p, "simh")
    reader.CHUNK = 1000
    kept = [e.data for e in records(reader.events()) if e.kind == RECORD]
    assert [bytes(v) for v in kept] == expected
    assert len({id(v.obj) for v in kept}) > 100  # every buffer was still held: a new one each time

    reader = open_tape(p, "simh")
    reader.CHUNK = 1000
    got, buffers = [], {}
    for e in records(reader.events()):
        if e.kind == RECORD:
            got.append(bytes(e.data))
            buffers[id(e.data.obj)] = e.data.obj  # the buffer itself (no view of it): ids stay unique
    assert got == expected and len(buffers) <= reader.KEPT_BUFFERS


@st.composite
def simh_tapes(draw):
    lengths = st.one_of(st.sampled_from([2, 4, 10, 64]), st.integers(1, 300))
    files = draw(st.lists(st.lists(lengths, min_size=1, max_size=30), min_size=1, max_size=4))
    data = [[bytes([(f * 31 + r) % 256]) * n for r, n in enumerate(recs)] for f, recs in enumerate(files)]
    spots = [(f, r) for f, recs in enumerate(files) for r in range(len(recs))]
    gaps = set(draw(st.lists(st.sampled_from(spots), max_size=3)))
    return data, gaps, draw(st.booleans()), draw(st.sampled_from([None, 64, 200, 333, 1024]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(simh_tapes())
def test_simh_reader_gives_every_record_of_any_layout(tmp_path, tape):
    # Runs, single records, odd lengths (padded or not), gaps, records longer than the read
    # buffer and buffer ends anywhere: the same events as the layout says, wherever they fall.
    files, gaps, pad, chunk = tape
    img, expected = simh_layout(files, gaps, pad)
    p = write(tmp_path, "any.tap", img)
    assert read_all(p, chunk) == expected


# -- AWSTAPE ---------------------------------------------------------------------------------


def test_aws_records_split_over_chunks_and_marks(tmp_path):
    big = os.urandom(150_000)  # three chunks: 65535 + 65535 + 18930
    small = b"label-ish" * 3
    img = aws_tape([[small, big], [b"second file"]])
    p = write(tmp_path, "t.aws", img)
    assert detect_kind(p) == "aws"
    got = events(p)
    assert [(k, f, r) for k, _, f, r, _, _ in got] == [
        (RECORD, 0, 0), (RECORD, 0, 1), (FILEMARK, 0, 2), (RECORD, 1, 0), (FILEMARK, 1, 1), (END, 2, 0)]
    assert got[0][1] == small and got[1][1] == big and got[3][1] == b"second file"
    assert got[1][4] == 6 + len(small)  # a record's offset is its first chunk's header


def test_aws_corrupt_header_is_bad_and_reading_resumes(tmp_path):
    recs = [os.urandom(1000) for _ in range(4)]
    img = bytearray(aws_tape([recs]))
    at = 2 * 1006  # header of record 2
    img[at + 4] = 0x13  # flags nobody writes
    p = write(tmp_path, "bad.aws", bytes(img))
    got = events(p)
    bad = [e for e in got if e[0] == BAD]
    # The header before it cannot be told from a corrupt one (its successor is garbage), so the
    # record it starts is not trusted either: both are reported, nothing wrong is taken.
    assert len(bad) == 1 and bad[0][4] == at - 1006 and f"at byte offset {at}, has unknown flags" in bad[0][5]
    assert bad[0][1] == bytes(img[at - 1006:at + 1006])
    assert [d for k, d, *_ in got if k == RECORD] == [recs[0], recs[3]]
    stop = events(p, policy=ErrorPolicy(on_error="stop"))
    assert [k for k, *_ in stop] == [RECORD, BAD, END]


def test_aws_wrong_previous_length_is_caught_before_the_record_is_taken(tmp_path):
    recs = [b"a" * 100, b"b" * 100, b"c" * 100]
    img = bytearray(aws_tape([recs]))
    img[0:2] = struct.pack("<H", 90)  # the first chunk claims 90 bytes: its successor disagrees
    p = write(tmp_path, "prev.aws", bytes(img))
    got = events(p)
    assert got[0][0] == BAD and got[0][4] == 0 and "at byte offset 96" in got[0][5]
    assert [d for k, d, *_ in got if k == RECORD] == [b"b" * 100, b"c" * 100]


def test_aws_truncated_inside_a_split_record(tmp_path):
    big = os.urandom(100_000)
    img = aws_tape([[big]])
    p = write(tmp_path, "cut.aws", img[:70_000])
    got = events(p)
    assert [k for k, *_ in got] == [BAD, END]
    assert got[0][4] == 0 and "past the end of the image" in got[0][5]


def test_aws_hand_built_with_tape_mark_previous_zero(tmp_path):
    # A writer that resets 'previous length' to 0 around tape marks is accepted.
    img = (aws_chunk(b"one", 0, 0xA0) + aws_chunk(b"", 0, 0x40) + aws_chunk(b"two", 0, 0xA0)
           + aws_chunk(b"", 3, 0x40) + aws_chunk(b"", 0, 0x40))
    p = write(tmp_path, "z.aws", img)
    assert [(k, d) for k, d, *_ in events(p)] == [(RECORD, b"one"), (FILEMARK, None), (RECORD, b"two"),
                                                  (FILEMARK, None), (END, None)]


# -- raw dd images and detection ----------------------------------------------------------------


def test_raw_image_blocks_and_short_last_block(tmp_path):
    data = os.urandom(4 * 512 + 100)
    p = write(tmp_path, "t.dd", data)
    got = events(p, "raw", block_size=512)
    assert [(k, r, o) for k, _, _, r, o, _ in got] == [(RECORD, i, i * 512) for i in range(5)] + [(END, 5, len(data))]
    assert b"".join(d for k, d, *_ in got if k == RECORD) == data
    with pytest.raises(TapeError, match="block size"):
        open_tape(p, "raw")


def test_unrecognised_image_must_be_named(tmp_path):
    p = write(tmp_path, "noise.bin", os.urandom(5000))
    with pytest.raises(TapeError, match="raw"):
        detect_kind(p)
