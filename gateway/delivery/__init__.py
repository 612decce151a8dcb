"""What happens after the spool: durable storage and delivery to every destination.

- ``spool``: Part-10 files plus one SQLite row per (instance, destination); durable first.
- ``flush``: one ``syncfs`` of the spool's file system for a whole group, where that is sound.
- ``space``: the free-space floor that pauses intake, and the reserve that keeps delivery going.
- ``forwarder``: per destination, lanes that claim due rows, send, and settle outcomes.
- ``sender``: what a lane sends through (open, send a batch, close, probe), per destination type.
- ``association``: one reused association to one destination (DIMSE).
- ``stow``: STOW-RS over reused HTTP connections, a batch per multipart request (DICOMweb).
- ``store_request``: a C-STORE request written from its spool file onto the socket.
- ``store_response``: a C-STORE response read off the socket by the waiting thread.
- ``pynetdicom_internals``: every use of pynetdicom's private members, checked at import.
- ``outcomes``: the tables that classify every outcome (delivered, retry, dead-letter).
- ``commitment``: Storage Commitment reports from destinations.
- ``tls``: TLS towards a destination (DICOM or HTTPS).
- ``metrics``: Prometheus metrics.
- ``archive``: the built-in Storage SCP, a stand-in PACS.
"""
