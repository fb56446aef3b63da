"""Groups (PROTOCOL s10, v1 pairwise fan-out): local membership records, kept in step by
`group_update` content messages.

A `group_update` carries the whole membership: `{"t": "group_update", "g": {"id", "rev"},
"name": ..., "members": [user_id, ...]}`. A receiver applies it when it is newer than what it
has and comes from a current member (or creates the group when it names this user). Who may
change a group is local policy (s10): here, any member.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from semafore.client.errors import UnknownGroup
from semafore.client.keystore import Keystore
from semafore.protocol import Content, DecodeError, DeviceAddress, GroupRef
from semafore.protocol.content import GROUP_ID_LEN, GROUP_UPDATE
from semafore.protocol.encoding import b64u_decode, b64u_encode

UNKNOWN_REV = -1  # a group heard of through a message before its first update


@dataclass(frozen=True)
class Group:
    id: bytes
    name: str
    rev: int
    members: tuple[str, ...] = field(default=())

    @property
    def id_text(self) -> str:
        return b64u_encode(self.id)

    def ref(self) -> GroupRef:
        return GroupRef(self.id, max(self.rev, 0))

    def to_json(self) -> bytes:
        return json.dumps(
            {"name": self.name, "rev": self.rev, "members": list(self.members)}
        ).encode()

    @classmethod
    def from_json(cls, group_id: bytes, data: bytes) -> Group:
        d = json.loads(data)
        return cls(group_id, str(d["name"]), int(d["rev"]), tuple(d["members"]))


def update_extra(group: Group) -> dict[str, Any]:
    """The members a group_update content carries besides Content's own."""
    return {"name": group.name, "members": list(group.members)}


class Groups:
    def __init__(self, keystore: Keystore) -> None:
        self.ks = keystore

    def get(self, group_id: bytes) -> Group | None:
        key = b64u_encode(group_id)
        row = self.ks.conn.execute(
            "SELECT sealed FROM groups WHERE group_id = ?", (key,)
        ).fetchone()
        return (
            Group.from_json(group_id, self.ks.sealer.open(row[0], "groups", key)) if row else None
        )

    def all(self) -> list[Group]:
        out = []
        for key, sealed in self.ks.conn.execute("SELECT group_id, sealed FROM groups"):
            out.append(
                Group.from_json(b64u_decode(key), self.ks.sealer.open(sealed, "groups", key))
            )
        return sorted(out, key=lambda g: (g.name, g.id))

    def find(self, name_or_id: str) -> Group:
        """By id (base64url) or by unique local name."""
        try:
            group_id = b64u_decode(name_or_id, GROUP_ID_LEN)
        except DecodeError:
            group_id = None
        if group_id is not None and (group := self.get(group_id)) is not None:
            return group
        named = [g for g in self.all() if g.name == name_or_id]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(g.id_text for g in named)
            raise UnknownGroup(f"several groups are called {name_or_id!r}; use an id: {ids}")
        raise UnknownGroup(f"no group {name_or_id!r}; see `semafore-client group list`")

    def put(self, group: Group) -> None:
        ks = self.ks
        ks.require_tx()
        key = group.id_text
        ks.conn.execute(
            "INSERT INTO groups VALUES (?, ?) ON CONFLICT (group_id) DO UPDATE"
            " SET sealed = excluded.sealed",
            (key, ks.sealer.seal(group.to_json(), "groups", key)),
        )

    @staticmethod
    def new(name: str, members: list[str]) -> Group:
        return Group(secrets.token_bytes(GROUP_ID_LEN), name, 0, tuple(dict.fromkeys(members)))

    def apply_incoming(
        self, sender: DeviceAddress, content: Content, raw: Mapping[str, Any], *, own: DeviceAddress
    ) -> None:
        """Update local group state from a received group message (inside the receive commit)."""
        if content.g is None:
            return
        group = self.get(content.g.id)
        if content.t == GROUP_UPDATE:
            members = raw.get("members")
            name = raw.get("name")
            if not isinstance(members, list) or not all(isinstance(u, str) for u in members):
                return
            if not isinstance(name, str):
                name = group.name if group else "group"
            newer = group is None or content.g.rev > group.rev
            allowed = (
                own.user_id in members
                if group is None or group.rev == UNKNOWN_REV
                else sender.user_id in group.members
            )
            if newer and allowed:
                self.put(Group(content.g.id, name, content.g.rev, tuple(dict.fromkeys(members))))
        elif group is None:
            # A message overtook the group's first update: remember what we can.
            placeholder = Group(content.g.id, "group", UNKNOWN_REV, (sender.user_id, own.user_id))
            self.put(placeholder)
