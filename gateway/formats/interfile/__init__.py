"""Interfile 3.3: a text header (``header``), the data file's layout and pixels (``layout``), the
NM Image IOD for nuclear medicine kinds (``nm``) and the decoder (``decoder``)."""
