"""On-box verification that only ciphertext rests on the appliance: search files and logs for
known secrets (the plaintexts a verification run sent, its phone numbers and its tokens) in
the encodings a careless implementation would leave them in.

The values searched for never appear in a report: a finding names the secret's label, the
encoding, the file and the offset.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.errors import Unavailable
from semafore.services.identity import IdentityServices
from semafore.services.otp import CODE_DIGITS
from semafore.storage import Database

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
        files = 0
        for path in _files_under(root):
            self.scan_file(path, kind, result)
            files += 1
        if not files:  # say so: an empty directory was searched, not skipped
            state = "empty" if root.is_dir() else "absent"
            result.scanned.append(ScannedSource(f"{root} ({state})", kind, 0))


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


# -- throwaway accounts ------------------------------------------------------------------------

VERIFY_ORG_NAME = "SemaFore on-box verification"
VERIFY_ACTOR = "operator"
# +999 is not an assigned country code (ITU-T): these numbers can never reach a person.
THROWAWAY_PREFIX = "+999"
_CODE = re.compile(rf"(?<!\d)\d{{{CODE_DIGITS}}}(?!\d)")


def throwaway_phone() -> str:
    return f"{THROWAWAY_PREFIX}{secrets.randbelow(10**9):09d}"


class CapturingOtpProvider:
    """Keeps codes in this process instead of delivering them: the local operator's path.

    Only `semafore verify` builds services with it, in its own process; the running server
    keeps its configured provider, so nothing reachable over the network changes.
    """

    name = "verification"

    def __init__(self) -> None:
        self._messages: dict[str, str] = {}

    async def send(self, phone: str, message: str) -> None:
        self._messages[phone] = message

    def take_code(self, phone: str) -> str:
        message = self._messages.pop(phone, "")
        codes = _CODE.findall(message)
        if len(codes) != 1:
            raise Unavailable("could not read the one-time code from the OTP message template")
        return str(codes[0])


@dataclass(frozen=True)
class Throwaway:
    org_id: str
    user_id: str
    phone: str = field(repr=False)


class VerificationAccounts:
    """The verification organisation and its members, run after run.

    An organisation must keep an admin, so between runs it holds exactly one: the last run's
    admin account (a +999 number, no device). Each run replaces it with a new admin, adds one
    throwaway member, enrols a device for each, and at the end removes the member and revokes
    the admin's device.
    """

    def __init__(
        self,
        identity: IdentityServices,
        database: Database,
        clock: Clock,
        otp: CapturingOtpProvider,
    ) -> None:
        """`identity` must have been built with `otp` as its OTP provider."""
        self._identity = identity
        self._db = database
        self._clock = clock
        self.otp = otp

    async def prepare(self) -> tuple[Throwaway, Throwaway]:
        """Fresh numbers every run (so the appliance's OTP limits per number never bite): a new
        admin replaces the previous run's, and a new member joins."""
        ident = self._identity
        org = next((o for o in await ident.orgs.list_orgs() if o.name == VERIFY_ORG_NAME), None)
        if org is None:
            org, admin = await ident.orgs.create_org(
                VERIFY_ORG_NAME, throwaway_phone(), actor=VERIFY_ACTOR, member_limit=3
            )
        else:
            previous = await ident.members.list_members(org.org_id)
            admin = await ident.members.add_member(
                org.org_id, throwaway_phone(), role="admin", actor=VERIFY_ACTOR
            )
            for m in previous:  # the previous run's admin, or leftovers of an interrupted run
                await ident.members.remove_member(org.org_id, m.user_id, actor=VERIFY_ACTOR)
        member = await ident.members.add_member(
            org.org_id, throwaway_phone(), role="member", actor=VERIFY_ACTOR
        )
        return (
            Throwaway(org.org_id, admin.user_id, admin.phone),
            Throwaway(org.org_id, member.user_id, member.phone),
        )

    async def issue_code(self, account: Throwaway) -> str:
        """A real enrolment code for the account, kept in this process."""
        await self._identity.enrolment.request_code(account.phone, client_address=None)
        await self._identity.otp.wait_for_deliveries()
        return self.otp.take_code(account.phone)

    async def approve(self, account: Throwaway, device_id: int) -> None:
        await self._identity.devices.approve(
            account.org_id, account.user_id, device_id, actor=VERIFY_ACTOR
        )

    async def revoke_devices(self, org_id: str, user_id: str) -> None:
        for device in await self._identity.devices.list_devices(org_id, user_id=user_id):
            await self._identity.devices.revoke(
                org_id, user_id, device.device_id, actor=VERIFY_ACTOR
            )

    async def clean_up(self, admin: Throwaway, member: Throwaway) -> None:
        await self._identity.members.remove_member(
            member.org_id, member.user_id, actor=VERIFY_ACTOR
        )
        await self.revoke_devices(admin.org_id, admin.user_id)

    async def record_run(self, org_id: str, *, passed: bool, findings: int) -> None:
        """The audit log keeps a record that a verification ran, and its outcome."""
        now = self._clock.now()

        async def unit(conn: Any) -> None:
            await events.record(
                conn,
                at=now,
                org_id=org_id,
                actor=VERIFY_ACTOR,
                event="verification.ran",
                target=events.org_ref(org_id),
                data={"passed": passed, "findings": findings},
            )

        await self._db.write("verification.record", unit)
