"""On-box verification that only ciphertext rests on the appliance: search files and logs for
known secrets (the plaintexts a verification run sent, its phone numbers and its tokens) in
the encodings a careless implementation would leave them in.

The values searched for never appear in a report: a finding names the secret's label, the
encoding, the file and the offset.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class Needle:
    """One secret to search for. `kind`: plaintext, phone, token."""

    label: str
    kind: str
    value: bytes = field(repr=False)

    def forms(self) -> list[tuple[str, bytes]]:
        """(encoding name, bytes) pairs: raw, UTF-16, hex, and base64 at every alignment."""
        v = self.value
        out = [("raw", v), ("utf-16le", _utf16(v)), ("hex", v.hex().encode())]
        out.append(("HEX", v.hex().upper().encode()))
        for shift in range(3):
            # The middle of the encoding is independent of what surrounds the value.
            padded = b"\x00" * shift + v
            for name, enc in (
                ("base64", base64.b64encode(padded)),
                ("base64url", base64.urlsafe_b64encode(padded)),
            ):
                core = enc.rstrip(b"=")
                lead, trail = (shift * 4 + 2) // 3 + 1, 3
                if len(core) > lead + trail + 8:
                    out.append((f"{name}/{shift}", core[lead:-trail]))
        if self.kind == "phone" and v.startswith(b"+"):
            out.append(("digits", v[1:]))
        seen: set[bytes] = set()
        unique = []
        for name, form in out:
            if len(form) >= 6 and form not in seen:
                seen.add(form)
                unique.append((name, form))
        return unique


def _utf16(v: bytes) -> bytes:
    try:
        return v.decode("utf-8").encode("utf-16-le")
    except UnicodeDecodeError:
        return v


@dataclass(frozen=True)
class Finding:
    source: str
    needle: str
    kind: str
    encoding: str
    offset: int


@dataclass(frozen=True)
class ScannedSource:
    source: str
    kind: str  # database, wal, journal, blob, log
    bytes: int


@dataclass
class ScanResult:
    scanned: list[ScannedSource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "scanned": [asdict(s) for s in self.scanned],
            "findings": [asdict(f) for f in self.findings],
        }


class Scanner:
    """Searches byte streams for every form of every needle, across chunk boundaries."""

    def __init__(self, needles: Iterable[Needle]) -> None:
        self._forms = [(n, name, form) for n in needles for name, form in n.forms()]
        self._overlap = max((len(f) for _, _, f in self._forms), default=1) - 1

    def scan_stream(
        self, source: str, kind: str, chunks: Iterable[bytes], result: ScanResult
    ) -> None:
        total = 0
        tail = b""
        for chunk in chunks:
            window = tail + chunk
            base = total - len(tail)
            for needle, name, form in self._forms:
                start = 0
                while (hit := window.find(form, start)) != -1:
                    # Hits wholly inside the carried-over tail were reported last time.
                    if hit + len(form) > len(tail):
                        result.findings.append(
                            Finding(source, needle.label, needle.kind, name, base + hit)
                        )
                    start = hit + 1
            total += len(chunk)
            tail = window[-self._overlap :] if self._overlap else b""
        result.scanned.append(ScannedSource(source, kind, total))

    def scan_file(self, path: Path, kind: str, result: ScanResult) -> None:
        try:
            with path.open("rb") as fh:
                self.scan_stream(str(path), kind, iter(lambda: fh.read(CHUNK), b""), result)
        except FileNotFoundError:
            return  # e.g. a -wal file checkpointed away between listing and reading

    def scan_tree(self, root: Path, kind: str, result: ScanResult) -> None:
        for path in _files_under(root):
            self.scan_file(path, kind, result)


def _files_under(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            yield Path(dirpath) / name


def database_files(database_path: Path) -> list[tuple[Path, str]]:
    """The database and its sidecars (WAL, shared memory, rollback journal) that exist."""
    out = [(database_path, "database")]
    for suffix, kind in (("-wal", "wal"), ("-shm", "shm"), ("-journal", "journal")):
        sidecar = Path(f"{database_path}{suffix}")
        if sidecar.exists():
            out.append((sidecar, kind))
    return out
