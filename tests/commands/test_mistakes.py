"""An operator's ordinary mistakes end in one line that says what is wrong, never a traceback.

Each row runs the real command line in a subprocess. Unwritable places are made so that even
root cannot write there (a path under a regular file, or under /proc), since the suite runs as
root in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import ROOT
from tests.support.peers import free_port

SAMPLE_CONFIG = ROOT / "etc" / "legacy-gateway.yaml"


def gateway(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The command line, run from ``cwd`` (outside the checkout) with this checkout's code."""
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**(env or os.environ), "PYTHONPATH": str(ROOT)})


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A working folder with a configuration whose paths lie inside it and a file named ``afile``."""
    text = SAMPLE_CONFIG.read_text().replace("./var/", f"{tmp_path}/var/")
    (tmp_path / "gw.yaml").write_text(text)
    (tmp_path / "afile").write_text("not a folder")
    assert gateway("simulate", "-f", "genesis", "-n", "2", "--tape", str(tmp_path / "t.tap"),
                   cwd=tmp_path).returncode == 0
    return tmp_path


def mistakes(site: Path, sample: Path) -> list[tuple[list[str], int, str]]:
    """(arguments, exit status, words the one line must contain)."""
    cfg = str(site / "gw.yaml")
    under_file = str(site / "afile" / "out")
    return [
        (["archive", "-c", cfg, "--port", "99999"], 2, "99999 is not a port"),
        (["archive", "-c", cfg, "--aet", "A" * 17], 2, "at most 16"),
        (["archive", "-c", cfg, "--host", "192.0.2.1", "--port", str(free_port())], 2,
         "not an address of this machine"),
        (["archive", "-c", cfg, "--dir", under_file, "--port", str(free_port())], 2, "afile/out"),
        (["convert", "-o", str(site / "afile"), str(sample)], 2, "afile"),
        (["convert", "-o", "/proc/legacy-gateway-out", str(sample)], 2, "/proc/legacy-gateway-out"),
        (["simulate", "-f", "nope", "-o", str(site / "s")], 2, "unknown simulated format 'nope'"),
        (["simulate", "-f", "genesis", "--compression", "9", "-o", str(site / "s")], 2, "compression"),
        (["simulate", "-f", "genesis", "--variant", "zz", "-o", str(site / "s")], 2, "variants"),
        (["simulate", "-f", "acrnema", "--byte-order", "zz", "-o", str(site / "s")], 2, "byte order 'zz'"),
        (["simulate", "-f", "genesis", "-o", under_file], 2, "afile/out"),
        (["simulate", "-f", "genesis", "--tape", under_file], 2, "afile/out"),
        (["simulate", "-o", str(site / "s")], 2, "--format is required"),
        (["status", "-c", str(site / "missing.yaml")], 2, "no configuration at"),
        (["ingest-tape", "-c", cfg, str(site / "t.tap"), "--extract", under_file], 2, "afile/out"),
        (["ingest-tape", "-c", cfg, str(site / "t.tap"), "--dry-run", "--extract", under_file], 2, "afile/out"),
        (["check-config", str(site / "missing.yaml")], 2, "no configuration at"),
    ]


def test_no_traceback_for_ordinary_mistakes(site, samples):
    sample = samples / "ge_genesis" / "heart.1"
    for args, status, words in mistakes(site, sample):
        run = gateway(*args, cwd=site)
        assert "Traceback" not in run.stderr, (args, run.stderr)
        assert run.returncode == status, (args, run.returncode, run.stderr)
        assert words in run.stderr, (args, run.stderr)
        lines = [line for line in run.stderr.splitlines() if not line.startswith(("usage:", " "))]
        assert len(lines) == 1, (args, run.stderr)


def test_port_in_use_is_one_line_and_nothing_started(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = (site / "gw.yaml").read_text().replace("port: 11112", f"port: {port}")
        (site / "gw.yaml").write_text(text)
        run = gateway("run", "-c", str(site / "gw.yaml"), cwd=site)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"127.0.0.1:{port}" in run.stderr and "already" in run.stderr
    assert "event=archive_started" not in run.stderr and "event=started" not in run.stderr


def test_check_config_finds_listener_clashes_and_bad_values(site):
    text = (site / "gw.yaml").read_text()
    text = text.replace("metrics:\n  enabled: false", "metrics:\n  enabled: true").replace("port: 9477", "port: 11112")
    text = text.replace("host: 127.0.0.1\n    port: 104", "host: pacs one\n    port: 104")
    (site / "gw.yaml").write_text(text)
    run = gateway("check-config", str(site / "gw.yaml"), cwd=site)
    assert run.returncode == 2
    assert "metrics.port: 11112 is also archive.port" in run.stderr, run.stderr


def test_closed_pipe_is_not_an_error(site):
    """``legacy-gateway identify ... | head -1``: the reader leaving early is no failure."""
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "identify", *[str(SAMPLE_CONFIG)] * 20000],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) in (0, 1), err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_config_found_by_env_and_before_the_command(site):
    env = {"PATH": "/usr/bin:/bin", "LEGACY_GATEWAY_CONFIG": str(site / "gw.yaml")}
    assert gateway("check-config", cwd=site, env=env).returncode == 0
    run = gateway("-c", str(site / "gw.yaml"), "status", cwd=site)
    assert run.returncode == 1, run.stderr  # no service runs on that spool: worth the operator's attention
    assert "service: not running on this spool" in run.stdout
    assert gateway("status", "--version", cwd=site).stdout.startswith("legacy-gateway ")
