"""The simulator formats and dump through the command line, as an operator would use them."""

from __future__ import annotations

import subprocess
import sys

FORMATS = {"acrnema": "acr-nema", "spi": "siemens-spi", "somatom-plus": "somatom-plus", "vision-ima": "vision-ima"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60)


def test_simulate_every_format_then_identify(tmp_path):
    runs = [(fmt, None) for fmt in FORMATS] + [("acrnema", "badbig"), ("spi", "big")]
    expected = {}
    for fmt, order in runs:
        out = tmp_path / f"{fmt}-{order}"
        done = cli("simulate", "--format", fmt, "--count", "2", "-o", str(out),
                   *(["--byte-order", order] if order else []))
        assert done.returncode == 0, done.stderr
        for path in out.iterdir():
            expected[str(path)] = FORMATS[fmt]
    assert len(expected) == 2 * len(runs)
    identified = cli("identify", *expected)
    assert identified.returncode == 0
    for line in identified.stdout.splitlines():
        path, rest = line.split(": ", 1)
        assert rest.startswith(expected[path] + " ("), line


def test_packed_variant_and_listing(tmp_path):
    assert set(FORMATS) <= set(cli("simulate", "--list", "--format", "x").stdout.split())
    done = cli("simulate", "--format", "acrnema", "--variant", "packed12", "--byte-order", "big", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.iterdir()
    dump = cli("dump", str(path)).stdout
    assert "Bits Allocated" in dump and "[12]" in dump


def test_dump_shows_private_names_and_successors(samples):
    dump = cli("dump", str(samples / "siemens_spi_acrnema" / "mr.001")).stdout
    assert "SIEMENS CM VA0  CMS: Image Position (centre, +L+A+F)" in dump
    assert "SIEMENS MR VA0  GEN: Flip Angle" in dump and "-> FlipAngle" in dump
    assert "(0020,0030) Image Position" in dump and "-> ImagePositionPatient" in dump
