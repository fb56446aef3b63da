"""The server's TLS context: TLS 1.3 only, certificate and key from the configuration."""

from __future__ import annotations

import ssl

from semafore.config import ConfigError, Settings


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["http/1.1"])
    certificate = settings.resolve(settings.server.tls_certificate)
    private_key = settings.resolve(settings.server.tls_private_key)
    try:
        context.load_cert_chain(certificate, private_key)
    except FileNotFoundError as exc:
        key = "server.tls_certificate" if exc.filename == str(certificate) else (
            "server.tls_private_key"
        )
        raise ConfigError(f"{key}: file not found") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "server.tls_certificate / server.tls_private_key: cannot load the certificate "
            f"and key ({getattr(exc, 'reason', None) or exc})"
        ) from None
    return context
