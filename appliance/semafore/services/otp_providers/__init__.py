"""Ways to deliver a one-time code: ``console`` and ``file`` (labs, tests), ``http`` (an on-site
SMS gateway) and ``smtp`` (an email-to-SMS gateway). Each is an :class:`OtpProvider`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from semafore.config import OtpSettings
from semafore.services.otp_providers.base import OtpDeliveryError, OtpProvider, render_template
from semafore.services.otp_providers.console import ConsoleProvider
from semafore.services.otp_providers.file import FileProvider
from semafore.services.otp_providers.http import HttpProvider
from semafore.services.otp_providers.smtp import SmtpProvider


def build_provider(settings: OtpSettings, resolve: Callable[[Path], Path]) -> OtpProvider:
    """The provider the settings name; ``resolve`` makes config paths absolute."""
    if settings.provider == "file":
        return FileProvider(resolve(settings.file_spool_dir))
    if settings.provider == "http":
        return HttpProvider(settings, ca_file=_maybe(resolve, settings.http_ca_file))
    if settings.provider == "smtp":
        return SmtpProvider(
            settings,
            ca_file=_maybe(resolve, settings.smtp_ca_file),
            password_file=_maybe(resolve, settings.smtp_password_file),
        )
    return ConsoleProvider()


def _maybe(resolve: Callable[[Path], Path], path: Path | None) -> Path | None:
    return None if path is None else resolve(path)


__all__ = [
    "ConsoleProvider",
    "FileProvider",
    "HttpProvider",
    "OtpDeliveryError",
    "OtpProvider",
    "SmtpProvider",
    "build_provider",
    "render_template",
]
