"""DICOM rules shared by every format, written once.

- ``values``: text values made conformant to their value representation.
- ``vectors``: three-vectors for image geometry.
- ``geometry``: Patient Orientation letters and the Image Plane attributes of an LPS plane.
- ``pixels``: the Image Pixel module and the one image size check before allocation.
- ``iods``: what each IOD we write must contain.
- ``uids``: deterministic UIDs from a vendor identity.
- ``unknown``: elements of a standard group that the standard does not define, removed on record.
- ``normalize``: a decoder's result made a complete, valid instance (DESIGN step 4).
- ``deferred``: datasets whose large values stay in their file, written out by copying them.
"""
