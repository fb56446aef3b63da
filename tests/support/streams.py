"""Closing raw asyncio streams so that no socket outlives its test.

``StreamWriter.close()`` only starts closing: over TLS the transport waits for the peer's
close_notify, and a transport still waiting when the test's event loop ends leaves its socket
to the garbage collector, which reports it as unclosed in whichever test runs next.
"""

from __future__ import annotations

import asyncio
import contextlib


async def close_stream(writer: asyncio.StreamWriter, timeout: float = 2.0) -> None:
    """Close gracefully if the peer cooperates within ``timeout``; otherwise abort."""
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
