"""The convert, dump and simulate commands, run in-process through gateway.cli.main."""

from __future__ import annotations

import pydicom
import pytest

from gateway import cli, formats
from tests.support.peers import dciodvfy_errors


def test_convert_reports_each_failure_and_exits_non_zero(samples, tmp_path, capsys):
    bad = tmp_path / "in" / "truncated.MR"
    bad.parent.mkdir()
    bad.write_bytes((samples / "ge_genesis" / "heart.1").read_bytes()[:50_000])
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    rc = cli.main(["convert", str(samples / "ge_genesis"), str(tmp_path / "in"), "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    written = sorted(out.glob("*.dcm"))
    assert len(written) == 2
    for path in written:
        ds = pydicom.dcmread(path)
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert dciodvfy_errors(path) == []
    assert "truncated.MR: FAILED: " in captured.err and "pixel data" in captured.err
    assert "notes.txt: FAILED: unknown format" in captured.err
    assert "2 converted, 2 failed" in captured.err


def test_convert_all_good_exits_zero_and_is_deterministic(samples, tmp_path):
    args = ["convert", str(samples / "ge_genesis" / "E07733S002I009.MR"), "-o"]
    assert cli.main(args + [str(tmp_path / "a")]) == 0
    assert cli.main(args + [str(tmp_path / "b")]) == 0
    a, b = sorted((tmp_path / "a").iterdir()), sorted((tmp_path / "b").iterdir())
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 1


def test_convert_with_a_site_uid_root(tmp_path):
    sims = tmp_path / "sims"
    assert cli.main(["simulate", "--format", "signa4x", "--count", "2", "-o", str(sims)]) == 0
    assert cli.main(["convert", str(sims), "-o", str(tmp_path / "out"),
                     "--uid-root", "1.2.826.0.1.3680043.10.999"]) == 0
    for path in (tmp_path / "out").iterdir():
        assert pydicom.dcmread(path).StudyInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")


def test_dump_prints_fields_from_the_tables(samples, capsys):
    assert cli.main(["dump", str(samples / "ge_genesis" / "heart.1")]) == 0
    out = capsys.readouterr().out
    assert "ge-genesis" in out
    line = next(ln for ln in out.splitlines() if "exam (packed).exam_type" in ln)
    assert line.split()[0] == str(2418 + 305) and "'MR'" in line
    assert any("MR image (packed).tr_us" in ln and "14600" in ln for ln in out.splitlines())


def test_dump_of_an_unknown_file(tmp_path, capsys):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 100)
    assert cli.main(["dump", str(path)]) == 1
    assert "unknown format" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, compression, variant", [("genesis", 4, "tape"), ("genesis", 3, "aw"),
                                                       ("signa4x", None, "disk")])
def test_simulate_writes_files_every_decoder_reads(tmp_path, fmt, compression, variant):
    args = ["simulate", "--format", fmt, "--count", "3", "--variant", variant, "-o", str(tmp_path)]
    if compression is not None:
        args += ["--compression", str(compression)]
    assert cli.main(args) == 0
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3
    for path in files:
        decoded = formats.decode(path.read_bytes())
        assert decoded.format == ("ge-genesis" if fmt == "genesis" else "ge-signa4x")


def test_convert_takes_site_rules_from_the_configuration(samples, tmp_path):
    from pathlib import Path

    shipped = (Path(__file__).resolve().parents[2] / "etc" / "legacy-gateway.yaml").read_text()
    config = tmp_path / "site.yaml"
    config.write_text(shipped.replace("  patient_id_prefix:\n", "  patient_id_prefix: LEG-\n")
                      .replace("  institution_name:\n", "  institution_name: Old Wing Hospital\n"))
    src = samples / "ge_genesis" / "heart.1"
    assert cli.main(["convert", "-c", str(config), str(src), "-o", str(tmp_path / "out")]) == 0
    (out,) = (tmp_path / "out").iterdir()
    ds = pydicom.dcmread(out)
    source_id = formats.decode(src.read_bytes()).dataset.PatientID
    assert ds.PatientID == "LEG-" + source_id
    # The command line wins over the configuration.
    assert cli.main(["convert", "-c", str(config), "--patient-id-prefix", "CLI-", str(src),
                     "-o", str(tmp_path / "o2")]) == 0
    assert pydicom.dcmread(next((tmp_path / "o2").iterdir())).PatientID == "CLI-" + source_id
