"""The daemon (``legacy-gateway run``).

- ``daemon``: every configured source and the forwarder, signals, reload.
- ``sources``: source types to driver classes.
- ``sdnotify``: systemd's notify protocol.
"""
