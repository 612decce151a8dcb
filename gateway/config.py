"""The configuration: ``etc/legacy-gateway.yaml``, validated in full before anything runs.

The schema below is the single statement of every key, its type, default and limits; the
shipped file documents each of them. Driver options are declared per source type, so each
driver's options are checked as strictly as the rest. Relative paths are taken relative to the
working directory (the README runs from the checkout; a systemd unit uses absolute paths).
"""

from __future__ import annotations

import grp
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from gateway import routing as _routing
from gateway.delivery.space import Floor
from gateway.dicom.site import SiteRules
from gateway.dicom.uids import is_valid_uid
from gateway.errors import ConfigError
from gateway.routing import Routing
from gateway.schema import Bool, Duration, Int, List, Map, Problems, Spec, Str, load

# A DNS name or an IPv4/IPv6 address: letters, digits, dots, hyphens, colons, no spaces.
_HOST_RE = re.compile(r"^[A-Za-z0-9._:%\[\]-]+$")

AE_TITLE = dict(max_len=16, pattern=r"^[\x20-\x5b\x5d-\x7e]*[^ ][\x20-\x5b\x5d-\x7e]*$")

_RETRY = Map(
    {
        "initial_delay": Duration(default=5.0, minimum=0.01, doc="first wait after a retryable failure"),
        "max_delay": Duration(default=600.0, minimum=0.01, doc="cap of the exponential backoff"),
        "give_up_after": Duration(default=7 * 86400.0, minimum=1, doc="dead-letter an item this old"),
    },
)

_TLS = Map(
    {
        "ca": Str(doc="CA bundle that signs the PACS certificate"),
        "cert": Str(doc="our client certificate"),
        "key": Str(doc="our client key"),
        "verify": Bool(default=True, doc="verify the peer's certificate and host name"),
    },
    optional=True,
)

# Keys every destination has, whatever its type.
_DESTINATION_COMMON = {
    "name": Str(required=True, pattern=r"^[A-Za-z0-9_.-]+$"),
    "type": Str(default="dimse", choices=("dimse", "dicomweb"), doc="C-STORE, or STOW-RS over HTTP(S)"),
    "timeout": Duration(default=30.0, minimum=0.1),
    "retry": _RETRY,
    "enabled": Bool(default=True),
}

_AUTH = Map(
    {
        "bearer_file": Str(doc="file holding a bearer token (Authorization: Bearer)"),
        "basic_user": Str(doc="user name for HTTP basic authentication"),
        "basic_password_file": Str(doc="file holding the basic authentication password"),
    },
    optional=True,
)

# Keys per destination type.
DESTINATION_OPTIONS: dict[str, dict[str, Spec]] = {
    "dimse": {
        "host": Str(required=True),
        "port": Int(required=True, minimum=1, maximum=65535),
        "called_ae": Str(required=True, **AE_TITLE),
        "calling_ae": Str(**AE_TITLE),
        "tls": _TLS,
        "associations": Int(default=1, minimum=1, maximum=32),
        "max_per_association": Int(default=1000, minimum=1),
        "storage_commitment": Bool(default=False),
        "commitment_timeout": Duration(default=3600.0, minimum=1),
        "commitment_ae": Str(doc="AE title the PACS sends commitment reports from; default called_ae", **AE_TITLE),
        "commitment_hosts": List(Str(), doc="addresses commitment reports may come from; default any"),
    },
    "dicomweb": {
        "url": Str(required=True, pattern=r"^https?://[^\s/?#]+[^\s?#]*$", doc="the STOW-RS base (…/dicom-web)"),
        "batch": Int(default=32, minimum=1, maximum=1000, doc="instances per multipart request"),
        "connections": Int(default=1, minimum=1, maximum=32, doc="requests in parallel"),
        "ca": Str(doc="CA bundle that signs the server's certificate (https)"),
        "verify": Bool(default=True, doc="verify the server's certificate and host name"),
        "auth": _AUTH,
    },
}


def _destination_options(pairs: dict, node, key: str, problems: Problems) -> tuple[dict, set[str]]:
    """The keys of the destination's type (``dimse`` when it names none), checked like the rest."""
    kind = pairs["type"][1].value if "type" in pairs else "dimse"
    if kind not in DESTINATION_OPTIONS:
        # The "type" field reports the bad choice; its keys cannot be judged without it.
        return {}, set(pairs)
    from yaml.nodes import MappingNode

    own = MappingNode(node.tag, [(k, v) for k, v in node.value if k.value in DESTINATION_OPTIONS[kind]],
                      node.start_mark, node.end_mark)
    return Map(DESTINATION_OPTIONS[kind]).check(own, key, problems) or {}, set(DESTINATION_OPTIONS[kind])


_DESTINATION = Map(_DESTINATION_COMMON, extra=_destination_options)

# Options per source type. Drivers for other media add their entry here.
SOURCE_OPTIONS: dict[str, dict[str, Spec]] = {
    "dicom": {
        "ae_title": Str(required=True, doc="the AE title senders call", **AE_TITLE),
        "host": Str(default="0.0.0.0", doc="listening address"),
        "port": Int(required=True, minimum=1, maximum=65535),
        "allowed": List(Map({"ae": Str(required=True, doc="calling AE title", **AE_TITLE),
                             "host": Str(doc="the sender's address; default any")}),
                        required=True, min_items=1, doc="who may send; anyone else is refused at association"),
        "answer_timeout": Duration(default=60.0, minimum=0.1,
                                   doc="how long a C-STORE waits for the pipeline before 0xA700 (send again)"),
        "max_associations": Int(default=8, minimum=1, maximum=64),
    },
    "folder": {
        "path": Str(required=True),
        "create": Bool(default=False, doc="create the folder if it is missing (else a missing folder is an error)"),
        "observer": Str(default="inotify", choices=("inotify", "polling")),
        "poll_interval": Duration(default=2.0, minimum=0.05),
        "settle_time": Duration(default=2.0, minimum=0.0),
        "recursive": Bool(default=False),
        "after_success": Str(default="move", choices=("move", "delete", "keep")),
        "done_dir": Str(),
        "quarantine_dir": Str(),
        "orphan_time": Duration(default=60.0, minimum=0.0,
                                doc="how long a file no format claims waits for a header naming it as its data file"),
        "max_file_size": Int(default=2 << 30, minimum=1024,
                             doc="bytes; a larger file is quarantined unread (nothing reads it into memory)"),
    },
    "serial": {
        "port": Str(required=True, doc="device (/dev/ttyUSB0) or pyserial URL (rfc2217://host:port)"),
        "protocol": Str(default="xmodem", choices=("xmodem", "ymodem", "zmodem", "kermit", "raw")),
        "baud": Int(default=9600, minimum=50, maximum=4000000),
        "bytesize": Int(default=8, minimum=5, maximum=8),
        "parity": Str(default="none", choices=("none", "even", "odd", "mark", "space")),
        "stopbits": Str(default="1", choices=("1", "1.5", "2")),
        "rtscts": Bool(default=False),
        "xonxoff": Bool(default=False),
        "timeout": Duration(default=10.0, minimum=0.1, doc="silence before a protocol retries"),
        "retries": Int(default=10, minimum=1, maximum=100),
        "idle_gap": Duration(default=2.0, minimum=0.05, doc="raw: silence that ends an unmeasurable object"),
        "max_object_mb": Int(default=64, minimum=1, maximum=4096),
        "reopen_interval": Duration(default=5.0, minimum=0.05),
        "xmodem_check": Str(default="auto", choices=("auto", "crc", "checksum")),
        "work_dir": Str(doc="where rz/gkermit write files while receiving; default a private temp dir"),
    },
    "tape": {
        "device": Str(required=True, doc="tape drive (/dev/nst0: the non-rewinding one) or a tape image file"),
        "format": Str(default="auto", choices=("auto", "device", "simh", "aws", "raw")),
        "block_size": Int(default=0, minimum=0, maximum=1 << 24, doc="0: variable-block mode; raw images need it"),
        "retries": Int(default=3, minimum=0, maximum=100, doc="re-reads of a block after a read error"),
        "on_error": Str(default="skip", choices=("skip", "stop"), doc="after a bad record: go on, or stop the tape"),
        "eject": Bool(default=True, doc="rewind and eject (MTOFFL) a tape once it is read"),
        "poll_interval": Duration(default=5.0, minimum=0.05, doc="how often to look for a loaded tape"),
        "max_file_size": Int(default=64 << 20, minimum=1024, doc="largest tape file taken as one image"),
        "extract_dir": Str(doc="also keep every raw tape file here"),
        "past_eot": Bool(default=False, doc="read on after two filemarks"),
    },
}


def _source_options(pairs: dict, node, key: str, problems: Problems) -> tuple[dict, set[str]]:
    if "type" not in pairs:
        return {}, set()
    tnode = pairs["type"][1]
    kind = tnode.value
    if kind not in SOURCE_OPTIONS:
        # The "type" field reports the bad choice; its options cannot be judged without it.
        return {}, set(pairs)
    spec = Map(SOURCE_OPTIONS[kind])
    # Validate only the type's own keys; common keys are checked by the outer map.
    from yaml.nodes import MappingNode

    own = MappingNode(node.tag, [(k, v) for k, v in node.value if k.value in SOURCE_OPTIONS[kind]],
                      node.start_mark, node.end_mark)
    return {"options": spec.check(own, key, problems)}, set(SOURCE_OPTIONS[kind])


def _source_spec() -> Map:
    return Map(
        {
            "name": Str(required=True, pattern=r"^[A-Za-z0-9_.-]+$"),
            "type": Str(required=True, choices=tuple(sorted(SOURCE_OPTIONS))),
            "destinations": List(Str(), doc="destination names; default all"),
            "enabled": Bool(default=True),
            "routes": _routing.ROUTES,
            "coerce": _routing.COERCE,
        },
        extra=_source_options,
    )


_GATEWAY = Map(
    {
        "ae_title": Str(default="LEGACYGW", **AE_TITLE),
        "state_dir": Str(default="./var/state"),
        "spool_dir": Str(default="./var/spool"),
        "uid_root": Str(default="2.25"),
        "log_level": Str(default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        "durable": Bool(default=True, doc="fsync spool files and directories"),
        "watchdog": Bool(default=True),
        "min_free_mb": Int(default=500, minimum=0, doc="intake pauses below this much free space ..."),
        "min_free_percent": Int(default=5, minimum=0, maximum=50, doc="... or this share, whichever is smaller"),
        "file_group": Str(doc="group that may read spool, journal and archive files; default none"),
    },
)

_SITE = Map(
    {
        "institution_name": Str(max_len=64),
        "station_name": Str(max_len=16),
        "patient_id_prefix": Str(max_len=16),
        "keep_vendor_header": Bool(default=True),
    },
)

_ARCHIVE = Map(
    {
        "enabled": Bool(default=False),
        "host": Str(default="127.0.0.1"),
        "port": Int(default=11112, minimum=1, maximum=65535),
        "ae_title": Str(default="ARCHIVE", **AE_TITLE),
        "directory": Str(default="./var/archive"),
    },
)

_METRICS = Map(
    {
        "enabled": Bool(default=False),
        "host": Str(default="127.0.0.1"),
        "port": Int(default=9477, minimum=1, maximum=65535),
    },
)

# The web console, served on the metrics listener (metrics.host, metrics.port).
_CONSOLE = Map(
    {
        "enabled": Bool(default=False),
        "token_file": Str(doc="file holding the access token; required when metrics.host is not loopback"),
        "show_patient_names": Bool(default=False, doc="show patient names of recent arrivals"),
    },
)

# Where we listen for Storage Commitment reports (N-EVENT-REPORT) that a PACS sends on a new
# association; only started when a destination has storage_commitment: true.
_COMMITMENT = Map(
    {
        "host": Str(doc="listening address; default loopback, or all addresses when a destination "
                        "using commitment is on another host"),
        "port": Int(default=11113, minimum=1, maximum=65535, doc="listening port, registered at the PACS"),
    },
)


def _top_spec() -> Map:
    return Map(
        {
            "gateway": _GATEWAY,
            "destinations": List(_DESTINATION, required=True, min_items=1),
            "sources": List(_source_spec(), default=[]),
            "site": _SITE,
            "archive": _ARCHIVE,
            "metrics": _METRICS,
            "console": _CONSOLE,
            "commitment": _COMMITMENT,
            "routes": _routing.ROUTES,
            "coerce": _routing.COERCE,
        }
    )


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 5.0
    max_delay: float = 600.0
    give_up_after: float = 7 * 86400.0


@dataclass(frozen=True)
class TLSConfig:
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class DicomWeb:
    """A STOW-RS destination's HTTP side. Secrets stay in their files until a request needs them."""

    url: str
    ca: str | None = None
    verify: bool = True
    bearer_file: str | None = None
    basic_user: str | None = None
    basic_password_file: str | None = None


@dataclass(frozen=True)
class Destination:
    name: str
    host: str
    port: int
    called_ae: str
    calling_ae: str
    tls: TLSConfig | None = None
    associations: int = 1
    max_per_association: int = 1000
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    storage_commitment: bool = False
    commitment_timeout: float = 3600.0
    enabled: bool = True
    commitment_ae: str | None = None          # reports come from this AE title (default called_ae)
    commitment_hosts: tuple[str, ...] = ()    # ... and from these addresses (default any)
    type: str = "dimse"                       # or "dicomweb" (then ``web`` is set)
    batch: int = 32                           # instances a lane claims (and, for STOW-RS, sends) at a time
    web: DicomWeb | None = None

    @property
    def address(self) -> str:
        """Where it is, for people: ``AE@host:port`` or the STOW-RS URL."""
        if self.web is not None:
            return self.web.url
        return f"{self.called_ae}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Source:
    name: str
    type: str
    options: dict[str, Any]
    destinations: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Archive:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "ARCHIVE"
    directory: Path = Path("./var/archive")


@dataclass(frozen=True)
class Metrics:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9477


@dataclass(frozen=True)
class Console:
    enabled: bool = False
    token_file: str | None = None
    show_patient_names: bool = False

    def token(self) -> str | None:
        """The access token (read at each start, so a new token needs only a reload)."""
        return Path(self.token_file).read_text().strip() or None if self.token_file else None


@dataclass(frozen=True)
class Commitment:
    host: str | None = None  # None: see listen_host
    port: int = 11113

    def listen_host(self, destinations: Iterable[Destination]) -> str:
        """Where the report listener binds: the configured host, else loopback when every
        destination using commitment is on this machine, else every address (a remote PACS
        must reach us; the listener accepts only the destinations' AE titles and addresses)."""
        if self.host:
            return self.host
        remote = [d for d in destinations if d.storage_commitment and not _is_loopback(d.host)]
        return "0.0.0.0" if remote else "127.0.0.1"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Config:
    path: str
    ae_title: str
    state_dir: Path
    spool_dir: Path
    log_level: str
    durable: bool
    watchdog: bool
    destinations: tuple[Destination, ...]
    sources: tuple[Source, ...]
    site: SiteRules
    archive: Archive
    metrics: Metrics
    commitment: Commitment = Commitment()
    console: Console = Console()
    min_free_mb: int = 500
    min_free_percent: int = 5
    file_group: str | None = None
    routing: Routing = Routing()  # routes and coercions (gateway.routing)

    def floor(self) -> Floor:
        """Free space the spool's intake leaves for delivery (see ``gateway.delivery.space``)."""
        return Floor(self.min_free_mb, self.min_free_percent)

    def destination(self, name: str) -> Destination:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        raise KeyError(f"no destination named {name!r}; configured: {', '.join(d.name for d in self.destinations)}")


def load_config(path: str | Path) -> Config:
    """Read and validate; raises ``ConfigError`` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_config(text, str(path))


def parse_config(text: str, path: str = "<config>") -> Config:
    raw, problems = load(text, path, _top_spec())
    routing = Routing()
    if raw is not None and not problems:
        problems.extend(_cross_checks(raw, path, text))
        routing, found = _routing.build(raw, path)  # reads the Patient ID maps: checked and loaded once
        problems.extend(found)
    if problems or raw is None:
        raise ConfigError(problems)
    return _build(raw, path, routing)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return 1


def _cross_checks(raw: dict, path: str, text: str) -> list[str]:
    problems = []
    names = [d["name"] for d in raw["destinations"]]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"{path}:{_line_of(text, name)}: destinations: name {name!r} is used twice")
    sources = [s["name"] for s in raw["sources"] or []]
    for name in {n for n in sources if sources.count(n) > 1}:
        problems.append(f"{path}:{_line_of(text, name)}: sources: name {name!r} is used twice")
    for i, src in enumerate(raw["sources"] or []):
        for dest in src.get("destinations") or []:
            if dest not in names:
                problems.append(
                    f"{path}:{_line_of(text, dest)}: sources[{i}].destinations: no destination named {dest!r}"
                )
    for i, src in enumerate(raw["sources"] or []):
        if src["type"] == "serial" and src.get("options"):
            from drivers.serial.source import option_problems

            for problem in option_problems(src["options"]):
                problems.append(f"{path}:{_line_of(text, src['name'])}: sources[{i}]: {problem}")
    for i, dest in enumerate(raw["destinations"]):
        tls = dest.get("tls")
        if tls and dest.get("type") != "dicomweb" and bool(tls.get("cert")) != bool(tls.get("key")):
            problems.append(f"{path}:{_line_of(text, 'tls')}: destinations[{i}].tls: cert and key go together")
    group = raw["gateway"].get("file_group")
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            problems.append(f"{path}:{_line_of(text, 'file_group')}: gateway.file_group: no group named {group!r}")
    root = raw["gateway"]["uid_root"]
    if not is_valid_uid(root) or len(root) > 52:
        problems.append(f"{path}:{_line_of(text, 'uid_root')}: gateway.uid_root: {root!r} "
                        "is not a valid UID root of at most 52 characters")
    for check in (_port_clashes, _tls_files, _web_files, _retry_order, _host_names, _folder_paths, _console_access):
        problems.extend(f"{path}:{_line_of(text, needle)}: {problem}" for needle, problem in check(raw))
    return problems


Finding = tuple[str, str]  # (a text to find the line by, the problem)


def _listeners(raw: dict) -> list[tuple[str, str, int]]:
    """What this process listens on: (configuration key, host, port)."""
    out = []
    if raw["archive"]["enabled"]:
        out.append(("archive", raw["archive"]["host"], raw["archive"]["port"]))
    if raw["metrics"]["enabled"] or raw["console"]["enabled"]:
        out.append(("metrics", raw["metrics"]["host"], raw["metrics"]["port"]))
    if any(d.get("storage_commitment") and d["enabled"] for d in raw["destinations"]):
        # without a host it binds to loopback or every address (Commitment.listen_host): assume the wider
        out.append(("commitment", raw["commitment"]["host"] or "0.0.0.0", raw["commitment"]["port"]))
    for i, src in enumerate(raw["sources"] or []):
        options = src.get("options") or {}
        if src["type"] == "dicom" and src["enabled"] and options.get("port"):
            out.append((f"sources[{i}]", options["host"], options["port"]))
    return out


def _port_clashes(raw: dict) -> list[Finding]:
    """Two listeners on one port: the second could never start. A wildcard address clashes
    with every address."""
    found, seen = [], []
    for key, host, port in _listeners(raw):
        for other, other_host, other_port in seen:
            if port == other_port and (host == other_host or "0.0.0.0" in (host, other_host)
                                       or "::" in (host, other_host)):
                found.append((f"port: {port}",
                              f"{key}.port: {port} is also {other}.port; each listener needs its own port"))
        seen.append((key, host, port))
    return found


def _tls_files(raw: dict) -> list[Finding]:
    found = []
    for i, dest in enumerate(raw["destinations"]):
        for key in ("ca", "cert", "key"):
            name = (dest.get("tls") or {}).get(key)
            if name:
                found += _readable_file(name, f"destinations[{i}].tls.{key}")
    return found


def _web_files(raw: dict) -> list[Finding]:
    """A STOW-RS destination's CA and secret files, and an authentication that is one kind."""
    found = []
    for i, dest in enumerate(raw["destinations"]):
        if dest.get("type") != "dicomweb":
            continue
        auth = dest.get("auth") or {}
        if dest.get("auth") is not None:
            basic = bool(auth.get("basic_user")) or bool(auth.get("basic_password_file"))
            if auth.get("bearer_file") and basic:
                found.append(("auth",
                              f"destinations[{i}].auth: bearer_file or basic_user/basic_password_file, not both"))
            elif bool(auth.get("basic_user")) != bool(auth.get("basic_password_file")):
                found.append(("auth", f"destinations[{i}].auth: basic_user and basic_password_file go together"))
            elif not auth.get("bearer_file") and not basic:
                found.append(("auth",
                              f"destinations[{i}].auth: needs bearer_file or basic_user and basic_password_file"))
        if dest.get("ca") and not dest["url"].startswith("https://"):
            found.append((dest["ca"], f"destinations[{i}].ca: only used with an https:// url"))
        files = [("ca", dest.get("ca"))] + [(f"auth.{k}", auth.get(k)) for k in ("bearer_file", "basic_password_file")]
        for key, name in files:
            if name:
                found += _readable_file(name, f"destinations[{i}].{key}")
    return found


def _readable_file(name: str, key: str) -> list[Finding]:
    """The finding for a file the configuration names at ``key`` that this user cannot read."""
    if not os.path.isfile(name):
        return [(name, f"{key}: {name} does not exist or is not a file")]
    if not os.access(name, os.R_OK):
        return [(name, f"{key}: {name} cannot be read by this user")]
    return []


def _retry_order(raw: dict) -> list[Finding]:
    found = []
    for i, dest in enumerate(raw["destinations"]):
        retry = dest["retry"]
        if retry["initial_delay"] > retry["max_delay"]:
            found.append(("initial_delay", f"destinations[{i}].retry: initial_delay is longer than max_delay"))
    return found


def _host_names(raw: dict) -> list[Finding]:
    hosts = [(f"destinations[{i}].host", d["host"]) for i, d in enumerate(raw["destinations"]) if d.get("host")]
    hosts += [(f"{key}.host", host) for key, host, _ in _listeners(raw)]
    return [(host, f"{key}: {host!r} is not a host name or address") for key, host in hosts
            if not _HOST_RE.match(host)]


def _console_access(raw: dict) -> list[Finding]:
    """The console lets its user retry deliveries: beyond this machine only with a token."""
    console, host = raw["console"], raw["metrics"]["host"]
    if not console["enabled"]:
        return []
    token = console.get("token_file")
    if token and not os.access(token, os.R_OK):
        return [(token, f"console.token_file: {token} does not exist or cannot be read")]
    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        return [("console", f"console: metrics.host {host} is reachable from other machines; set console.token_file")]
    return []


def _folder_paths(raw: dict) -> list[Finding]:
    found = []
    for i, src in enumerate(raw["sources"] or []):
        folder = (src.get("options") or {}).get("path") if src["type"] == "folder" else None
        if folder and os.path.exists(folder) and not os.path.isdir(folder):
            found.append((folder, f"sources[{i}].path: {folder} is a file, not a folder"))
        elif folder and not os.path.exists(folder) and not src["options"].get("create"):
            found.append((folder, f"sources[{i}].path: {folder} does not exist (create it, or set create: true)"))
    return found


def _destination(d: dict, ae_title: str) -> Destination:
    common = dict(name=d["name"], timeout=d["timeout"], retry=RetryPolicy(**d["retry"]), enabled=d["enabled"],
                  type=d["type"])
    if d["type"] == "dicomweb":
        auth = d.get("auth") or {}
        url = urlsplit(d["url"])
        web = DicomWeb(url=d["url"].rstrip("/"), ca=d.get("ca"), verify=d["verify"], **auth)
        # host and port only say where it is (status, the console); nothing connects with them
        return Destination(host=url.hostname or "", port=url.port or (443 if url.scheme == "https" else 80),
                           called_ae="", calling_ae=ae_title, associations=d["connections"],
                           max_per_association=1 << 30, batch=d["batch"], web=web, **common)
    return Destination(
        host=d["host"],
        port=d["port"],
        called_ae=d["called_ae"],
        calling_ae=d.get("calling_ae") or ae_title,
        tls=TLSConfig(**d["tls"]) if d.get("tls") else None,
        associations=d["associations"],
        max_per_association=d["max_per_association"],
        storage_commitment=d["storage_commitment"],
        commitment_timeout=d["commitment_timeout"],
        commitment_ae=d.get("commitment_ae"),
        commitment_hosts=tuple(d.get("commitment_hosts") or ()),
        **common,
    )


def _build(raw: dict, path: str, routing: Routing = Routing()) -> Config:
    gw, site, archive, metrics = raw["gateway"], raw["site"], raw["archive"], raw["metrics"]
    ae_title = gw["ae_title"]
    destinations = tuple(_destination(d, ae_title) for d in raw["destinations"])
    all_dests = tuple(d.name for d in destinations if d.enabled)
    sources = tuple(
        Source(
            name=s["name"],
            type=s["type"],
            options=s.get("options") or {},
            destinations=tuple(s.get("destinations") or all_dests),
            enabled=s["enabled"],
        )
        for s in raw["sources"] or []
    )
    return Config(
        path=path,
        ae_title=ae_title,
        state_dir=Path(gw["state_dir"]),
        spool_dir=Path(gw["spool_dir"]),
        log_level=gw["log_level"],
        durable=gw["durable"],
        watchdog=gw["watchdog"],
        destinations=destinations,
        sources=sources,
        site=SiteRules(uid_root=gw["uid_root"], **site),
        archive=Archive(**{**archive, "directory": Path(archive["directory"])}),
        metrics=Metrics(**metrics),
        console=Console(**raw["console"]),
        commitment=Commitment(**raw["commitment"]),
        min_free_mb=gw["min_free_mb"],
        min_free_percent=gw["min_free_percent"],
        file_group=gw.get("file_group"),
        routing=routing,
    )
