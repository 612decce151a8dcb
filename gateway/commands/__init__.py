"""Sub-commands of ``legacy-gateway``; see ``gateway.cli``."""
