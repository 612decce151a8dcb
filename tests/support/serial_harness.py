"""Running the serial driver against real senders in tests.

``Receiving`` runs ``SerialDriver.captures`` in a thread the way the service's source runner
does (handle each capture, then resume the generator) with a verdict rule standing in for the
pipeline; the end-to-end tests use the real pipeline and Orthanc instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from drivers.serial.source import SerialDriver
from gateway import formats
from tests.support.serial_link import PtyLink

SENDERS = {
    "xmodem": ["sx", "--binary"],
    "xmodem-1k": ["sx", "--binary", "--1k"],
    "ymodem": ["sb", "--binary", "--1k"],
    "zmodem": ["sz", "--binary"],
    "kermit": ["gkermit", "-i", "-s"],
}
RECEIVER_OF = {"xmodem": "xmodem", "xmodem-1k": "xmodem", "ymodem": "ymodem", "zmodem": "zmodem", "kermit": "kermit"}


@dataclass
class Taken:
    capture: object
    at: float
    sender_running: bool | None


@dataclass
class Receiving:
    link: PtyLink
    protocol: str
    verdict: Callable[[object], bool] = lambda c: True
    options: dict = field(default_factory=dict)
    measure: bool = True
    sender: object = None  # a Popen whose liveness is noted when each capture arrives
    delay: float = 0.0     # the "pipeline" takes this long before it answers
    taken: list[Taken] = field(default_factory=list)

    def __post_init__(self):
        opts = {"port": self.link.gateway_path, "protocol": self.protocol, "timeout": 1.0, "retries": 4,
                "reopen_interval": 0.2, "idle_gap": 0.5, **self.options}
        self.driver = SerialDriver.from_options("console", opts, formats.object_length if self.measure else None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            for capture in self.driver.captures(self.stop):
                running = None if self.sender is None else self.sender.poll() is None
                self.taken.append(Taken(capture, time.monotonic(), running))
                if self.delay:
                    time.sleep(self.delay)
                if self.verdict(capture):
                    self.driver.ack(capture, f"2.25.{len(self.taken)}")
                else:
                    self.driver.reject(capture, "refused by the test")
        except BaseException as exc:  # noqa: BLE001 - surfaced by __exit__
            self.error = exc

    def __enter__(self) -> "Receiving":
        self.driver.start()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the driver did not stop"
        if self.error is not None and exc[0] is None:
            raise self.error

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.taken) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.taken) >= count, f"only {len(self.taken)} of {count} objects received"

    @property
    def data(self) -> list[bytes]:
        return [t.capture.data for t in self.taken]


def sample_files(samples: Path) -> dict[str, bytes]:
    """Small real files of different formats (kept small so the suite stays fast)."""
    picks = {
        "E07733S002I009.MR": samples / "ge_genesis" / "E07733S002I009.MR",
        "heart.1": samples / "ge_genesis" / "heart.1",
        "mr.001": samples / "siemens_spi_acrnema" / "mr.001",
        "OT-MONO2-8-a7.dcm": samples / "dicom_vendor_nopreamble" / "OT-MONO2-8-a7_Philips_nopreamble.dcm",
        "scatter_cylinder.hs": samples / "interfile" / "stir" / "recon_test_pack" / "scatter_cylinder.hs",
        # An Interfile data file: raw floats no format claims or measures (446400 bytes: not a
        # multiple of 128, so XMODEM padding shows).
        "init.v": samples / "interfile" / "stir" / "examples" / "recon_demo" / "init.v",
    }
    return {name: path.read_bytes() for name, path in picks.items()}
