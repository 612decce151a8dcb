"""Real DICOM peers for tests: Orthanc and DCMTK's storescp on free loopback ports.

pynetdicom installs console scripts named ``storescp``/``storescu`` that shadow DCMTK's, so
DCMTK tools are always called by their Debian path.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DCMTK_BIN = Path("/usr/bin")
ORTHANC_BIN = shutil.which("Orthanc", path="/usr/sbin:/usr/bin") or "/usr/sbin/Orthanc"
# Debian's orthanc-dicomweb (dpkg -L orthanc-dicomweb)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def dcmtk(tool: str) -> str:
    path = DCMTK_BIN / tool
    if not path.exists():
        raise FileNotFoundError(f"DCMTK's {tool} is not installed at {path} (apt-get install dcmtk)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Orthanc:
    """A private Orthanc: its own storage, DICOM and HTTP ports, no authentication unless asked.

    ``dicomweb`` loads the DICOMweb plugin (STOW-RS at ``dicomweb_url``); ``certificate`` (a PEM
    file with the certificate and its key) serves it over HTTPS through socat in front (Debian's
    Orthanc 1.10.1 crashes, SIGSEGV, at the first TLS handshake with its own SslEnabled); ``users``
    turns on HTTP basic authentication (the helpers below then log in as the first user)."""

    workdir: Path
    aet: str = "ORTHANC"
    dicom_port: int = 0
    http_port: int = 0
    extra: dict[str, Any] | None = None
    proc: subprocess.Popen | None = None
    dicomweb: bool = False
    certificate: Path | None = None
    users: dict[str, str] | None = None
    tls_port: int = 0
    tls_proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """Orthanc's own (plain HTTP) address, for the helpers below."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        if self.certificate:
            return f"https://127.0.0.1:{self.tls_port}/dicom-web"
        return f"{self.base_url}/dicom-web"

    def start(self) -> "Orthanc":
        self.dicom_port = self.dicom_port or free_port()
        self.http_port = self.http_port or free_port()
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "test-orthanc",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "UnknownSopClassAccepted": False,
            "DicomModalities": {},
        }
        if self.dicomweb:
            if not DICOMWEB_PLUGIN.exists():
                raise FileNotFoundError(f"{DICOMWEB_PLUGIN} is missing (apt-get install orthanc-dicomweb)")
            config["Plugins"] = [str(DICOMWEB_PLUGIN)]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        if self.users:
            config.update(AuthenticationEnabled=True, RegisteredUsers=self.users)
        config.update(self.extra or {})
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=2))
        log = open(self.workdir / "orthanc.log", "wb")
        self.proc = subprocess.Popen([ORTHANC_BIN, str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.http_port, 30, self.proc)
        wait_for_port(self.dicom_port, 30, self.proc)
        if self.certificate:
            self.tls_port = self.tls_port or free_port()
            socat = shutil.which("socat")
            if socat is None:
                raise FileNotFoundError("socat is not installed (apt-get install socat)")
            front = open(self.workdir / "socat.log", "wb")
            self.tls_proc = subprocess.Popen(
                [socat, f"OPENSSL-LISTEN:{self.tls_port},bind=127.0.0.1,reuseaddr,fork,"
                        f"cert={self.certificate},verify=0",
                 f"TCP:127.0.0.1:{self.http_port}"], stdout=front, stderr=subprocess.STDOUT)
            wait_for_port(self.tls_port, 20, self.tls_proc)
        return self

    def stop(self) -> None:
        stop_process(self.tls_proc)
        stop_process(self.proc)

    def _open(self, path: str, data: bytes | None = None, timeout: float = 30):
        """A request to Orthanc's REST API (as the test's first user when there are users)."""
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method="POST" if data is not None else "GET")
        if self.users:
            user, password = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        return urllib.request.urlopen(req, timeout=timeout)

    def get(self, path: str) -> Any:
        with self._open(path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any) -> Any:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        with self._open(path, data) as r:
            return json.loads(r.read() or b"null")

    def sop_instance_uids(self) -> list[str]:
        """Every SOP Instance UID Orthanc holds (with repeats, if any were stored twice)."""
        uids = []
        for ident in self.get("/instances"):
            tags = self.get(f"/instances/{ident}/simplified-tags")
            uids.append(tags["SOPInstanceUID"])
        return uids

    def file(self, sop_instance_uid: str) -> bytes:
        found = self.post("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}})
        assert found, f"{sop_instance_uid} not in Orthanc"
        with self._open(f"/instances/{found[0]}/file") as r:
            return r.read()


@dataclass
class StoreSCP:
    """DCMTK's storescp writing every received instance into ``outdir``."""

    workdir: Path
    aet: str = "STORESCP"
    port: int = 0
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def outdir(self) -> Path:
        return self.workdir / "received"

    def start(self) -> "StoreSCP":
        self.port = self.port or free_port()
        self.outdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "storescp.log", "wb")
        cmd = [dcmtk("storescp"), "-aet", self.aet, "-od", str(self.outdir), "+uf", *self.args, str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 20, self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def received(self) -> list[Path]:
        return sorted(p for p in self.outdir.iterdir() if p.is_file())


def dciodvfy_errors(path: Path | str) -> list[str]:
    """The error lines dicom3tools' IOD validator prints for a file (empty when valid)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        raise FileNotFoundError("dciodvfy is not installed (apt-get install dicom3tools)")
    out = subprocess.run([tool, "-new", str(path)], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    return [line for line in text.splitlines() if line.startswith("Error")]
