"""Drivers know their medium (folders, tapes, serial lines, DICOM senders), never the vendor formats.

A driver yields ``gateway.capture.Capture`` objects and releases its source only when told
``ack``; it imports nothing else from ``gateway``. ``driver`` holds the ``Driver`` protocol
every driver class inherits: what the service calls, and when.

- ``folder``: an export folder (one closed file, one capture).
- ``dicom_scp``: a Storage SCP (one C-STORE, one capture, answered with its verdict).
- ``tape/``: tape drives and images: ``records`` (the record stream), ``device`` (SCSI
  drives), ``images`` (SIMH, AWS, raw), ``medium`` (which one a path is), ``files`` and
  ``labels`` (tape files), ``journal``, ``session`` (one read of one tape), ``source`` (the
  service's tape source), ``writers`` (SIMH and AWS images).
- ``serial/``: RS-232 lines: ``line`` (the port), ``session`` (what a protocol receiver
  needs), ``xmodem``, ``external`` (lrzsz and gkermit), ``raw``, ``source`` (the service's
  serial source), ``send`` (sending, for ``simulate --serial``), ``inotify``.
"""
