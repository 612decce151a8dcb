"""How a STOW-RS answer maps into the outcome table, per instance (PS3.18 10.5.3): the decision
table for the codes and statuses Orthanc's plugin cannot be made to send (out of resources,
SOP class mismatch, warnings, 202, 409); Orthanc's own answers are in test_forward_stow."""

from __future__ import annotations

import json

import pytest

from gateway.delivery.outcomes import Outcome
from gateway.delivery.spool import Item
from gateway.delivery.stow import judge, parse_response


def _item(uid: str) -> Item:
    return Item(uid, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1", "web", "/nowhere", 100, 0, 0.0)


def _ref(uid: str, reason_tag: str | None = None, code: int | None = None) -> dict:
    item = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}, "00081155": {"vr": "UI", "Value": [uid]}}
    if reason_tag:
        item[reason_tag] = {"vr": "US", "Value": [code]}
    return item


def _answer(stored: list[dict], failed: list[dict]) -> bytes:
    doc = {"00081198": {"vr": "SQ", "Value": failed} if failed else {"vr": "SQ"},
           "00081199": {"vr": "SQ", "Value": stored} if stored else {"vr": "SQ"}}
    return json.dumps(doc).encode()


def test_each_instance_by_its_own_reason():
    items = [_item(u) for u in ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")]
    body = _answer([_ref("1.1"), _ref("1.2", "00081196", 0xB000)],
                   [_ref("1.3", "00081197", 0xA700), _ref("1.4", "00081197", 0xA900), _ref("1.5", "00081197", 0xC000)])
    out = {i.sop_instance_uid: s for i, s in judge(items, 202, "Accepted", "application/dicom+json", body)}
    assert out["1.1"].rule.outcome is Outcome.DELIVERED and out["1.1"].detail == "stored"
    assert out["1.2"].rule.outcome is Outcome.DELIVERED and out["1.2"].status == "0xB000"
    assert "coercion" in out["1.2"].detail  # a warning, recorded
    assert out["1.3"].rule.outcome is Outcome.RETRY and out["1.3"].status == "0xA700"
    assert out["1.4"].rule.outcome is Outcome.PERMANENT and out["1.4"].status == "0xA900"
    assert out["1.5"].rule.outcome is Outcome.PERMANENT and out["1.5"].status == "0xC000"
    assert out["1.6"].rule.outcome is Outcome.RETRY  # not named: never taken as stored


@pytest.mark.parametrize("status, outcome", [
    (200, Outcome.DELIVERED), (202, Outcome.RETRY), (401, Outcome.PERMANENT), (403, Outcome.PERMANENT),
    (409, Outcome.PERMANENT), (413, Outcome.PERMANENT), (429, Outcome.RETRY), (500, Outcome.RETRY),
    (503, Outcome.RETRY)])
def test_without_lists_the_http_status_decides(status, outcome):
    (_, sent), = judge([_item("1.1")], status, "", "text/html", b"<html>busy</html>")
    assert sent.rule.outcome is outcome and sent.status == f"HTTP {status}"
    assert sent.rule.destination_down == (status >= 500)


def test_hexadecimal_text_codes_and_xml():
    xml = b"""<?xml version="1.0"?><NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
      <DicomAttribute tag="00081198" vr="SQ"><Item number="1">
        <DicomAttribute tag="00081155" vr="UI"><Value number="1">1.7</Value></DicomAttribute>
        <DicomAttribute tag="00081197" vr="US"><Value number="1">A700</Value></DicomAttribute>
      </Item></DicomAttribute></NativeDicomModel>"""
    listed = parse_response("application/dicom+xml; charset=utf-8", xml)
    assert listed.failed == {"1.7": 0xA700} and listed.read
    for text, code in (("42752", 0xA700), ("0110", 0x0110), ("0xC000", 0xC000), ("272", 0x0110)):
        assert parse_response("application/dicom+xml", xml.replace(b"A700", text.encode())).failed == {"1.7": code}
    assert parse_response("", b"  {\"00081199\": {\"vr\": \"SQ\"}}").read  # no Content-Type: by the first byte
    assert not parse_response("text/html", b"<html/>").read
