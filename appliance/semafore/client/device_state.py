"""This device's protocol state (semafore.protocol.SessionManager) persisted in the keystore.

`with state.step() as manager:` reloads the state inside a write transaction, runs protocol
calls, and then writes every record they changed (device keys, session records, contact
identities) in the SAME keystore transaction as whatever else the caller writes inside the
block (the decrypted message, the outgoing ciphertexts). If the block or the COMMIT fails, the
in-memory manager is reloaded from disk, so memory is never ahead of the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from semafore.client.keystore import Keystore
from semafore.protocol import (
    ContactIdentity,
    DeviceAddress,
    DeviceKeys,
    IdentityStatus,
    SessionManager,
    SessionRecord,
    StateChanges,
)

_NOTICE = {
    IdentityStatus.NEW_DEVICE: "{user} has a new device ({device}); the safety number changed",
    IdentityStatus.CHANGED: (
        "the identity of {user}'s device {device} changed; the safety number changed"
    ),
    IdentityStatus.BLOCKED: (
        "{user}'s device {device} is new or changed since you verified {user}; sending to"
        " {user} is blocked: compare the safety number (`semafore-client safety-number {user}`),"
        " then run `semafore-client verify {user}` (or `semafore-client trust {user}`)"
    ),
}


class DeviceState:
    def __init__(self, keystore: Keystore) -> None:
        self.ks = keystore
        self.manager = self._load()

    def _now_ms(self) -> int:
        return int(self.ks.clock() * 1000)

    def _load(self) -> SessionManager:
        ks = self.ks
        sessions = [
            SessionRecord.from_bytes(ks.sealer.open(sealed, "sessions", user, device))
            for user, device, sealed in ks.conn.execute(
                "SELECT user_id, device_id, record_sealed FROM sessions"
            )
        ]
        contacts = [
            ContactIdentity.from_bytes(ks.sealer.open(sealed, "contacts", user))
            for user, sealed in ks.conn.execute(
                "SELECT user_id, identity_sealed FROM contacts WHERE length(identity_sealed) > 0"
            )
        ]
        return SessionManager(
            ks.device_keys(), sessions=sessions, contacts=contacts, now_ms=self._now_ms
        )

    @property
    def address(self) -> DeviceAddress:
        return self.manager.address

    @contextmanager
    def step(self) -> Iterator[SessionManager]:
        # Another process on the same device directory (a `send` while `listen` runs) may have
        # committed since this one last looked: the state is read again inside the write
        # transaction, so a step always starts from what is on disk and never writes back an
        # older ratchet state (that would reuse message keys, PROTOCOL s13).
        nested = self.ks.in_transaction
        try:
            with self.ks.transaction():
                if not nested:
                    self.manager = self._load()
                yield self.manager
                self._persist(self.manager.take_changes())
        except BaseException:
            self.manager = self._load()
            raise

    def _persist(self, changes: StateChanges) -> None:
        ks, m = self.ks, self.manager
        if changes.device_keys:
            ks.put_device_keys(m.device)
        for address in changes.sessions:
            record = m.session_record(address)
            if record is None:
                ks.conn.execute(
                    "DELETE FROM sessions WHERE user_id = ? AND device_id = ?",
                    (address.user_id, address.device_id),
                )
                continue
            sealed = ks.sealer.seal(
                record.to_bytes(), "sessions", address.user_id, address.device_id
            )
            ks.conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT (user_id, device_id)"
                " DO UPDATE SET record_sealed = excluded.record_sealed",
                (address.user_id, address.device_id, sealed),
            )
        for user_id in changes.contacts:
            contact = m.identities.contact(user_id)
            if contact is None:
                ks.conn.execute("DELETE FROM contacts WHERE user_id = ?", (user_id,))
                continue
            sealed = ks.sealer.seal(contact.to_bytes(), "contacts", user_id)
            ks.conn.execute(
                "INSERT INTO contacts (user_id, identity_sealed) VALUES (?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET identity_sealed = excluded.identity_sealed",
                (user_id, sealed),
            )

    # -- identity-change notices (s8.3: the client MUST show them) --------------------------

    def notify(self, status: IdentityStatus, address: DeviceAddress) -> None:
        """Queue a notice for `status` if the user must be told (call inside `step()`)."""
        template = _NOTICE.get(status)
        if template is not None:
            self.add_notice(
                address.user_id, template.format(user=address.user_id, device=address.device_id)
            )

    def add_notice(self, user_id: str, text: str) -> None:
        ks = self.ks
        ks.require_tx()
        notices = self._notices(user_id)
        if text not in notices:
            notices.append(text)
        ks.conn.execute(
            "INSERT INTO contacts (user_id, identity_sealed) VALUES (?, x'') "
            "ON CONFLICT (user_id) DO NOTHING",
            (user_id,),
        )
        ks.conn.execute(
            "UPDATE contacts SET notices_sealed = ? WHERE user_id = ?",
            (ks.sealer.seal(json.dumps(notices).encode(), "notices", user_id), user_id),
        )

    def _notices(self, user_id: str) -> list[str]:
        row = self.ks.conn.execute(
            "SELECT notices_sealed FROM contacts WHERE user_id = ?", (user_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return []
        return list(json.loads(self.ks.sealer.open(row[0], "notices", user_id)))

    def take_notices(self) -> list[str]:
        """Every pending notice, once."""
        out: list[str] = []
        with self.ks.transaction():
            for (user_id,) in self.ks.conn.execute(
                "SELECT user_id FROM contacts WHERE notices_sealed IS NOT NULL ORDER BY user_id"
            ).fetchall():
                out += self._notices(user_id)
            self.ks.conn.execute("UPDATE contacts SET notices_sealed = NULL")
        return out


def new_device_keys(address: DeviceAddress, now: float | None = None) -> DeviceKeys:
    return DeviceKeys.generate(address, int((time.time() if now is None else now) * 1000))
