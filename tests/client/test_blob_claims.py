"""A blob claim is exclusive between processes and ends with its holder, however it ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from semafore.client.blob_claims import BlobClaim

HOLD = """
import sys, time
from pathlib import Path
from semafore.client.blob_claims import BlobClaim
claim = BlobClaim.take(Path(sys.argv[1]))
print("held" if claim else "busy", flush=True)
time.sleep(60)
"""


def test_a_claim_excludes_others_until_its_holder_is_killed(tmp_path: Path) -> None:
    blob = tmp_path / "x.blob"
    blob.write_bytes(b"sealed")
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(blob)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            assert BlobClaim.take(blob) is None
        finally:
            holder.kill()
    with BlobClaim.take(blob) as claim:  # type: ignore[union-attr]
        assert claim is not None
        assert BlobClaim.take(blob) is None  # another open of the same file, same process
    again = BlobClaim.take(blob)
    assert again is not None
    again.release()
    again.release()  # idempotent


def test_no_blob_is_an_error_not_a_claim(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BlobClaim.take(tmp_path / "gone.blob")
