"""Process logging for long-running commands: one line per event on stderr (journald)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

from semafore.config import LoggingSettings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs malformed requests with the peer address and an excerpt of the offending
    line (which may hold a token or a phone number). Keep only the kind of error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Error handling request"):
            return True
        record.args = ()
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"malformed HTTP request rejected: {type(exc).__name__}"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        else:
            record.msg = "error handling request outside the application"
        return True


def configure_logging(settings: LoggingSettings) -> None:
    logging.basicConfig(level=settings.level.upper(), format=FORMAT, force=True)
    logging.getLogger("aiohttp.server").addFilter(_MalformedRequestFilter())
