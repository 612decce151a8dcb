"""The serial source's options: checked with the rest of the configuration, line by line."""

from __future__ import annotations

import pytest

from drivers.serial.source import SerialDriver
from gateway import formats
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.service.sources import make_driver

BASE = """\
destinations:
  - name: pacs
    host: 127.0.0.1
    port: 104
    called_ae: PACS
sources:
  - name: ct-console
    type: serial
    port: /dev/ttyUSB0
"""


def problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, "gw.yaml")
    return info.value.problems


def test_a_serial_source_with_defaults_becomes_a_driver_with_the_formats_length_check():
    config = parse_config(BASE + "    protocol: zmodem\n    baud: 38400\n    timeout: 500ms\n")
    (source,) = config.sources
    driver = make_driver(source)
    assert isinstance(driver, SerialDriver)
    s = driver.settings
    assert (s.port, s.protocol, s.baud, s.bytesize, s.parity, s.stopbits, s.timeout) == \
        ("/dev/ttyUSB0", "zmodem", 38400, 8, "none", "1", 0.5)
    assert driver.object_length is formats.object_length


def test_seven_bit_even_parity_line_is_fine_for_kermit():
    config = parse_config(BASE + "    protocol: kermit\n    bytesize: 7\n    parity: even\n    stopbits: 2\n")
    assert make_driver(config.sources[0]).settings.line.label == "/dev/ttyUSB0 9600 7E2"


@pytest.mark.parametrize("extra,needle", [
    ("    protocol: xmodem\n    xonxoff: true\n", "xonxoff: xmodem sends bytes 0x11/0x13 unescaped"),
    ("    protocol: raw\n    xonxoff: true\n", "xonxoff: raw sends"),
    ("    protocol: zmodem\n    bytesize: 7\n", "bytesize 7: images are binary"),
    ("    rtscts: true\n    xonxoff: true\n    protocol: zmodem\n", "choose one kind of flow control"),
])
def test_combinations_that_cannot_work_on_a_real_line_are_refused(extra, needle):
    found = problems(extra)
    assert any(needle in p and p.startswith("gw.yaml:7: sources[0]") for p in found), found


@pytest.mark.parametrize("extra,needle", [
    ("    protocol: ftp\n", "protocol: must be one of xmodem, ymodem, zmodem, kermit, raw"),
    ("    parity: evn\n", "parity: must be one of"),
    ("    stopbits: 3\n", "stopbits: must be one of"),
    ("    baudrate: 9600\n", "unknown key (did you mean 'baud'?)"),
    ("    timeout: soon\n", "timeout: must be a duration"),
])
def test_bad_values_are_named_with_line_and_key(extra, needle):
    found = problems(extra)
    assert any(needle in p for p in found), found
