"""Which `send-file` is uploading a sealed blob right now.

Two `send-file` runs of the same file to the same destination would otherwise both pick the
same interrupted upload, and the second would either fight the first for the appliance's upload
or drop it as stale. Each run holds an exclusive `flock` on the blob it uploads for as long as
it runs; the kernel releases it when the process ends in any way (SIGKILL included), so a
killed run never leaves a claim behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class BlobClaim:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, blob_path: Path) -> BlobClaim | None:
        """The claim, or None while another process holds it. FileNotFoundError if no blob."""
        fd = os.open(blob_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BlobClaim:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
