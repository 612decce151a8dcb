"""Running the real daemon in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, *, destinations: list[dict], incoming: Path, spool: Path, extra_source: str = "",
                 settle: str = "300ms") -> Path:
    lines = ["gateway:", f"  spool_dir: {spool}", f"  state_dir: {spool.parent / 'state'}", "  log_level: INFO",
             "destinations:"]
    for d in destinations:
        lines += [f"  - name: {d['name']}", "    host: 127.0.0.1", f"    port: {d['port']}",
                  f"    called_ae: {d.get('aet', 'ANY')}",
                  "    retry: {initial_delay: 200ms, max_delay: 1s}"]
    lines += ["sources:", "  - name: export", "    type: folder", f"    path: {incoming}", "    create: true",
              f"    settle_time: {settle}", "    poll_interval: 200ms", "    orphan_time: 1s", extra_source,
              "archive:", "  enabled: false"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Daemon:
    config: Path
    workdir: Path
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> "Daemon":
        log = self.workdir / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "-c", str(self.config)],
                                     cwd=self.workdir, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        return self

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc and self.proc.poll() is None:
            # SIGTERM before the service has installed its handler (it is still importing)
            # would kill it with -15: wait until it says it started.
            deadline = time.monotonic() + timeout
            while (self.proc.poll() is None and time.monotonic() < deadline
                   and "event=started" not in self.logs[-1].read_text(errors="replace")):
                time.sleep(0.05)
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode if self.proc else 0

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
