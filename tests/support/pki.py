"""Test certificates made with the openssl command line tool: CAs and the leaves they sign."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

OPENSSL = shutil.which("openssl")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def make_leaf(folder: Path, name: str, ca: str, usage: str) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=folder)
    (folder / f"{name}.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)


def server_pem(folder: Path, name: str = "server") -> Path:
    """The leaf's certificate and key in one PEM file (what Orthanc's SslCertificate takes)."""
    pem = folder / f"{name}.pem"
    pem.write_text((folder / f"{name}.crt").read_text() + (folder / f"{name}.key").read_text())
    return pem


def make_pki(folder: Path) -> Path:
    """The certificates the TLS tests use: ``ca`` signs a ``server`` and a ``client``;
    ``other-ca`` signs nothing we meet (a peer it vouches for must be refused)."""
    if OPENSSL is None:
        raise RuntimeError("the openssl command line tool is needed to make test certificates "
                           "(apt-get install openssl)")
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    make_leaf(folder, "server", "ca", "serverAuth")
    make_leaf(folder, "client", "ca", "clientAuth")
    return folder
