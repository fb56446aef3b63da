"""Lab provider: prints the message on standard error. The only place a code is ever printed."""

from __future__ import annotations

import sys
from typing import TextIO

WARNING = "LAB ONLY — NOT FOR PRODUCTION: the console OTP provider prints one-time codes"


class ConsoleProvider:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, phone: str, message: str) -> None:
        stream = self._stream or sys.stderr
        print(f"*** {WARNING} ***\nOTP for {phone}: {message}", file=stream, flush=True)
