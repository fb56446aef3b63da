"""Relay load generator: a real ``semafore serve`` over TLS 1.3, real enrolment, JSON figures.

Run from the repository root: ``.venv/bin/python -m bench.relay --mode pairs --devices 1000``
(docs/performance.md has the method and the figures).
"""
