"""GE formats: Genesis (Signa 5.x, HiSpeed CT, Advantage Windows), Signa 3.x/4.x and CT 9800.

- ``recognise``: the three formats' identification (no pydicom, no numpy).
- ``genesis``: the Genesis field tables and decoder.
- ``signa4x``: the Signa 3.x/4.x (Data General host) field tables and decoder.
- ``ct9800``: the CT 9800 (Data General host, word pointers) field tables and decoder.
- ``pixels``: Genesis pixel encodings (packed line map, DPCM).
- ``ct9800_pixels``: the CT 9800 line map and byte code.
- ``geometry``: GE corner points (R/A/S) to a DICOM image plane.
- ``simulate``: simulated Genesis and Signa files, written through the decoders' tables.
- ``simulate_9800``: simulated CT 9800 files, written through the decoder's tables.
"""
