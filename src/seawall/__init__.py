"""Seawall: keep private source, secrets and model weights out of releases."""

__version__ = "0.1.0"
