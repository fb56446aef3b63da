"""An upload reads its TLS connection in large pieces while its body streams, and the
connection's read buffer is back to the small, idle size afterwards (docs/performance.md)."""

from __future__ import annotations

import asyncio
import ssl
from types import SimpleNamespace
from typing import Any

import pytest

from semafore.web.server import UPLOAD_TLS_READ_BUFFER_BYTES, large_tls_reads


def tls_request(protocol: Any) -> Any:
    return SimpleNamespace(transport=SimpleNamespace(_ssl_protocol=protocol))


async def test_the_buffer_grows_for_the_upload_and_shrinks_after() -> None:
    protocol = asyncio.sslproto.SSLProtocol(
        asyncio.get_running_loop(), asyncio.Protocol(), ssl.create_default_context(), None,
        server_side=False, server_hostname="localhost",
    )
    idle = type(protocol).max_size
    with large_tls_reads(tls_request(protocol)):
        assert len(protocol.get_buffer(-1)) == UPLOAD_TLS_READ_BUFFER_BYTES
    assert "max_size" not in vars(protocol)
    assert len(protocol.get_buffer(-1)) == idle
    with pytest.raises(ConnectionResetError), large_tls_reads(tls_request(protocol)):
        protocol.get_buffer(-1)
        raise ConnectionResetError  # the body ended badly: the buffer shrinks all the same
    assert "max_size" not in vars(protocol)
    assert len(protocol.get_buffer(-1)) == idle
    protocol.connection_lost(None)  # never connected: just close its transport object


def test_other_transports_are_left_alone() -> None:
    with large_tls_reads(tls_request(None)):
        pass
    with large_tls_reads(SimpleNamespace(transport=None)):
        pass
