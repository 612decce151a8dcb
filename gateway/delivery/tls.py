"""TLS towards one destination: an ``ssl.SSLContext`` for pynetdicom's ``tls_args``.

Verification is on unless the configuration turns it off: the PACS's certificate must chain to
the configured CA (or the system's CAs when none is given) and name the host we connect to.
A client certificate and key are presented when configured (PACS that require mutual TLS).
"""

from __future__ import annotations

import ssl

from gateway.config import Destination, TLSConfig


def client_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key or None)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tls_args(dest: Destination) -> tuple[ssl.SSLContext, str] | None:
    """What ``AE.associate(tls_args=...)`` takes, or None for plain TCP."""
    if dest.tls is None:
        return None
    return client_context(dest.tls), dest.host
