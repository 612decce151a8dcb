"""legacy-gateway: pre-DICOM scanner exports to DICOM, delivered to a PACS.

The path of one image, and where each step lives::

    drivers/            the media: folder, tape/, serial/ (bytes + where they came from)
    gateway/capture.py  the one type drivers share with the gateway
    gateway/pipeline.py identify -> decode -> normalise -> spool -> ack/reject
    gateway/formats/    every vendor format: the registry, the field-table engine, one
                        package per family (ge/, tagstream/, siemens/, dicom/)
    gateway/dicom/      DICOM rules every format shares: values, geometry, IODs, UIDs, normalise
    gateway/delivery/   after the spool: spool, forwarder, association, outcomes, commitment
    gateway/service/    the daemon: sources, systemd notify
    gateway/console/    the HTTP listener: metrics, web console, the data status also prints
    gateway/cli.py      the command line; one module per sub-command in gateway/commands/
    gateway/logs.py     one line per event; library lines and pydicom's quoted values tamed
    gateway/private.py  files with patient data are the owner's (or a group's) only
    gateway/simulate/   simulated files on media (each format's writer lives with its format)
"""

__version__ = "0.1.0"
