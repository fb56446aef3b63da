"""The HTTP edge: parse, authenticate, call one service method, render.

Public surface for feature modules under ``web/routes/``: app keys (:mod:`semafore.web.appkeys`),
:func:`read_json_object` / :func:`json_response`, :class:`Metrics`. The application itself is
built by :func:`semafore.app.create_app`.
"""

from semafore.web.bodies import json_response, parse_json_object, read_json_object
from semafore.web.metrics import Metrics

__all__ = ["Metrics", "json_response", "parse_json_object", "read_json_object"]
