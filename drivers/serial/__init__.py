"""Serial lines: objects received over RS-232 with the protocols of their day (see ``drivers``)."""
