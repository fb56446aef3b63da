"""The key directory: devices' public identity keys, signed and one-time pre keys.

Reads the identity tables (migration 0002) and keeps retired signed pre keys (0005). Handing
out a one-time pre key is one unit of work (``keydir.take_bundle``): the device, its signed
pre key and ``DELETE ... RETURNING`` of one OPK in the writer's transaction, so no OPK is ever
handed out twice however many fetches run at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from semafore.storage.database import Database
from semafore.storage.errors import StorageError

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    user_id: str
    device_id: int
    identity_key: bytes
    identity_signing_key: bytes
    identity_binding_signature: bytes


@dataclass(frozen=True, slots=True)
class SignedPreKey:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class BundleRecord:
    device: DeviceKeys
    signed_pre_key: SignedPreKey
    one_time_pre_key: tuple[int, bytes] | None


class TooManyPreKeys(StorageError):
    """The upload would leave more one-time pre keys stored than allowed; nothing was stored."""

    code = "too_many_pre_keys"


def _device(row: Sequence[object]) -> DeviceKeys:
    return DeviceKeys(str(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))  # type: ignore[call-overload, arg-type]


class KeyDirectory:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- reads --------------------------------------------------------------------------------

    async def member_org(self, user_id: str) -> str | None:
        async with self._db.read() as conn, conn.execute(
            "SELECT org_id FROM members WHERE user_id = ?", (user_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def approved_devices(self, user_id: str) -> tuple[str | None, list[DeviceKeys]]:
        """(org_id of the member or None, the member's approved devices by device id)."""
        async with self._db.read() as conn:
            async with conn.execute(
                "SELECT org_id FROM members WHERE user_id = ?", (user_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None, []
            async with conn.execute(
                "SELECT d.user_id, d.device_id, d.identity_key, d.identity_signing_key, "
                "d.identity_binding_signature FROM devices AS d "
                "WHERE d.user_id = ? AND d.status = 'approved' ORDER BY d.device_id",
                (user_id,),
            ) as cursor:
                devices = [_device(r) async for r in cursor]
        return str(row[0]), devices

    async def device_keys(self, device: Address) -> DeviceKeys | None:
        """An approved device's identity keys, or None."""
        async with self._db.read() as conn, conn.execute(
            "SELECT d.user_id, d.device_id, d.identity_key, d.identity_signing_key, "
                "d.identity_binding_signature FROM devices AS d "
            "WHERE d.user_id = ? AND d.device_id = ? AND d.status = 'approved'",
            device,
        ) as cursor:
            row = await cursor.fetchone()
        return _device(row) if row else None

    async def one_time_pre_key_count(self, device: Address) -> int:
        async with self._db.read() as conn, conn.execute(
            "SELECT count(*) FROM one_time_pre_keys WHERE user_id = ? AND device_id = ?", device
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def signed_pre_key(self, device: Address) -> SignedPreKey | None:
        async with self._db.read() as conn, conn.execute(
            "SELECT key_id, public_key, signature FROM signed_pre_keys "
            "WHERE user_id = ? AND device_id = ?",
            device,
        ) as cursor:
            row = await cursor.fetchone()
        return SignedPreKey(int(row[0]), bytes(row[1]), bytes(row[2])) if row else None

    # -- writes -------------------------------------------------------------------------------

    async def take_bundle(self, device: Address) -> BundleRecord | None:
        """An approved device's bundle with one OPK removed from its pool (None if no device)."""

        async def unit(conn: aiosqlite.Connection) -> BundleRecord | None:
            async with conn.execute(
                "SELECT d.user_id, d.device_id, d.identity_key, d.identity_signing_key, "
                "d.identity_binding_signature, s.key_id, s.public_key, s.signature "
                "FROM devices AS d JOIN signed_pre_keys AS s "
                "ON s.user_id = d.user_id AND s.device_id = d.device_id "
                "WHERE d.user_id = ? AND d.device_id = ? AND d.status = 'approved'",
                device,
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            async with conn.execute(
                "DELETE FROM one_time_pre_keys WHERE rowid = (SELECT rowid FROM one_time_pre_keys "
                "WHERE user_id = ? AND device_id = ? ORDER BY key_id LIMIT 1) "
                "RETURNING key_id, public_key",
                device,
            ) as cursor:
                opk = await cursor.fetchone()
            return BundleRecord(
                _device(row),
                SignedPreKey(int(row[5]), bytes(row[6]), bytes(row[7])),
                (int(opk[0]), bytes(opk[1])) if opk else None,
            )

        return await self._db.write("keydir.take_bundle", unit)

    async def add_one_time_pre_keys(
        self, device: Address, keys: Sequence[tuple[int, bytes]], *, replace: bool, max_stored: int
    ) -> int:
        """Store OPKs (an existing id is replaced); ``replace`` drops the old pool first.

        Returns how many the device has afterwards; raises :class:`TooManyPreKeys` (nothing
        stored) when that would exceed ``max_stored``.
        """

        async def unit(conn: aiosqlite.Connection) -> int:
            if replace:
                await conn.execute(
                    "DELETE FROM one_time_pre_keys WHERE user_id = ? AND device_id = ?", device
                )
            await conn.executemany(
                "INSERT INTO one_time_pre_keys (user_id, device_id, key_id, public_key) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id, key_id) "
                "DO UPDATE SET public_key = excluded.public_key",
                [(device[0], device[1], key_id, public) for key_id, public in keys],
            )
            async with conn.execute(
                "SELECT count(*) FROM one_time_pre_keys WHERE user_id = ? AND device_id = ?",
                device,
            ) as cursor:
                row = await cursor.fetchone()
            count = int(row[0]) if row else 0
            if count > max_stored:
                raise TooManyPreKeys(f"at most {max_stored} one-time pre keys may be stored")
            return count

        return await self._db.write("keydir.add_one_time_pre_keys", unit)

    async def rotate_signed_pre_key(
        self, device: Address, new: SignedPreKey, *, now_ms: int
    ) -> bool:
        """Make ``new`` current; the previous one is kept as retired. False if no such device.

        Re-sending the current key (same id and bytes) changes nothing.
        """

        async def unit(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(
                "SELECT s.key_id, s.public_key, s.signature FROM devices AS d "
                "LEFT JOIN signed_pre_keys AS s "
                "ON s.user_id = d.user_id AND s.device_id = d.device_id "
                "WHERE d.user_id = ? AND d.device_id = ? AND d.status = 'approved'",
                device,
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return False
            if row[0] is not None:
                if (int(row[0]), bytes(row[1])) == (new.key_id, new.public_key):
                    return True
                await conn.execute(
                    "INSERT INTO retired_signed_pre_keys "
                    "(user_id, device_id, key_id, public_key, signature, retired_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (device[0], device[1], row[0], row[1], row[2], now_ms),
                )
            await conn.execute(
                "INSERT INTO signed_pre_keys "
                "(user_id, device_id, key_id, public_key, signature, uploaded_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET "
                "key_id = excluded.key_id, public_key = excluded.public_key, "
                "signature = excluded.signature, uploaded_at = excluded.uploaded_at",
                (device[0], device[1], new.key_id, new.public_key, new.signature, now_ms // 1000),
            )
            return True

        return await self._db.write("keydir.rotate_signed_pre_key", unit)

    async def expire_retired_signed_pre_keys(self, *, retired_before_ms: int) -> int:
        async def unit(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "DELETE FROM retired_signed_pre_keys WHERE retired_at < ?", (retired_before_ms,)
            )
            return cursor.rowcount

        return await self._db.write("keydir.expire_retired_signed_pre_keys", unit)

    async def retired_signed_pre_key_ids(self, device: Address) -> list[int]:
        async with self._db.read() as conn, conn.execute(
            "SELECT key_id FROM retired_signed_pre_keys WHERE user_id = ? AND device_id = ? "
            "ORDER BY retired_at",
            device,
        ) as cursor:
            return [int(r[0]) async for r in cursor]
