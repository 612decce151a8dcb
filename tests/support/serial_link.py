"""Serial lines for tests and benchmarks: two pseudo-terminals joined by a relay in this process.

The peer (sx, sz, gkermit, or our sender) opens ``peer_path``; the driver opens ``gateway_path``
(a symlink, so a test can unplug the line and plug a new one in under the same name, the way a
USB adapter comes back as the same /dev/serial/by-id path). The relay counts every byte each
way and can damage the line: flip bytes and drop spans, at chosen positions, from a seeded
generator so a failing test fails the same way every time.
"""

from __future__ import annotations

import os
import pty
import random
import select
import subprocess
import threading
import tty
from dataclasses import dataclass, field
from pathlib import Path

TO_GATEWAY, TO_PEER = "to_gateway", "to_peer"


@dataclass
class Faults:
    """Damage done to bytes going one way: ``corrupt`` bytes flipped and ``drop`` spans removed,
    each at a random offset among the first ``within`` bytes, after ``skip`` clean bytes."""

    corrupt: int = 0
    drop: int = 0
    drop_len: int = 40
    skip: int = 2000
    within: int = 60000
    seed: int = 1
    done: list[str] = field(default_factory=list)

    def plan(self) -> dict[int, str]:
        rng = random.Random(self.seed)
        spots = rng.sample(range(self.skip, self.skip + self.within), self.corrupt + self.drop)
        return {pos: ("corrupt" if i < self.corrupt else "drop") for i, pos in enumerate(spots)}


class _Pair:
    def __init__(self):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def close(self):
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class PtyLink:
    VOID = 2.0

    def __init__(self, workdir: Path, to_gateway: Faults | None = None, to_peer: Faults | None = None,
                 cut_after: int | None = None):
        self.workdir = Path(workdir)
        self.gateway_path = str(self.workdir / "ttyGW")
        self.counts = {TO_GATEWAY: 0, TO_PEER: 0}
        self.faults = {TO_GATEWAY: to_gateway, TO_PEER: to_peer}
        self.plans = {k: (f.plan() if f else {}) for k, f in self.faults.items()}
        self.cut_after = cut_after  # stop passing bytes to the gateway after this many (a cable pulled)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plug()

    # -- plugging -----------------------------------------------------------------------------

    def _plug(self) -> None:
        self.peer, self.gw = _Pair(), _Pair()
        self.peer_path = self.peer.path
        tmp = self.gateway_path + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.gw.path, tmp)
        os.replace(tmp, self.gateway_path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """The adapter is pulled: both ends vanish and the path dangles."""
        self._stop.set()
        self._thread.join(5)
        self.peer.close()
        self.gw.close()
        os.unlink(self.gateway_path)

    def replug(self) -> None:
        self._plug()

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(5)
            self.peer.close()
            self.gw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- relaying -----------------------------------------------------------------------------

    def _damage(self, way: str, data: bytes) -> bytes:
        plan = self.plans[way]
        if not plan:
            return data
        start = self.counts[way]
        out = bytearray()
        for i, b in enumerate(data):
            kind = plan.pop(start + i, None)
            if kind == "corrupt":
                out.append(b ^ 0x5A)
                self.faults[way].done.append(f"corrupt@{start + i}")
            elif kind == "drop":
                self._dropping = self.faults[way].drop_len
                self.faults[way].done.append(f"drop@{start + i}")
            if getattr(self, "_dropping", 0):
                self._dropping -= 1
                continue
            if kind != "corrupt":
                out.append(b)
        return bytes(out)

    def _relay(self) -> None:
        ends = {self.peer.master: (self.gw.master, TO_GATEWAY), self.gw.master: (self.peer.master, TO_PEER)}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(list(ends), [], [], 0.05)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue
                other, way = ends[fd]
                if way == TO_GATEWAY and self.cut_after is not None:
                    room = max(0, self.cut_after - self.counts[way])
                    data = data[:room]
                damaged = self._damage(way, data)
                self.counts[way] += len(data)
                self._write(other, damaged)

    def _write(self, fd: int, data: bytes) -> None:
        """Pass bytes on; if the far end stops reading for VOID seconds (its program is gone),
        the rest goes into the void, as a UART's output does when nothing listens."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            _, writable, _ = select.select([], [fd], [], self.VOID)
            if not writable:
                return
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError:
                return


def run_peer(cmd: list[str], tty_path: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run sx/sz/rz/gkermit with the pseudo-terminal as its stdin and stdout."""
    with open(tty_path, "r+b", buffering=0) as t:
        return subprocess.run(cmd, stdin=t, stdout=t, stderr=subprocess.PIPE, cwd=cwd, timeout=timeout)


def start_peer(cmd: list[str], tty_path: str, cwd: Path) -> subprocess.Popen:
    t = open(tty_path, "r+b", buffering=0)
    proc = subprocess.Popen(cmd, stdin=t, stdout=t, stderr=subprocess.PIPE, cwd=cwd)
    t.close()
    return proc
