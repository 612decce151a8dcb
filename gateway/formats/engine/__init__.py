"""The engine every fixed-header format is read with.

- ``fieldtable``: a vendor header declared as data (one field a line: offset, type, name,
  DICOM target), read, dumped and written by one engine.
- ``hostnum``: numbers as the old hosts wrote them (Data General, VAX, IEEE, both byte orders),
  a reader and an encoder for each.
- ``peek``: a few integer fields read without the engine (and pydicom), for identification.
"""
