"""DICOM that needs no conversion: Part-10 files and headerless implicit-VR streams.

- ``passthrough``: the two decoders; values kept, only what is missing added.
"""
