"""Members of an organisation: add (one, or a CSV file all-or-nothing), list, change role or
display name, remove. Admins are members with the ``admin`` role; an organisation always
keeps at least one.

Every lookup is scoped by ``org_id``: a member of another organisation is reported exactly like
one that does not exist.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.devices import DeviceService, RevokedSession
from semafore.services.errors import Conflict, InvalidInput, LimitReached, NotFound
from semafore.services.keyed_hash import new_id
from semafore.services.names import parse_display_name
from semafore.services.phone import PhoneVault, is_phone, parse_phone
from semafore.storage import Database
from semafore.storage import members as store
from semafore.storage import orgs as org_store

Role = Literal["member", "admin"]
ROLES: frozenset[str] = frozenset({"member", "admin"})
CSV_MAX_ROWS = 10_000
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    org_id: str
    phone: str
    role: str
    joined_at: int
    last_active_day: int | None
    device_count: int
    display_name: str | None = None

    @property
    def last_active(self) -> str | None:
        """The day of last activity (ISO date, UTC), the only precision kept."""
        if self.last_active_day is None:
            return None
        return datetime.fromtimestamp(self.last_active_day * DAY, UTC).date().isoformat()


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int  # 1-based line number in the file
    status: Literal["added", "invalid", "duplicate", "exists", "over_limit"]
    code: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: bool
    added: int
    rows: list[ImportRow] = field(default_factory=list)


def new_user_id() -> str:
    return new_id("u_")


def parse_role(value: object) -> str:
    if not isinstance(value, str) or value not in ROLES:  # a list or object is unhashable
        raise InvalidInput("role must be 'member' or 'admin'", code="role_invalid")
    return str(value)


class MemberService:
    def __init__(
        self, database: Database, clock: Clock, vault: PhoneVault, devices: DeviceService
    ) -> None:
        self._db = database
        self._clock = clock
        self._vault = vault
        self._devices = devices

    def _member(self, row: store.MemberRow) -> Member:
        return Member(
            row.user_id, row.org_id, self._vault.open(row.phone_sealed), row.role,
            row.joined_at, row.last_active_day, row.device_count, row.display_name,
        )

    # -- inside other units of work (organisation creation uses this too) -----------------------

    async def insert_in(
        self, conn: Any, *, org_id: str, phone: str, role: str, actor: str, now: float,
        display_name: str | None = None,
    ) -> str:
        """Add one member inside the caller's unit of work; checks uniqueness and the limit."""
        org = await org_store.get_org(conn, org_id)
        if org is None:
            raise NotFound("no such organisation", code="org_not_found")
        phone_hmac = self._vault.lookup_hash(phone)
        if await store.member_by_phone(conn, phone_hmac) is not None:
            raise Conflict("this phone number already has an account", code="member_exists")
        if org.member_count >= org.member_limit:
            raise LimitReached(
                f"the organisation has reached its limit of {org.member_limit} members",
                code="member_limit_reached",
                details={"member_limit": org.member_limit},
            )
        user_id = new_user_id()
        await store.insert_member(
            conn, user_id=user_id, org_id=org_id, phone_hmac=phone_hmac,
            phone_sealed=self._vault.seal(phone), role=role, now=int(now),
            display_name=display_name,
        )
        await events.record(
            conn, at=now, org_id=org_id, actor=actor, event="member.added",
            target=events.member_ref(user_id), data={"role": role},
        )
        return user_id

    # -- use cases ------------------------------------------------------------------------------

    async def add_member(
        self, org_id: str, phone: object, *, role: object = "member",
        display_name: object = None, actor: str,
    ) -> Member:
        number = parse_phone(phone)
        checked_role = parse_role(role)
        name = parse_display_name(display_name)
        now = self._clock.now()

        async def unit(conn: Any) -> str:
            return await self.insert_in(
                conn, org_id=org_id, phone=number, role=checked_role, actor=actor, now=now,
                display_name=name,
            )

        user_id = await self._db.write("members.add", unit)
        return await self.get_member(org_id, user_id)

    async def import_csv(self, org_id: str, text: str, *, actor: str) -> ImportReport:
        """Add every number in the file, or none: the report says what each row would do.

        Columns: phone number, then optionally role and display name. A header row whose
        first cell is ``phone`` names the columns (``phone``, ``role``, ``display_name``, in
        any order); blank lines are ignored; an empty role means member, an empty name none.
        """
        parsed = _parse_csv(text)
        now = self._clock.now()

        async def unit(conn: Any) -> ImportReport:
            org = await org_store.get_org(conn, org_id)
            if org is None:
                raise NotFound("no such organisation", code="org_not_found")
            rows: list[ImportRow] = []
            seen: set[bytes] = set()
            valid: list[tuple[int, str, str, bytes, str | None]] = []
            for line, phone, role, raw_name in parsed:
                name_code = _name_problem(raw_name)
                if not is_phone(phone):
                    rows.append(ImportRow(line, "invalid", "phone_invalid"))
                elif role not in ROLES:
                    rows.append(ImportRow(line, "invalid", "role_invalid"))
                elif name_code is not None:
                    rows.append(ImportRow(line, "invalid", name_code))
                else:
                    lookup = self._vault.lookup_hash(phone)
                    if lookup in seen:
                        rows.append(ImportRow(line, "duplicate", "duplicate_in_file"))
                    else:
                        seen.add(lookup)
                        valid.append((line, phone, role, lookup, parse_display_name(raw_name)))
                        rows.append(ImportRow(line, "added"))
            existing = await store.existing_phone_hmacs(conn, [v[3] for v in valid])
            room = org.member_limit - org.member_count
            by_line = {r.row: i for i, r in enumerate(rows)}
            accepted = 0
            for line, _phone, _role, lookup, _name in valid:
                if lookup in existing:
                    rows[by_line[line]] = ImportRow(line, "exists", "member_exists")
                elif accepted >= room:
                    rows[by_line[line]] = ImportRow(line, "over_limit", "member_limit_reached")
                else:
                    accepted += 1
            if any(r.status != "added" for r in rows) or not rows:
                return ImportReport(imported=False, added=0, rows=rows)
            for line, phone, role, _lookup, name in valid:
                user_id = await self.insert_in(
                    conn, org_id=org_id, phone=phone, role=role, actor=actor, now=now,
                    display_name=name,
                )
                rows[by_line[line]] = ImportRow(line, "added", user_id=user_id)
            return ImportReport(imported=True, added=len(valid), rows=rows)

        report = await self._db.write("members.import_csv", unit)
        if not report.imported:
            raise InvalidInput(
                "nothing was imported: fix the rows listed and upload the file again"
                if report.rows else "the file has no rows",
                code="import_rejected",
                details={"rows": [_row_dict(r) for r in report.rows if r.status != "added"]},
            )
        return report

    async def list_members(self, org_id: str) -> list[Member]:
        async with self._db.read() as conn:
            rows = await store.list_members(conn, org_id)
        return [self._member(r) for r in rows]

    async def get_member(self, org_id: str, user_id: str) -> Member:
        async with self._db.read() as conn:
            row = await store.get_member(conn, user_id)
        if row is None or row.org_id != org_id:
            raise _member_not_found()
        return self._member(row)

    async def find_by_phone(self, phone: str) -> Member | None:
        """The account of this number, in any organisation (admin sign-in uses this)."""
        number = parse_phone(phone)
        async with self._db.read() as conn:
            row = await store.member_by_phone(conn, self._vault.lookup_hash(number))
        return None if row is None else self._member(row)

    async def set_role(self, org_id: str, user_id: str, role: object, *, actor: str) -> Member:
        return await self.update(org_id, user_id, {"role": role}, actor=actor)

    async def set_display_name(
        self, org_id: str, user_id: str, display_name: object, *, actor: str
    ) -> Member:
        """Set the display name (None clears it)."""
        return await self.update(org_id, user_id, {"display_name": display_name}, actor=actor)

    async def update(
        self, org_id: str, user_id: str, changes: Mapping[str, object], *, actor: str
    ) -> Member:
        """Change ``role`` and/or ``display_name`` (None clears the name) in one unit of work.

        Audited by member id; the name itself stays out of the audit log.
        """
        if not isinstance(changes, Mapping) or not changes.keys() & {"role", "display_name"}:
            raise InvalidInput("give a role or a display_name to change", code="field_missing")
        new_role = parse_role(changes["role"]) if "role" in changes else None
        renaming = "display_name" in changes
        new_name = parse_display_name(changes["display_name"]) if renaming else None
        now = self._clock.now()

        async def unit(conn: Any) -> None:
            row = await _org_member(conn, org_id, user_id)
            if new_role is not None and row.role != new_role:
                if row.role == "admin" and await store.count_admins(conn, org_id) <= 1:
                    raise _last_admin()
                await store.set_role(conn, user_id, new_role)
                await events.record(
                    conn, at=now, org_id=org_id, actor=actor, event="member.role_changed",
                    target=events.member_ref(user_id), data={"role": new_role},
                )
            if renaming and row.display_name != new_name:
                await store.set_display_name(conn, user_id, new_name)
                await events.record(
                    conn, at=now, org_id=org_id, actor=actor,
                    event="member.display_name_changed", target=events.member_ref(user_id),
                    data={"cleared": new_name is None},
                )

        await self._db.write("members.update", unit)
        return await self.get_member(org_id, user_id)

    async def remove_member(self, org_id: str, user_id: str, *, actor: str) -> None:
        """Revoke the member: the account, its devices, keys, tokens and queues cease to exist."""
        now = self._clock.now()

        async def unit(conn: Any) -> list[tuple[int, int]]:
            row = await _org_member(conn, org_id, user_id)
            if row.role == "admin" and await store.count_admins(conn, org_id) <= 1:
                raise _last_admin()
            removed = await store.delete_member(conn, user_id, int(now))
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="member.removed",
                target=events.member_ref(user_id), data={"devices": len(removed)},
            )
            return removed

        removed = await self._db.write("members.remove", unit)
        self._devices.forget(user_id)
        await self._devices.notify_revoked(
            [(seq, RevokedSession(user_id, device_id)) for device_id, seq in removed]
        )


CSV_COLUMNS = ("phone", "role", "display_name")


def _parse_csv(text: str) -> list[tuple[int, str, str, str | None]]:
    """(line, phone, role, raw display name or None) per row; a bad row gets an invalid
    phone (its report then says ``phone_invalid``)."""
    if not isinstance(text, str):
        raise InvalidInput("the CSV file must be UTF-8 text", code="csv_invalid")
    try:
        records = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error:
        raise InvalidInput("the file is not valid CSV", code="csv_invalid") from None
    columns: tuple[str, ...] = CSV_COLUMNS
    parsed: list[tuple[int, str, str, str | None]] = []
    for line, cells in enumerate(records, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if line == 1 and cells[0].lower() == "phone":
            named = tuple(c.lower() for c in cells)
            if len(set(named)) != len(named) or not set(named) <= set(CSV_COLUMNS):
                raise InvalidInput(
                    "the header row may name only the columns phone, role and display_name",
                    code="csv_invalid",
                )
            # A header in the usual order (e.g. just "phone") leaves later columns positional.
            columns = CSV_COLUMNS if CSV_COLUMNS[:len(named)] == named else named
            continue
        if len(cells) > len(columns):
            parsed.append((line, "", "invalid", None))
            continue
        row = dict(zip(columns, cells, strict=False))
        parsed.append((line, row.get("phone", ""), row.get("role") or "member",
                       row.get("display_name") or None))
    if len(parsed) > CSV_MAX_ROWS:
        raise InvalidInput(
            f"at most {CSV_MAX_ROWS} rows per file", code="csv_too_many_rows"
        )
    return parsed


def _name_problem(raw: str | None) -> str | None:
    try:
        parse_display_name(raw)
    except InvalidInput as error:
        return error.code
    return None


def _row_dict(row: ImportRow) -> dict[str, object]:
    return {"row": row.row, "status": row.status, "code": row.code}


async def _org_member(conn: Any, org_id: str, user_id: str) -> store.MemberRow:
    row = await store.get_member(conn, user_id)
    if row is None or row.org_id != org_id:
        raise _member_not_found()
    return row


def _member_not_found() -> NotFound:
    return NotFound("no such member", code="member_not_found")


def _last_admin() -> Conflict:
    return Conflict(
        "an organisation must keep at least one admin; make another member admin first",
        code="last_admin",
    )
