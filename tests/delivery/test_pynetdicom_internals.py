"""pynetdicom's private members: used in one module only, checked at import, and without them
the forwarder still delivers through pynetdicom's public ``send_c_store``."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE, Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider

from gateway.delivery import pynetdicom_internals as internals

ROOT = Path(__file__).resolve().parents[2]
THE_MODULE = ROOT / "gateway" / "delivery" / "pynetdicom_internals.py"


# -- (a) the check ---------------------------------------------------------------------------

def test_the_installed_pynetdicom_passes_the_check():
    assert internals.problems() == []
    assert internals.FAST and internals.WHY_NOT_FAST == ""


def test_pyproject_allows_the_versions_the_module_was_tested_with():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in dependencies if re.match(r"pynetdicom\b", d))
    low, high = (".".join(map(str, v)) for v in (internals.TESTED_FROM, internals.TESTED_BELOW))
    assert spec.replace(" ", "") == f"pynetdicom>={low},<{high}"


def _without_after_init(cls, owner: str, name: str, replacement=None):
    """``cls.__init__`` that leaves ``name`` off (or replaced) on the object ``owner`` names
    ("self", or an attribute of it): a release that dropped or reshaped that member."""
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        target = self if owner == "self" else getattr(self, owner)
        if replacement is None:
            delattr(target, name)
        else:
            setattr(target, name, replacement)

    return __init__


@pytest.mark.parametrize("what, expected", [
    ("version", "outside the tested"),
    ("create_socket", "AE._create_socket"),
    ("serve_request", "Association._serve_request"),
    ("is_transport_event", "_is_transport_event"),
    ("run_loop_delay", "_run_loop_delay"),
    ("idle_timer", "_idle_timer"),
    ("reactor_checkpoint", "_reactor_checkpoint"),
    ("event_queue", "event_queue"),
    ("msg_queue", "msg_queue"),
    ("get_msg", "get_msg"),
])
def test_the_check_names_what_is_missing_or_reshaped(monkeypatch, what, expected):
    import pynetdicom

    if what == "version":
        monkeypatch.setattr(pynetdicom, "__version__", "3.1.0")
    elif what == "create_socket":
        monkeypatch.setattr(AE, "_create_socket", lambda self, assoc, address: None)
    elif what == "serve_request":
        monkeypatch.delattr(Association, "_serve_request")
    elif what == "is_transport_event":
        monkeypatch.delattr(DULServiceProvider, "_is_transport_event")
    elif what == "get_msg":
        monkeypatch.delattr(DIMSEServiceProvider, "get_msg")
    elif what == "reactor_checkpoint":
        monkeypatch.setattr(Association, "__init__", _without_after_init(Association, "self", "_reactor_checkpoint"))
    elif what == "msg_queue":
        monkeypatch.setattr(DIMSEServiceProvider, "__init__",
                            _without_after_init(DIMSEServiceProvider, "self", "msg_queue", replacement=[]))
    else:
        monkeypatch.setattr(DULServiceProvider, "__init__",
                            _without_after_init(DULServiceProvider, "self",
                                                f"_{what}" if what != "event_queue" else what))
    found = internals.problems()
    assert len(found) == 1 and expected in found[0], found


# -- (b) without them: pynetdicom's public path, to a real storescp ---------------------------

@pytest.mark.parametrize("how", ["version", "serve_request", "none"])
def test_with_the_check_failing_instances_still_arrive_through_send_c_store(storescp, tmp_path, how):
    """The forwarder runs in its own process, where the real pynetdicom was changed before the
    gateway was imported (``tests/support/forward_without_internals.py``); "none" changes
    nothing: there only the RLE instance, converted, goes through ``send_c_store``."""
    done = subprocess.run([sys.executable, "-m", "tests.support.forward_without_internals", how,
                           str(tmp_path / "spool"), str(storescp.port)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pending"] == 0
    received = sorted(str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in storescp.received())
    assert received == sorted(result["uids"])  # each once, the RLE one converted by pynetdicom
    warnings = [line for line in done.stderr.splitlines() if "event=fast_path_off" in line]
    if how == "none":
        assert result["fast"] is True and result["send_c_store"] == 1 and warnings == []
    else:
        assert result["fast"] is False and result["why"] and result["send_c_store"] == 2
        assert len(warnings) == 1 and warnings[0].startswith("WARNING ")
    assert "Test^Forward" not in done.stderr and "FWD0001" not in done.stderr


# -- (c) nobody else touches them ------------------------------------------------------------

# Names that pynetdicom and our own classes both use for members of their own (the spool's
# lock, the folder driver's scan, the send command's helper): a use of pynetdicom's under one
# of them would still go through ``.dul``/``.dimse`` or one of its classes subclassed.
OURS_TOO = {"_lock", "_ready", "_send"}
PRIVATE_MODULE = re.compile(r"\bpynetdicom\._[a-z]\w*|from\s+pynetdicom\s+import\s+(?:\([^)]*|[^\n]*)\b_[a-z]\w*")
PROVIDER = re.compile(r"\.(?:dul|dimse)\b")  # an association's DUL and DIMSE: their queues, socket, naps
MEMBER = re.compile(r"(?:\.|\bdef\s+)(_[a-z]\w*)\b")


def _private_names() -> set[str]:
    """Underscore members of pynetdicom's association machinery, read from its own source."""
    from pynetdicom import acse, ae, association, dimse, dul, timer, transport

    names: set[str] = set()
    for module in (acse, ae, association, dimse, dul, timer, transport):
        source = inspect.getsource(module)
        names |= set(re.findall(r"\bself\.(_[a-z]\w*)", source)) | set(re.findall(r"\bdef (_[a-z]\w*)", source))
    return names - OURS_TOO


def uses(text: str, names: set[str]) -> list[str]:
    found = [m.group(0) for m in PRIVATE_MODULE.finditer(text)] + [m.group(0) for m in PROVIDER.finditer(text)]
    return found + [m.group(0) for m in MEMBER.finditer(text) if m.group(1) in names]


@pytest.mark.parametrize("line, found", [
    ("from pynetdicom import AE, _config, evt", True),
    ("from pynetdicom import (\n    AE,\n    _config,\n)", True),
    ("pynetdicom._config.STORE_SEND_CHUNKED_DATASET = True", True),
    ("sock = assoc.dul.socket", True),
    ("assoc.dimse.msg_queue.put((context_id, msg))", True),
    ("assoc._reactor_checkpoint.clear()", True),
    ("look = dul._is_transport_event", True),
    ("    def _create_socket(self, address):", True),
    ("        self.connected = self._is_connected", True),
    ("        self._lock = threading.RLock()", False),
    ("        return int(args._run(args) or 0)", False),
    ("from pynetdicom import AE, evt", False),
])
def test_the_scan_sees_each_kind_of_use(line, found):
    assert bool(uses(line, _private_names())) is found


def test_no_module_but_the_internals_one_uses_pynetdicoms_private_members():
    names = _private_names()
    assert {"_serve_request", "_run_loop_delay", "_create_socket"} <= names
    offenders = {}
    for folder in ("gateway", "drivers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != THE_MODULE and (found := uses(path.read_text(), names)):
                offenders[str(path.relative_to(ROOT))] = sorted(set(found))
    assert offenders == {}
