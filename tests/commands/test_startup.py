"""The command line starts without the heavy libraries it does not need (issue #15).

``--version``, ``--help`` and ``identify`` must not import pydicom or numpy (together about
0.4 s before anything happens); ``bench/startup.py`` measures the time, this checks the cause.
Each row runs the real ``python -m gateway`` with ``-X importtime`` in a subprocess and reads
the modules it imported from that report. ``identify`` gets a real sample of each format
family, and simulated files of the formats we have no real sample of (Somatom Plus, Vision,
Signa 4.x, CT 9800): identification is all it does, so each must still be named right.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.simulate import SimOptions, generate
from tests.support.daemon import ROOT
from tests.support.samples import SAMPLES

HEAVY = ("pydicom", "numpy")

REAL = {  # a real sample of each family, with the format identify must name
    "ge_genesis/E07733S002I009.MR": "ge-genesis",
    "acr_nema/CT-MONO2-12-lomb-an2.acr": "acr-nema",
    "siemens_spi_acrnema/mr.001": "siemens-spi",
    "dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm": "dicom",
    "dicom_vendor_nopreamble/OT-MONO2-8-a7_Philips_nopreamble.dcm": "dicom-headerless",
    "interfile/stir/examples/recon_demo/init.hv": "interfile",
}
SIMULATED = {"somatom-plus": "somatom-plus", "vision-ima": "vision-ima", "signa4x": "ge-signa4x",
             "ge9800": "ge-ct9800"}


def imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the command line; its result and the top-level packages it imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "gateway", *args], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "gateway" in modules, "no -X importtime report: the check would pass for nothing"
    return run, modules


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["identify", "--help"], ["check-config", "--version"]])
def test_version_and_help_import_neither_pydicom_nor_numpy(args: list[str]):
    run, modules = imported(*args)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "legacy-gateway" in run.stdout
    assert not modules & set(HEAVY), f"{args} imported {sorted(modules & set(HEAVY))}"


def test_help_lists_every_command_with_its_help_line():
    from gateway.cli import COMMANDS

    run, _ = imported("--help")
    for name, help_line in COMMANDS.items():
        assert name in run.stdout and help_line.split()[0] in run.stdout, name


def test_identify_of_each_family_imports_neither_pydicom_nor_numpy(tmp_path: Path):
    files = {SAMPLES / rel: fmt for rel, fmt in REAL.items()}
    for sim, fmt in SIMULATED.items():
        made = next(generate(sim, 1, SimOptions()))
        path = tmp_path / f"{sim}.bin"
        path.write_bytes(made.data)
        files[path] = fmt
    run, modules = imported("identify", *map(str, files))
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    named = dict(line.split(": ", 1) for line in run.stdout.splitlines())
    for path, fmt in files.items():
        assert named[str(path)].startswith(f"{fmt} ("), (path, named[str(path)])
    assert not modules & set(HEAVY), f"identify imported {sorted(modules & set(HEAVY))}"


def test_a_command_that_decodes_still_loads_its_decoder():
    """The other side: ``dump`` needs the decoder, which is found and loaded on first use."""
    run, modules = imported("dump", str(SAMPLES / "ge_genesis/E07733S002I009.MR"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ge-genesis" in run.stdout or "IMGF" in run.stdout
    assert {"pydicom", "numpy"} <= modules


@pytest.mark.parametrize("command", ["check-config", "status"])
def test_check_config_and_status_import_neither_pydicom_nor_numpy(tmp_path: Path, command: str):
    """Checking a configuration (routing and coercion rules and an ID map included) reads
    YAML and a CSV file, and ``status`` reads the spool's database besides; the DICOM
    libraries load only when instances are converted or sent."""
    (tmp_path / "ids.csv").write_text("legacy,new\nA1,B1\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
gateway:
  ae_title: LEGACYGW
  spool_dir: {tmp_path / 'spool'}
  state_dir: {tmp_path / 'state'}
destinations:
  - {{name: pacs, host: 127.0.0.1, port: 11112, called_ae: PACS}}
sources:
  - {{name: drop, type: folder, path: {tmp_path / 'in'}, create: true}}
routes:
  - match: {{modality: CT, sop_class: CT Image Storage, format: ge-genesis}}
    to: [pacs]
coerce:
  set: {{InstitutionName: Somewhere}}
  patient_ids: {{file: {tmp_path / 'ids.csv'}, from_column: legacy, to_column: new}}
""")
    if command == "status":  # a spool with an instance in it, so that there is something to read
        from gateway.delivery.spool import Spool
        from tests.support.instances import ct_instance

        spool = Spool(tmp_path / "spool")
        spool.add(ct_instance(1), ["pacs"])
        spool.close()
    run, modules = imported("-c", str(config), command)
    assert run.returncode in (0, 1), run.stdout + run.stderr[-2000:]  # status: 1, no service runs
    expected = r"OK \(1 source" if command == "check-config" else r"^pacs\s+up\s+1\s"  # one queued, read
    assert re.search(expected, run.stdout, re.MULTILINE), run.stdout
    assert not modules & set(HEAVY), f"{command} imported {sorted(modules & set(HEAVY))}"


QUICK_EXIT = """
import gc
import sys

import gateway.cli as cli


class Loud:  # destroyed, and heard, only if the interpreter is torn down at exit
    def __del__(self):
        sys.stderr.write("torn down\\n")


def execute(args):  # the command, with an object made while it runs and alive at the end
    global keep
    keep = Loud()
    sys.stderr.write(f"collector {'on' if gc.isenabled() else 'off'}\\n")  # off only for the imports
    return real(args)


real, cli.execute = cli.execute, execute
mode, sys.argv = sys.argv[1], ["legacy-gateway", *sys.argv[2:]]
cli.entry() if mode == "entry" else sys.exit(cli.main())
"""


def _quick(mode: str, *args: str) -> subprocess.CompletedProcess:
    """The command line run by ``entry`` (the program) or by ``main`` left the usual way."""
    return subprocess.run([sys.executable, "-c", QUICK_EXIT, mode, *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_finished_command_leaves_without_the_teardown_and_keeps_its_status_and_output(tmp_path: Path):
    """The program's end skips the interpreter's teardown (0.1-0.2 s of a ``send``), after
    everything else an exit does: the status is ``main``'s and every line written arrives."""
    sample = str(SAMPLES / "ge_genesis/E07733S002I009.MR")
    listed = _quick("entry", "identify", *[sample] * 400)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stdout.count("ge-genesis (") == 400  # ~40 KB through a pipe: flushed before the end
    assert "torn down" not in listed.stderr and "collector on" in listed.stderr
    plain = _quick("main", "identify", sample)  # the same command left the usual way: torn down
    assert plain.returncode == 0 and "torn down" in plain.stderr, plain.stderr[-2000:]
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: [\n")
    refused = _quick("entry", "-c", str(bad), "check-config")
    assert refused.returncode == 2 and "bad.yaml:2" in refused.stderr, refused.stdout + refused.stderr
    assert "torn down" not in refused.stderr
