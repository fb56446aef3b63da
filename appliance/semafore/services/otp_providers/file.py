"""Test and lab provider: one JSON file per message in a spool directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from semafore.services.otp_providers.base import OtpDeliveryError
from semafore.storage.otp_spool import write_spool_message


class FileProvider:
    name = "file"

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir

    async def send(self, phone: str, message: str) -> None:
        try:
            await asyncio.to_thread(
                write_spool_message, self.spool_dir, {"to": phone, "message": message}
            )
        except OSError as exc:
            raise OtpDeliveryError(f"OTP spool not writable ({exc.strerror})") from None
