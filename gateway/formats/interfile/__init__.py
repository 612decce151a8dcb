"""Interfile 3.3: a text header (``header``), identification, length and the data file's name
(``recognise``), the data file's layout and pixels (``layout``), the NM Image IOD for nuclear
medicine kinds (``nm``) and the decoder (``decoder``)."""
