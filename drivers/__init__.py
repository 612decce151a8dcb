"""Drivers know their medium (folders, tapes, serial lines), never the vendor formats.

A driver yields ``gateway.capture.Capture`` objects and releases its source only when told
``ack``; it imports nothing else from ``gateway``.
"""
