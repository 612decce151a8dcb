"""Tag streams: ACR-NEMA 1.0/2.0 and Siemens/Philips SPI (group, element, length, value).

- ``stream``: byte order detection and the element walk.
- ``recognise``: which kind of tag stream the bytes begin (SPI or not), for every decoder's ``identify``;
  the ACR-NEMA and SPI formats' identification and length (no pydicom, no numpy).
- ``dictionary``: the data dictionary of ACR-NEMA and SPI (types for implicit-VR values).
- ``convert``: parsed elements to a pydicom dataset, values made conformant.
- ``mapping``: retired ACR-NEMA attributes to their DICOM successors.
- ``siemens_shadow``: Siemens SPI shadow groups to DICOM.
- ``geometry``: Siemens and ACR-NEMA coordinates to patient LPS.
- ``packed12``: ACR-NEMA packed 12-bit pixels.
- ``extent``: where a tag-encoded object ends (also used by the DICOM pass-through).
- ``acr_nema``, ``siemens_spi``: the two decoders.
- ``simulate``: simulated ACR-NEMA and SPI streams.
"""
