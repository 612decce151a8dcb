"""Siemens fixed-header formats: Somatom Plus (VAX host) and Magnetom Vision ``.IMA`` (SPARC).

- ``recognise``: both formats' identification and length (no pydicom, no numpy).
- ``somatom_plus``, ``vision_ima``: field tables and decoders.
- ``simulate``: simulated files of both.
"""
