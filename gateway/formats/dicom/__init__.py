"""DICOM that needs no conversion: Part-10 files and headerless implicit-VR streams.

- ``recognise``: which bytes are Part-10 or headerless DICOM, and how long (no pydicom).
- ``passthrough``: the two decoders; values kept, only what is missing added.
"""
