"""A file beside the database that says "a revocation was just committed".

The server caches which devices are approved. A revocation committed by another process (the
CLI) is in ``session_revocations`` at once, but the server only reads that table when told to.
After COMMIT the revoking process replaces this file; the server ``stat``s it on every request
(about a microsecond) and reads the table before answering when the file changed. Replacing
(rather than touching) gives a new inode each time, so two revocations within one filesystem
timestamp tick are still told apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("semafore.revocations")

Signature = tuple[int, int, int]


class RevocationSignal:
    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + "-revoked")

    def announce(self, seq: int) -> None:
        """Replace the file (content: the newest revocation's seq); warn if it cannot be."""
        temporary = self.path.with_name(f"{self.path.name}.{secrets.token_hex(8)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(f"{seq}\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            log.warning(
                "could not signal the revocation to a running server (%s); "
                "it will apply it within a second",
                exc.strerror or exc,
            )

    def signature(self) -> Signature | None:
        """Identifies the file's current version; None while there is none."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
