"""The daemon (``legacy-gateway run``).

- ``daemon``: every configured source and the forwarder, signals, reload.
- ``sources``: source types to driver classes.
- ``lock``: one run per spool and per watched folder (``flock`` on the directory).
- ``sdnotify``: systemd's notify protocol.
"""
