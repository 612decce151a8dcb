"""``simulate --tape`` / ``--aws``: tape images from any simulated format, read back."""

from __future__ import annotations

import random

import pytest

from drivers.tape.files import DAMAGED, DATA, LABEL, TapeFiles
from drivers.tape.medium import open_tape
from gateway import cli
from gateway.delivery.spool import encode
from gateway.simulate import SimFile, SimOptions, generate, register_format
from tests.support.helpers import ct_instance


def _synthetic_ct(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    """A stand-in simulated format (valid DICOM) while the vendor simulators are elsewhere."""
    return SimFile(f"ct{index:03d}.dcm", encode(ct_instance(rng.randrange(10000), rows=48, columns=48)))


register_format("test-synthetic-ct", _synthetic_ct)


@pytest.mark.parametrize("flag,kind", [("--tape", "simh"), ("--aws", "aws")])
def test_simulated_tape_has_labels_header_file_images_and_the_damage_it_reports(tmp_path, capsys, flag, kind):
    out = tmp_path / f"sim.{kind}"
    rc = cli.main(["simulate", "-f", "test-synthetic-ct", "-n", "4", "--seed", "7", flag, str(out), "--labels",
                   "--header-file", "--bad-records", "1", "--record-size", "4096"])
    assert rc == 0
    said = capsys.readouterr().out
    objects = list(generate("test-synthetic-ct", 4, SimOptions(), 7))
    files = list(TapeFiles(open_tape(out)))
    kinds = [f.kind for f in files]
    # VOL1, the header file, then per object HDR group, data, EOF group.
    assert kinds[:2] == [LABEL, DATA]
    assert kinds[2::3] == [LABEL] * 4 and kinds[4::3] == [LABEL] * 4 and len(kinds) == 14
    assert sorted(kinds[3::3]) == sorted([DATA] * 3 + [DAMAGED])
    data_files = [f for f in files[3::3]]
    assert len(data_files) == 4
    damaged = [f for f in data_files if f.kind == DAMAGED]
    assert len(damaged) == 1
    bad = damaged[0].bad[0]
    file_no, record_no = map(int, said.split("damaged: tape file ")[1].split(" record "))
    assert file_no == damaged[0].number
    # AWS cannot tell a corrupt header from a wrong length in the chunk before it: the record
    # before the damaged one is reported with it.
    assert bad.record == record_no if kind == "simh" else bad.record in (record_no - 1, record_no)
    for f, obj in zip(data_files, objects):
        if f.kind == DATA:
            assert f.data == obj.data
    # EOF1 carries each data file's block count: no mismatch is noted.
    eof_groups = files[4::3]
    assert all(g.labels[0].kind == "EOF1" for g in eof_groups)
    for eof, data in zip(eof_groups, data_files):
        assert eof.labels[0].number("block_count") == -(-len(objects[data_files.index(data)].data) // 4096)
        if data.kind == DATA:
            assert not eof.notes and data.records == eof.labels[0].number("block_count")
    assert files[0].labels[0].fields["volume_serial"] == "SIM001"
