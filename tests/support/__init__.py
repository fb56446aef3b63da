"""Shared test support: a real appliance (``semafore init``) served over real TLS on loopback.

Fixtures are defined in ``tests/conftest.py``; the helpers here can also be used directly
(e.g. for a module-scoped server).
"""
