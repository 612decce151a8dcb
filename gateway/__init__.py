"""legacy-gateway: pre-DICOM scanner exports to DICOM, delivered to a PACS."""

__version__ = "0.1.0"
