"""GE formats: Genesis (Signa 5.x, HiSpeed CT, Advantage Windows) and Signa 3.x/4.x.

- ``genesis``: the Genesis field tables and decoder.
- ``signa4x``: the Signa 3.x/4.x (Data General host) field tables and decoder.
- ``pixels``: Genesis pixel encodings (packed line map, DPCM).
- ``geometry``: GE corner points (R/A/S) to a DICOM image plane.
- ``simulate``: simulated Genesis and Signa files, written through the decoders' tables.
"""
