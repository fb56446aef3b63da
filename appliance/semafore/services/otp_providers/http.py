"""A templated HTTPS request to an on-site SMS gateway.

URL, method, headers and body are Jinja2 templates (sandboxed) that see ``number``,
``number_digits`` and ``message``. TLS is always verified, against the system store or the
configured CA file; redirects are not followed. The request runs in a worker thread with the
standard library client (the service layer does not depend on the web framework).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from semafore.config import OtpSettings
from semafore.services.otp_providers.base import OtpDeliveryError, phone_values, render_template


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class HttpProvider:
    name = "http"

    def __init__(self, settings: OtpSettings, *, ca_file: Path | None = None) -> None:
        self._settings = settings
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )

    def _request(self, phone: str, message: str) -> urllib.request.Request:
        s = self._settings
        values = phone_values(phone, message)
        url = render_template(s.http_url, **values)
        if not url.startswith("https://"):
            raise OtpDeliveryError("OTP gateway URL must be https://")
        headers = {
            name: render_template(value, **values) for name, value in s.http_headers.items()
        }
        body = render_template(s.http_body, **values).encode("utf-8") if s.http_body else None
        # The scheme was checked above: https only.
        return urllib.request.Request(  # noqa: S310
            url, data=body, headers=headers, method=s.http_method
        )

    def _send_blocking(self, request: urllib.request.Request) -> None:
        try:
            with self._opener.open(request, timeout=self._settings.http_timeout_seconds) as resp:
                status = resp.status
                resp.read(65536)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OtpDeliveryError(
                f"OTP gateway unreachable ({type(reason).__name__})"
            ) from None
        if not 200 <= status < 300:
            raise OtpDeliveryError(f"OTP gateway answered HTTP {status}")

    async def send(self, phone: str, message: str) -> None:
        request = self._request(phone, message)
        await asyncio.to_thread(self._send_blocking, request)
