"""Tapes: drives and images read record by record, one capture per tape file (see ``drivers``)."""
