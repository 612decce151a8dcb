"""Configuration: the shipped file is valid, and every kind of mistake is named with line and key."""

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config, parse_config
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "etc" / "legacy-gateway.yaml"

GOOD = """\
destinations:
  - name: pacs
    host: 127.0.0.1
    port: 104
    called_ae: PACS
sources:
  - name: export
    type: folder
    path: /tmp
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "broken.yaml")
    return info.value.problems


def test_shipped_configuration_is_valid_and_starts_the_archive():
    config = load_config(SHIPPED)
    assert config.archive.enabled
    (dest,) = config.destinations
    assert (dest.host, dest.port, dest.called_ae) == ("127.0.0.1", config.archive.port, config.archive.ae_title)
    (source,) = config.sources
    assert source.type == "folder" and source.options["path"] == "./var/incoming"


def test_defaults_fill_what_is_not_given():
    config = parse_config(GOOD)
    dest = config.destinations[0]
    assert dest.calling_ae == config.ae_title == "LEGACYGW"
    assert dest.retry.initial_delay == 5.0 and dest.tls is None
    assert config.sources[0].destinations == ("pacs",)
    assert config.site.uid_root == "2.25"


def test_durations_take_units():
    with_retry = "called_ae: PACS\n    retry: {initial_delay: 500ms, max_delay: 2h, give_up_after: 7d}"
    config = parse_config(GOOD.replace("called_ae: PACS", with_retry))
    retry = config.destinations[0].retry
    assert (retry.initial_delay, retry.max_delay, retry.give_up_after) == (0.5, 7200.0, 604800.0)


def test_wrong_types_are_named_with_line_and_key():
    text = (GOOD.replace("port: 104", "port: one-oh-four")
            .replace("path: /tmp", "path: /tmp\n    recursive: maybe"))
    found = problems(text)
    assert "broken.yaml:4: destinations[0].port: must be a whole number, not 'one-oh-four'" in found
    assert "broken.yaml:10: sources[0].recursive: must be true or false, not 'maybe'" in found


def test_unknown_keys_are_errors_with_a_hint():
    text = GOOD.replace("called_ae: PACS", "called_ae: PACS\n    calling_aet: US") + "colour: blue\n"
    found = problems(text)
    assert "broken.yaml:6: destinations[0].calling_aet: unknown key (did you mean 'calling_ae'?)" in found
    assert "broken.yaml:11: colour: unknown key" in found


def test_missing_destination_section_and_missing_fields():
    assert problems("sources: []\n") == ["broken.yaml:1: destinations: is required"]
    found = problems(GOOD.replace("    called_ae: PACS\n", ""))
    assert found == ["broken.yaml:2: destinations[0].called_ae: is required"]


def test_bad_ports_and_ae_titles():
    found = problems(GOOD.replace("port: 104", "port: 70000")
                     .replace("called_ae: PACS", "called_ae: AN_AE_TITLE_TOO_LONG"))
    assert "broken.yaml:4: destinations[0].port: must be at most 65535, not 70000" in found
    assert "broken.yaml:5: destinations[0].called_ae: must be at most 16 characters, not 20" in found
    assert problems(GOOD.replace("port: 104", "port: 0")) == [
        "broken.yaml:4: destinations[0].port: must be at least 1, not 0"]


def test_source_options_are_checked_per_type():
    found = problems(GOOD.replace("type: folder", "type: floppy"))
    assert "broken.yaml:8: sources[0].type: must be one of " in found[0] and "not 'floppy'" in found[0]
    found = problems(GOOD.replace("path: /tmp", "path: /tmp\n    observer: magic\n    baud: 9600"))
    assert "broken.yaml:10: sources[0].observer: must be one of inotify, polling, not 'magic'" in found
    assert "broken.yaml:11: sources[0].baud: unknown key" in found


def test_cross_references_are_checked():
    found = problems(GOOD + "    destinations: [nowhere]\n")
    assert found == ["broken.yaml:10: sources[0].destinations: no destination named 'nowhere'"]
    found = problems(GOOD.replace("sources:", "  - name: pacs\n    host: h\n    port: 1\n    called_ae: X\nsources:"))
    assert any("name 'pacs' is used twice" in p for p in found)
    found = problems("gateway:\n  uid_root: 1.2.03\n" + GOOD)
    assert found == ["broken.yaml:2: gateway.uid_root: '1.2.03' is not a valid UID root of at most 52 characters"]


def test_yaml_syntax_errors_are_reported_not_raised():
    found = problems("destinations: [\n")
    assert len(found) == 1 and found[0].startswith("broken.yaml:") and "(syntax)" in found[0]


def test_check_config_command_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("port: 104", "port: 70000").replace("type: folder", "type: folder\n    settle: 2s"))
    run = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(bad)], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines == [f"{bad}:4: destinations[0].port: must be at most 65535, not 70000",
                     f"{bad}:9: sources[0].settle: unknown key (did you mean 'settle_time'?)"]
    ok = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(SHIPPED)], capture_output=True, text=True,
                        cwd=ROOT)
    assert ok.returncode == 0, ok.stderr


def test_commitment_listener_binds_to_loopback_unless_a_remote_destination_needs_it():
    local = parse_config(GOOD.replace("called_ae: PACS", "called_ae: PACS\n    storage_commitment: true"))
    assert local.commitment.listen_host(local.destinations) == "127.0.0.1"
    remote = parse_config(GOOD.replace("host: 127.0.0.1", "host: 10.1.2.3").replace(
        "called_ae: PACS", "called_ae: PACS\n    storage_commitment: true\n    commitment_ae: PACSCOMMIT\n"
        "    commitment_hosts: [10.1.2.3]"))
    assert remote.commitment.listen_host(remote.destinations) == "0.0.0.0"
    (dest,) = remote.destinations
    assert (dest.commitment_ae, dest.commitment_hosts) == ("PACSCOMMIT", ("10.1.2.3",))
    chosen = parse_config(GOOD + "commitment:\n  host: 192.0.2.7\n")
    assert chosen.commitment.listen_host(chosen.destinations) == "192.0.2.7"


WEB = """\
destinations:
  - name: cloud
    type: dicomweb
    url: https://pacs.example.org/dicom-web/
    batch: 16
    ca: {ca}
    auth:
      bearer_file: {token}
"""


def test_a_dicomweb_destination(tmp_path):
    ca, token = tmp_path / "ca.pem", tmp_path / "token"
    ca.write_text("x")
    token.write_text("secret\n")
    dest = parse_config(WEB.format(ca=ca, token=token)).destinations[0]
    assert dest.type == "dicomweb" and dest.batch == 16 and dest.associations == 1
    assert dest.web.url == "https://pacs.example.org/dicom-web"  # the trailing slash dropped
    assert (dest.web.ca, dest.web.verify, dest.web.bearer_file) == (str(ca), True, str(token))
    assert dest.address == "https://pacs.example.org/dicom-web" and (dest.host, dest.port) == ("pacs.example.org", 443)
    assert parse_config(GOOD).destinations[0].type == "dimse"


def test_dicomweb_keys_are_checked_per_type(tmp_path):
    text = WEB.format(ca="/ca.pem", token="/t").replace("batch: 16", "batch: 0\n    called_ae: PACS")
    found = problems(text.replace("url: https://pacs.example.org/dicom-web/", "url: pacs.example.org"))
    assert "broken.yaml:4: destinations[0].url: 'pacs.example.org' is not valid here" in found
    assert "broken.yaml:5: destinations[0].batch: must be at least 1, not 0" in found
    assert "broken.yaml:6: destinations[0].called_ae: unknown key" in found
    found = problems(GOOD.replace("called_ae: PACS", "called_ae: PACS\n    url: http://x/dicom-web"))
    assert found == ["broken.yaml:6: destinations[0].url: unknown key"]
    found = problems(WEB.format(ca="/ca.pem", token="/t").replace("bearer_file:", "token_file:"))
    assert "broken.yaml:8: destinations[0].auth.token_file: unknown key" in found


def test_dicomweb_files_and_auth_are_checked(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret\n")
    found = problems(WEB.format(ca=tmp_path / "missing.pem", token=token))
    assert found == [f"broken.yaml:6: destinations[0].ca: {tmp_path / 'missing.pem'} does not exist or is not a file"]
    both = WEB.format(ca=token, token=token) + "      basic_user: gw\n"
    assert "destinations[0].auth: bearer_file or basic_user/basic_password_file, not both" in problems(both)[0]
    half = WEB.format(ca=token, token=token).replace("bearer_file: " + str(token), "basic_user: gw")
    assert "destinations[0].auth: basic_user and basic_password_file go together" in problems(half)[0]
    plain = WEB.format(ca=token, token=token).replace("https://", "http://")
    assert problems(plain) == ["broken.yaml:6: destinations[0].ca: only used with an https:// url"]


def test_a_missing_folder_is_an_error_unless_create_says_so(tmp_path):
    from drivers.folder import FolderDriver

    missing = tmp_path / "exports"
    text = GOOD.replace("path: /tmp", f"path: {missing}")
    expected = f"broken.yaml:9: sources[0].path: {missing} does not exist (create it, or set create: true)"
    assert expected in problems(text)
    config = parse_config(text.replace(f"path: {missing}", f"path: {missing}\n    create: true"), "ok.yaml")
    assert config.sources[0].options["create"] is True
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FolderDriver("export", missing).start()  # the driver refuses too (the folder vanished since the check)
    driver = FolderDriver("export", missing, create=True)
    driver.start()
    try:
        assert missing.is_dir()
    finally:
        driver.stop()
