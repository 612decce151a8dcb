"""Files that form one object (a header and the data file it names), taken together from a folder.

The folder driver knows no format. It is given a callable, ``companions(data) -> list[str] |
None`` (``gateway.formats.companions``): the names of the other files an object needs,
relative to it, ``[]`` for a complete object, None for bytes no format claims. From that
alone this module decides, per settled file:

* a complete object is handed over at once (nothing changes for single-file formats);
* an object naming companions waits until each of them is settled too, then goes as one
  capture whose ``parts`` hold their bytes (and whose origin lists their paths, so the driver
  moves them with it on ack or reject); a companion still missing after ``orphan_time`` does
  not hold it longer: it goes without, and its decoder rejects it naming the key;
* bytes nobody claims may be a data file whose header has not arrived: they wait
  ``orphan_time`` for a header to name them, and only then go (to be rejected as an orphan).

A file is read once when it is first judged; a file waiting is not read again until it
changes or its wait ends. One thread uses a ``Grouping``: the one iterating the driver's
captures, which in the service also delivers the verdicts (``ack``/``reject``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from gateway.capture import Capture

Companions = Callable[[bytes], "list[str] | None"]


class Folder(Protocol):
    """What grouping needs of the folder driver."""

    path: Path

    def _read(self, path: Path) -> Capture | None: ...

    def _note(self, path: Path) -> None: ...

    def _eligible_name(self, path: Path) -> bool: ...


@dataclass
class _Wait:
    key: tuple[int, int]
    since: float
    needs: dict[str, Path] = field(default_factory=dict)  # empty: unclaimed bytes waiting for a header


def _key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Grouping:
    def __init__(self, companions: Companions, orphan_time: float):
        self.companions = companions
        self.orphan_time = orphan_time
        self._waiting: dict[Path, _Wait] = {}
        self._in_flight: set[Path] = set()
        self._released: dict[Path, tuple[int, int] | None] = {}  # companions that went, as they were

    def take(self, path: Path, ready: list[Path], folder: Folder) -> Capture | None:
        """The capture to hand over for the settled file ``path`` now, or None: it waits, or it
        goes (or went) with another file."""
        key = _key(path)
        if key is None:
            self._waiting.pop(path, None)
            return None
        if path in self._claimed() or self._released.get(path) == key:
            return None  # a companion: its object takes (or took) it
        now = time.monotonic()
        wait = self._waiting.get(path)
        if wait is not None and wait.key == key:
            return self._again(path, wait, set(ready), folder, now)
        capture = folder._read(path)
        if capture is None:
            return None
        names = self.companions(capture.data)
        if names is None and self.orphan_time > 0:
            return self._hold(path, _Wait(key, now), folder)
        if not names:
            self._waiting.pop(path, None)
            return capture
        needs = {name: Path(os.path.normpath(path.parent / name)) for name in names}
        return self._complete(path, _Wait(key, now, needs), capture, set(ready), folder, now)

    def release(self, capture: Capture) -> list[Path]:
        """The companion files that went with ``capture``; they are no longer held for it."""
        paths = [Path(p) for p in capture.origin.details.get("companions", {}).values()]
        self._in_flight.difference_update(paths)
        for path in paths:
            key = _key(path)
            if key is not None:  # kept in place (after_success: keep): not taken again
                self._released[path] = key
        return paths

    # -- inside ---------------------------------------------------------------------------

    def _claimed(self) -> set[Path]:
        claimed = set(self._in_flight)
        for path, wait in list(self._waiting.items()):
            if wait.needs and not path.exists():
                del self._waiting[path]  # the header went away: its data file is free again
                continue
            claimed.update(wait.needs.values())
        return claimed

    def _hold(self, path: Path, wait: _Wait, folder: Folder) -> None:
        self._waiting[path] = wait
        folder._note(path)  # stays a candidate: looked at again once settled, not read again
        return None

    def _again(self, path: Path, wait: _Wait, ready: set[Path], folder: Folder, now: float) -> Capture | None:
        """A file judged before and unchanged since: go once its wait is over."""
        if not wait.needs:
            if now - wait.since < self.orphan_time:
                return None
            capture = folder._read(path)
            self._waiting.pop(path, None)
            if capture is None:
                return None
            details = {**capture.origin.details,
                       "orphan": f"no header named it as its data file within {self.orphan_time:g} s"}
            return replace(capture, origin=replace(capture.origin, details=details))
        if not self._due(path, wait, ready, now):
            return None
        capture = folder._read(path)
        return None if capture is None else self._complete(path, wait, capture, ready, folder, now)

    def _settled(self, path: Path, ready: set[Path]) -> bool:
        if path in ready:
            return True
        wait = self._waiting.get(path)  # judged settled earlier (as unclaimed bytes) and unchanged
        return wait is not None and not wait.needs and wait.key == _key(path)

    def _due(self, path: Path, wait: _Wait, ready: set[Path], now: float) -> bool:
        """Every companion settled, or the wait for a missing one over (one still being written
        restarts the wait: it is arriving)."""
        pending = [p for p in wait.needs.values() if p != path and not self._settled(p, ready)]
        if not pending:
            return True
        if any(p.exists() for p in pending):
            wait.since = now
        return now - wait.since >= self.orphan_time

    def _complete(self, path: Path, wait: _Wait, capture: Capture, ready: set[Path], folder: Folder,
                  now: float) -> Capture | None:
        if not self._due(path, wait, ready, now):
            return self._hold(path, wait, folder)
        self._waiting.pop(path, None)
        parts: dict[str, bytes] = {}
        taken: dict[str, str] = {}
        for name, companion in wait.needs.items():
            if companion == path:
                parts[name] = capture.data  # data in the header's own file
                continue
            if not folder._eligible_name(companion) or not self._settled(companion, ready):
                continue  # outside the folder, or never arrived: the decoder names what is missing
            try:
                parts[name] = companion.read_bytes()
            except OSError:
                continue
            taken[name] = str(companion)
            self._waiting.pop(companion, None)
            self._in_flight.add(companion)
        details = {**capture.origin.details, "companions": taken}
        return replace(capture, parts=parts, origin=replace(capture.origin, details=details))
