"""Every registered driver type is a ``drivers.driver.Driver``; drivers import nothing of the
gateway but ``gateway.capture``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import drivers
from drivers.driver import Driver, driver_problems
from gateway.service import sources


@pytest.mark.parametrize("source_type", sorted(sources.DRIVERS))
def test_registered_driver_satisfies_the_protocol(source_type):
    cls = sources.driver_class(source_type)
    assert Driver in cls.__mro__
    assert driver_problems(cls) == []


class _Partial(Driver):
    """A driver that forgot its verdicts."""

    @classmethod
    def from_options(cls, name, options):
        return cls()

    def start(self):
        pass

    def stop(self):
        pass

    def captures(self, stop):
        return iter(())


class _Loose:
    """Everything a driver has, without saying it is one."""

    uses_state_dir = wants_object_length = False
    from_options = start = stop = captures = ack = reject = defer = _Partial.start


def test_a_class_that_is_not_a_driver_is_refused(monkeypatch):
    monkeypatch.setitem(sources.DRIVERS, "partial", f"{__name__}:_Partial")
    monkeypatch.setitem(sources.DRIVERS, "loose", f"{__name__}:_Loose")
    with pytest.raises(TypeError, match="no ack; no reject; no defer"):
        sources.driver_class("partial")
    with pytest.raises(TypeError, match="does not inherit"):
        sources.driver_class("loose")


def test_drivers_import_only_gateway_capture_from_the_gateway():
    root = Path(drivers.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(root)}: {n}" for n in names
                      if (n == "gateway" or n.startswith("gateway.")) and n != "gateway.capture"]
    assert not found, found
