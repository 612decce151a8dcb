"""A driver run in a thread by a test, each capture handed to the test's own verdict."""

from __future__ import annotations

import threading
import time


class DriverThread:
    """``with Sub(driver) as run: ... run.wait_for(n)``; a subclass's ``handle`` takes each
    capture (and records it in ``taken``), then acks or rejects it."""

    wait = 10.0          # default seconds ``wait_for`` waits
    noun = "captures"    # what ``wait_for``'s failure counts

    def __init__(self, driver):
        self.driver = driver
        self.taken: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        for capture in self.driver.captures(self.stop):
            if capture is not None:  # None: nothing more ready now (``yields_idle``)
                self.handle(capture)

    def handle(self, capture) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.driver.start()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        self.driver.stop()

    def wait_for(self, count: int, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while len(self.taken) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.taken) >= count, f"only {len(self.taken)} of {count} {self.noun}"
