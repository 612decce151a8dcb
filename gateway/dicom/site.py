"""The site's rules for every converted instance, as the configuration gives them.

A module of its own, without pydicom, so that reading and checking a configuration
(``check-config``, ``status``) does not load the DICOM libraries it never uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteRules:
    """Site-wide rules from the configuration.

    Institution and station names fill only what the source left empty; the patient-ID
    prefix is added once (never twice on re-ingest) to every instance converted from a
    vendor format, so the PACS can tell legacy IDs from today's.
    """

    institution_name: str | None = None
    station_name: str | None = None
    patient_id_prefix: str | None = None
    uid_root: str = "2.25"
    keep_vendor_header: bool = True
