"""The tape drive reader without a drive.

The read path is exercised for real over an ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair, which
delivers one record per ``read()`` and a zero-length read per filemark, as ``st`` does; the
descriptor is not a tape, so every ioctl must be skipped. The ioctl numbers are checked
against the system's ``<sys/mtio.h>`` through the C compiler. What a socket cannot do (ENOMEM
for a short buffer, EIO for a bad block, the block counter of MTIOCGET, backspacing) is played
by ``tests.support.tape_drive.StDouble``, which follows st(4)'s documented semantics around
the same reader code.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading

import pytest

from drivers.tape import device as td
from drivers.tape.device import TapeDevice
from drivers.tape.files import TapeFiles
from drivers.tape.records import BAD, END, FILEMARK, RECORD, ErrorPolicy, TapeError
from tests.support.tape_drive import FM, StDouble


def feed(sock: socket.socket, script: list[bytes | None]) -> threading.Thread:
    def run():
        for item in script:
            sock.send(b"" if item is FM else item)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def kinds(reader) -> list[tuple]:
    return [(e.kind, None if e.data is None else bytes(e.data), e.file, e.record) for e in reader.events()]


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    yield a, b
    a.close()
    b.close()


def test_seqpacket_reads_like_st_and_ioctls_are_skipped(pair):
    a, b = pair
    recs = [b"VOL1" + b" " * 76, os.urandom(8192), os.urandom(8192), os.urandom(100), os.urandom(60000)]
    feed(a, [recs[0], FM, recs[1], recs[2], recs[3], FM, recs[4], FM, FM])
    dev = TapeDevice("socketpair", fd=b.fileno(), buffer_size=64 << 10)
    assert not dev.is_tape and dev.status() is None
    assert dev.op(td.MTREW) is False  # skipped, not attempted
    dev.rewind()  # no error either
    assert kinds(dev) == [
        (RECORD, recs[0], 0, 0), (FILEMARK, None, 0, 1),
        (RECORD, recs[1], 1, 0), (RECORD, recs[2], 1, 1), (RECORD, recs[3], 1, 2), (FILEMARK, None, 1, 3),
        (RECORD, recs[4], 2, 0), (FILEMARK, None, 2, 1),
        (END, None, 3, 0),
    ]
    with pytest.raises(TapeError, match="cannot be positioned"):
        dev.seek_file(2)


def test_fingerprint_of_a_stream_loses_nothing(pair):
    a, b = pair
    recs = [os.urandom(50000) for _ in range(30)]  # 1.5 MB: more than the fingerprint reads
    feed(a, [*recs[:10], FM, *recs[10:], FM, FM])
    dev = TapeDevice("socketpair", fd=b.fileno(), buffer_size=64 << 10)
    fp = dev.fingerprint()
    got = list(dev.events())
    assert [bytes(e.data) for e in got if e.kind == RECORD] == recs and len(fp) == 32
    assert [(e.kind, e.file, e.record) for e in got if e.kind != RECORD] == [(FILEMARK, 0, 10), (FILEMARK, 1, 20),
                                                                              (END, 2, 0)]


def test_tape_files_over_the_device_path(pair):
    a, b = pair
    image = os.urandom(3 * 8192 + 1000)
    feed(a, [image[i:i + 8192] for i in range(0, len(image), 8192)] + [FM, b"x" * 10, FM, FM])
    files = list(TapeFiles(TapeDevice("socketpair", fd=b.fileno())))
    assert [(f.number, f.records, f.kind) for f in files] == [(0, 4, "data"), (1, 1, "data")]
    assert files[0].data == image


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler to read <sys/mtio.h>")
def test_ioctl_numbers_match_the_system_header(tmp_path):
    src = tmp_path / "mt.c"
    src.write_text(
        "#include <stdio.h>\n#include <sys/mtio.h>\n"
        "int main(void){printf(\"%lu %lu %zu %zu %d %d %d %d %d %d %d %d\\n\", (unsigned long)MTIOCTOP,"
        "(unsigned long)MTIOCGET, sizeof(struct mtop), sizeof(struct mtget), MTFSF, MTBSF, MTFSR, MTBSR, MTREW,"
        "MTOFFL, MTNOP, MTSETBLK); return 0;}\n")
    exe = tmp_path / "mt"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True, capture_output=True)
    values = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert values == [td.MTIOCTOP, td.MTIOCGET, td._MTOP.size, td._MTGET.size, td.MTFSF, td.MTBSF, td.MTFSR,
                      td.MTBSR, td.MTREW, td.MTOFFL, td.MTNOP, td.MTSETBLK]


# -- st's error semantics ---------------------------------------------------------------------


def test_enomem_grows_the_buffer_and_rereads_the_block():
    big = os.urandom(300_000)
    dev = StDouble([b"small", big, b"after", FM, FM], buffer_size=64 << 10)
    assert dev.is_tape and (td.MTSETBLK, 0) in dev.ops  # variable-block mode asked for
    assert [d for k, d, *_ in kinds(dev) if k == RECORD] == [b"small", big, b"after"]
    assert dev.buffer_size == 512 << 10 and dev.ops.count((td.MTBSR, 1)) == 3


def test_eio_retried_then_recovered_without_rereading_a_neighbour():
    recs = [bytes([i]) * 1000 for i in range(6)]
    dev = StDouble([*recs, FM, FM], bad={3: 2}, policy=ErrorPolicy(retries=3))
    got = kinds(dev)
    assert [d for k, d, *_ in got if k == RECORD] == recs
    assert BAD not in [k for k, *_ in got]


def test_eio_bad_block_skipped_by_policy_keeps_numbering():
    recs = [bytes([i]) * 1000 for i in range(6)]
    dev = StDouble([*recs, FM, b"next file", FM, FM], bad={2: 99}, policy=ErrorPolicy(retries=2))
    got = kinds(dev)
    assert [(k, f, r) for k, _, f, r in got] == [
        (RECORD, 0, 0), (RECORD, 0, 1), (BAD, 0, 2), (RECORD, 0, 3), (RECORD, 0, 4), (RECORD, 0, 5),
        (FILEMARK, 0, 6), (RECORD, 1, 0), (FILEMARK, 1, 1), (END, 2, 0)]
    assert [d for k, d, *_ in got if k == RECORD] == recs[:2] + recs[3:] + [b"next file"]
    assert dev.ops.count((td.MTBSR, 1)) == 2  # two retries, then on past the block


def test_eio_with_policy_stop_ends_the_read():
    recs = [b"a" * 10, b"b" * 10, b"c" * 10]
    dev = StDouble([*recs, FM, FM], bad={1: 99}, policy=ErrorPolicy(retries=1, on_error="stop"))
    got = list(dev.events())
    assert [e.kind for e in got] == [RECORD, BAD, END]
    assert "read error" in got[1].error and "after 1 retry" in got[1].error
    assert "policy stop" in got[2].error


def test_blank_tape_after_the_data_is_the_end_not_a_bad_block():
    dev = StDouble([b"only", FM])  # a single filemark, then blank tape
    got = list(dev.events())
    assert [e.kind for e in got] == [RECORD, FILEMARK, END]
    assert "blank tape" in got[-1].error


def test_positioning_and_unload_use_the_tape_operations():
    dev = StDouble([b"f0", FM, b"f1", FM, b"f2a", b"f2b", FM, FM])
    dev.seek_file(2)
    assert [(k, d, f, r) for k, d, f, r in kinds(dev)] == [
        (RECORD, b"f2a", 2, 0), (RECORD, b"f2b", 2, 1), (FILEMARK, None, 2, 2), (END, None, 3, 0)]
    assert (td.MTREW, 1) in dev.ops and (td.MTFSF, 2) in dev.ops
    dev.unload()
    assert dev.ops[-1] == (td.MTOFFL, 1)


def test_fixed_block_mode_splits_each_read_into_blocks(pair):
    a, b = pair
    data = os.urandom(4 * 512)
    feed(a, [data, data[:1024], FM, FM])  # st returns as many whole blocks as fit in one read
    dev = TapeDevice("socketpair", fd=b.fileno(), block_size=512, buffer_size=8192)
    got = kinds(dev)
    assert [(k, f, r) for k, _, f, r in got] == [(RECORD, 0, i) for i in range(6)] + [(FILEMARK, 0, 6), (END, 1, 0)]
    assert b"".join(d for k, d, *_ in got if k == RECORD) == data + data[:1024]
    drive = StDouble([b"x" * 512, FM, FM], block_size=512)
    assert (td.MTSETBLK, 512) in drive.ops and drive.reads == [] and list(drive.events())[0].data == b"x" * 512
    assert drive.reads[0] % 512 == 0  # fixed-block reads ask for whole blocks
