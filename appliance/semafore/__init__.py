"""SemaFore: a self-hosted, air-gap-capable end-to-end-encrypted messaging appliance."""

__version__ = "0.1.0"
