"""Tape files, labels, extracts and the journal."""

from __future__ import annotations

import json
import threading

from drivers.tape.files import DAMAGED, DATA, LABEL, OVERSIZE, TapeFiles
from drivers.tape.journal import TapeJournal
from drivers.tape.labels import parse_label
from drivers.tape.medium import open_tape
from tests.support.tape_bytes import SIMH_MARK, ansi_label, simh_record, simh_tape


def ibm_label(text: str) -> bytes:
    """An IBM standard label: 80 EBCDIC characters (code page 037)."""
    return text.ljust(80).encode("cp037")


def test_ansi_and_ibm_labels_are_recognised_not_taken_as_data(tmp_path):
    vol = ibm_label("VOL1TAPE07")
    hdr = ibm_label("HDR1" + "SIGNA.EXAM123".ljust(17) + "TAPE07" + "0001" + "0001" + "    " + "  " + " 94123")
    assert vol[:4] == b"\xe5\xd6\xd3\xf1"  # 'VOL1' in EBCDIC
    label = parse_label(hdr)
    assert label.kind == "HDR1" and label.encoding == "ebcdic"
    assert label.fields["file_id"] == "SIGNA.EXAM123" and label.number("sequence") == 1
    assert label.date() == "1994-05-03"  # day 123 of 1994: 31 + 28 + 31 + 30 = 120, so 3 May
    assert label.public().get("file_id") is None  # names stay out of INFO logs
    data = b"not a label".ljust(80)
    p = tmp_path / "ibm.tap"
    p.write_bytes(simh_tape([[vol, hdr], [data, data], [ansi_label("EOF1", block_count="000002")]]))
    files = list(TapeFiles(open_tape(p)))
    assert [f.kind for f in files] == [LABEL, DATA, LABEL]
    assert files[1].data == data + data and not files[2].notes  # EOF1 block count agrees


def test_eof1_block_count_that_disagrees_is_noted(tmp_path):
    p = tmp_path / "count.tap"
    p.write_bytes(simh_tape([[b"x" * 100] * 3, [ansi_label("EOF1", block_count="000004")]]))
    files = list(TapeFiles(open_tape(p)))
    assert "EOF1 says 4 blocks but tape file 0 held 3 records" in files[1].notes[0]


def test_oversize_file_is_read_through_and_extracted_whole(tmp_path):
    big = bytes(range(256)) * 200  # 51200 bytes
    p = tmp_path / "big.tap"
    p.write_bytes(simh_tape([[big[i:i + 4096] for i in range(0, len(big), 4096)], [b"small"]]))
    files = list(TapeFiles(open_tape(p), max_bytes=10_000, extract_dir=tmp_path / "x"))
    assert [f.kind for f in files] == [OVERSIZE, DATA]
    assert files[0].data is None and files[0].size == len(big)
    assert (tmp_path / "x" / "file0000.bin").read_bytes() == big


def test_file_of_fixed_blocks_with_a_short_last_one_counts_every_record(tmp_path):
    data = bytes(range(256)) * 40 + b"tail"  # 10244 bytes: five 2048-byte blocks and a 4-byte one
    p = tmp_path / "blocks.tap"
    p.write_bytes(simh_tape([[data[i:i + 2048] for i in range(0, len(data), 2048)]]))
    files = list(TapeFiles(open_tape(p), extract_dir=tmp_path / "x"))
    f = files[0]
    assert (f.kind, f.records, f.min_record, f.max_record, f.size) == (DATA, 6, 4, 2048, len(data))
    assert f.data == data and (tmp_path / "x" / "file0000.bin").read_bytes() == data
    assert "6 record(s) of 4-2048 bytes" in f.describe()


def test_damaged_file_extract_keeps_what_was_there_and_where_it_failed(tmp_path):
    good, flagged = b"g" * 64, b"f" * 64
    img = simh_record(good) + simh_record(flagged, bad=True) + simh_record(good) + SIMH_MARK + SIMH_MARK
    p = tmp_path / "d.tap"
    p.write_bytes(img)
    files = list(TapeFiles(open_tape(p), extract_dir=tmp_path / "x"))
    assert files[0].kind == DAMAGED and files[0].data is None
    assert (tmp_path / "x" / "file0000.damaged.bin").read_bytes() == good + flagged + good
    entry = json.loads((tmp_path / "x" / "manifest.jsonl").read_text())
    assert entry["kind"] == DAMAGED and entry["bad"][0]["record"] == 1 and entry["bad"][0]["offset"] == 72


def test_stop_abandons_the_file_in_hand(tmp_path):
    p = tmp_path / "s.tap"
    p.write_bytes(simh_tape([[b"a" * 10] * 3, [b"b" * 10] * 3]))
    stop = threading.Event()
    files = TapeFiles(open_tape(p), extract_dir=tmp_path / "x", stop=stop)
    it = iter(files)
    first = next(it)
    stop.set()
    assert list(it) == [] and files.interrupted and first.number == 0
    assert sorted(x.name for x in (tmp_path / "x").iterdir()) == ["file0000.bin", "manifest.jsonl"]


def test_journal_survives_a_torn_line_and_resumes_at_the_first_unsettled_file(tmp_path):
    j = TapeJournal.open(tmp_path, "abc", "/dev/nst0", "device", resume=False)
    j.record(0, "label", end_offset=100)
    j.record(1, "done", sop="1.2.3", end_offset=200)
    j.record(2, "damaged", end_offset=300)
    with open(j.path, "ab") as f:
        f.write(b'{"file": 3, "status": "do')  # the write a SIGKILL cut short
    again = TapeJournal.open(tmp_path, "abc", "/dev/nst0", "device", resume=True)
    assert again.resume_point() == (3, 300)
    assert again.resume_point(retry_damaged=True) == (2, 200)
    again.record(3, "done", sop="1.2.4")
    lines = again.path.read_text().splitlines()
    assert lines[-1].startswith('{"file":3') and json.loads(lines[-1])["sop"] == "1.2.4"
    # A fresh read keeps the earlier journal beside the new one.
    TapeJournal.open(tmp_path, "abc", "/dev/nst0", "device", resume=False)
    assert len(list((tmp_path / "tape").glob("abc*.jsonl"))) == 2
