"""Inbox and outbox in the keystore.

Inbox rows are written in the same transaction as the ratchet step that decrypted them; the
server is acked only after that COMMIT. Outbox rows are written in the same transaction as the
ratchet steps that encrypted them and are sent only after that COMMIT; a retry resends the
stored request as it is (PROTOCOL s6.4: never re-encrypt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semafore.client.keystore import Keystore
from semafore.protocol import Content, DeviceAddress, SendRequest
from semafore.protocol.encoding import load_json_object


@dataclass(frozen=True)
class InboxMessage:
    seq: int
    sender: DeviceAddress
    received_at: int
    content: Content
    extra: Mapping[str, Any]  # the whole content JSON, for members Content does not model


@dataclass(frozen=True)
class OutboxEntry:
    msg_id: str
    content_bytes: bytes
    request: SendRequest
    sent_at: int | None


class Messages:
    def __init__(self, keystore: Keystore) -> None:
        self.ks = keystore

    # -- inbox ------------------------------------------------------------------------------

    def has_server_id(self, server_id: str) -> bool:
        row = self.ks.conn.execute(
            "SELECT 1 FROM inbox WHERE server_id = ?", (server_id,)
        ).fetchone()
        return row is not None

    def add_incoming(
        self, server_id: str | None, sender: DeviceAddress, mid: str, content: bytes
    ) -> int:
        ks = self.ks
        ks.require_tx()
        cur = ks.conn.execute(
            "INSERT INTO inbox (server_id, mid, sender_user, sender_device, received_at,"
            " content_sealed) VALUES (?, ?, ?, ?, ?, x'')",
            (server_id, mid, sender.user_id, sender.device_id, ks.now()),
        )
        seq = int(cur.lastrowid or 0)
        ks.conn.execute(
            "UPDATE inbox SET content_sealed = ? WHERE seq = ?",
            (ks.sealer.seal(content, "inbox", seq), seq),
        )
        return seq

    def find(self, mid: str) -> InboxMessage | None:
        """The most recent received message with this message id."""
        row = self.ks.conn.execute(
            "SELECT seq, sender_user, sender_device, received_at, content_sealed FROM inbox"
            " WHERE mid = ? ORDER BY seq DESC LIMIT 1",
            (mid,),
        ).fetchone()
        return self._inbox(row) if row else None

    def unshown(self) -> list[InboxMessage]:
        rows = self.ks.conn.execute(
            "SELECT seq, sender_user, sender_device, received_at, content_sealed FROM inbox"
            " WHERE shown = 0 ORDER BY seq"
        ).fetchall()
        return [self._inbox(r) for r in rows]

    def history(self, limit: int = 100) -> list[InboxMessage]:
        rows = self.ks.conn.execute(
            "SELECT seq, sender_user, sender_device, received_at, content_sealed FROM inbox"
            " ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [self._inbox(r) for r in reversed(rows)]

    def mark_shown(self, seqs: list[int]) -> None:
        self.ks.require_tx()
        self.ks.conn.executemany("UPDATE inbox SET shown = 1 WHERE seq = ?", [(s,) for s in seqs])

    def _inbox(self, row: tuple) -> InboxMessage:
        seq, user, device, at, sealed = row
        raw = load_json_object(self.ks.sealer.open(sealed, "inbox", seq))
        return InboxMessage(seq, DeviceAddress(user, device), at, Content.from_dict(raw), raw)

    # -- outbox -----------------------------------------------------------------------------

    def put_outgoing(self, content: bytes, request: SendRequest) -> None:
        ks = self.ks
        ks.require_tx()
        msg_id = request.msg_id
        ks.conn.execute(
            "INSERT INTO outbox (msg_id, created_at, content_sealed, request_sealed)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (msg_id) DO UPDATE"
            " SET request_sealed = excluded.request_sealed",
            (
                msg_id,
                ks.now(),
                ks.sealer.seal(content, "outbox.content", msg_id),
                ks.sealer.seal(request.to_json(), "outbox.request", msg_id),
            ),
        )

    def outgoing(self, msg_id: str) -> OutboxEntry | None:
        row = self.ks.conn.execute(
            "SELECT msg_id, content_sealed, request_sealed, sent_at FROM outbox WHERE msg_id = ?",
            (msg_id,),
        ).fetchone()
        return self._outbox(row) if row else None

    def unsent(self) -> list[OutboxEntry]:
        rows = self.ks.conn.execute(
            "SELECT msg_id, content_sealed, request_sealed, sent_at FROM outbox"
            " WHERE sent_at IS NULL ORDER BY created_at"
        ).fetchall()
        return [self._outbox(r) for r in rows]

    def mark_sent(self, msg_id: str) -> None:
        ks = self.ks
        ks.require_tx()
        # The ciphertexts are not needed once the server holds them; keep only the content.
        ks.conn.execute(
            "UPDATE outbox SET sent_at = ?, request_sealed = ? WHERE msg_id = ?",
            (ks.now(), ks.sealer.seal(b"", "outbox.request", msg_id), msg_id),
        )

    def _outbox(self, row: tuple) -> OutboxEntry:
        msg_id, content_sealed, request_sealed, sent_at = row
        content = self.ks.sealer.open(content_sealed, "outbox.content", msg_id)
        raw = self.ks.sealer.open(request_sealed, "outbox.request", msg_id)
        request = SendRequest.from_json(raw) if raw else SendRequest(msg_id, ())
        return OutboxEntry(msg_id, content, request, sent_at)
