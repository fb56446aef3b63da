"""Email-to-SMS gateways: one plain-text mail per message.

``smtp_to`` is a Jinja2 template (sandboxed) that sees ``number``, ``number_digits`` and
``message``, e.g. ``{{ number_digits }}@sms.example.net``. Transport security is ``starttls``
(default), ``tls`` (implicit) or ``none`` (only for a relay on the same host); certificates are
verified against the system store or the configured CA file.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from semafore.config import OtpSettings
from semafore.services.otp_providers.base import OtpDeliveryError, phone_values, render_template


class SmtpProvider:
    name = "smtp"

    def __init__(
        self,
        settings: OtpSettings,
        *,
        ca_file: Path | None = None,
        password_file: Path | None = None,
    ) -> None:
        self._settings = settings
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._password_file = password_file

    def _message(self, phone: str, message: str) -> EmailMessage:
        recipient = render_template(self._settings.smtp_to, **phone_values(phone, message))
        mail = EmailMessage()
        mail["From"] = self._settings.smtp_from
        mail["To"] = recipient
        mail["Subject"] = "SemaFore"
        mail.set_content(message)
        return mail

    def _send_blocking(self, mail: EmailMessage) -> None:
        s = self._settings
        try:
            if s.smtp_security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds,
                    context=self._context,
                )
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
            with client:
                if s.smtp_security == "starttls":
                    client.starttls(context=self._context)
                if s.smtp_username:
                    password = (
                        self._password_file.read_text("utf-8").strip()
                        if self._password_file else ""
                    )
                    client.login(s.smtp_username, password)
                client.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise OtpDeliveryError(f"OTP mail relay failed ({type(exc).__name__})") from None

    async def send(self, phone: str, message: str) -> None:
        mail = self._message(phone, message)
        await asyncio.to_thread(self._send_blocking, mail)
