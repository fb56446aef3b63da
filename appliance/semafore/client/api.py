"""The appliance's HTTP API as the device uses it (docs/openapi.yaml is the contract).

`ApiClient` implements semafore.client.relay.Relay for an enrolled device and keeps its tokens
fresh: an expired access token is refreshed once with the single-use refresh token, and the new
pair is committed to the keystore before it is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from semafore.client import errors
from semafore.client.http import Http
from semafore.client.keystore import Keystore
from semafore.client.relay import Delivery, ListedDevice
from semafore.protocol import DeviceAddress, OneTimePreKey, SignedPreKey
from semafore.protocol.constants import KEY_LEN, SIGNATURE_LEN
from semafore.protocol.encoding import b64u_decode, b64u_encode

ACCESS = "access_token"
REFRESH = "refresh_token"
FETCH_PAGE = 500


class ApiClient:
    def __init__(self, http: Http, keystore: Keystore | None = None) -> None:
        self.http = http
        self.ks = keystore
        self._refresh_lock = asyncio.Lock()
        if keystore is not None:
            self.attach(keystore)

    def attach(self, keystore: Keystore) -> None:
        """Use (and keep fresh) the tokens in `keystore`."""
        self.ks = keystore
        self.http.access_token = keystore.credential(ACCESS)
        self.http.refresh = self._refresh

    @classmethod
    def connect(cls, server_url: str, ca_file: Path, keystore: Keystore | None = None) -> ApiClient:
        return cls(Http(server_url, ca_file), keystore)

    async def close(self) -> None:
        await self.http.close()

    # -- tokens -----------------------------------------------------------------------------

    def store_tokens(self, tokens: Mapping[str, Any]) -> None:
        assert self.ks is not None
        access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise errors.ServerError("server sent no tokens", code="bad_response")
        with self.ks.transaction():
            self.ks.put_credential(ACCESS, access)
            self.ks.put_credential(REFRESH, refresh)
        self.http.access_token = access

    async def _refresh(self) -> str:
        assert self.ks is not None
        async with self._refresh_lock:
            refresh = self.ks.credential(REFRESH)
            if refresh is None:
                raise errors.Unauthorised("this device has no session; enrol it first")
            body = await self.http.request(
                "POST", "/v1/auth/refresh", json_body={"refresh_token": refresh}, auth=False
            )
            # Single use: the new pair is committed before anything else happens.
            self.store_tokens(body)
            return str(body["access_token"])

    # -- enrolment --------------------------------------------------------------------------

    async def request_code(self, phone: str) -> None:
        await self.http.request(
            "POST", "/v1/enrolment/code", json_body={"phone": phone}, auth=False
        )

    async def verify_code(self, phone: str, code: str) -> dict[str, Any]:
        return await self.http.request(
            "POST", "/v1/enrolment/verify", json_body={"phone": phone, "code": code}, auth=False
        )

    async def register(self, ticket: str, keys: Mapping[str, Any]) -> dict[str, Any]:
        return await self.http.request(
            "POST", "/v1/enrolment/register", json_body=dict(keys), bearer=ticket, auth=False
        )

    async def enrolment_status(self, secret: str) -> dict[str, Any]:
        return await self.http.request(
            "POST", "/v1/enrolment/status", json_body={}, bearer=secret, auth=False
        )

    # -- directory --------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        return await self.http.request("GET", "/v1/me")

    async def directory(self) -> list[dict[str, Any]]:
        body = await self.http.request("GET", "/v1/directory")
        return list(body.get("members", []))

    # -- Relay ------------------------------------------------------------------------------

    async def devices(self, user_id: str) -> Sequence[ListedDevice]:
        body = await self.http.request("GET", f"/v1/users/{quote(user_id, safe='')}/devices")
        out = []
        for d in body.get("devices", []):
            out.append(
                ListedDevice(
                    int(d["device_id"]),
                    b64u_decode(d["identity_key"], KEY_LEN),
                    b64u_decode(d["identity_signing_key"], KEY_LEN),
                    b64u_decode(d["identity_binding_signature"], SIGNATURE_LEN),
                )
            )
        return out

    async def bundle(self, address: DeviceAddress) -> Mapping[str, Any]:
        user = quote(address.user_id, safe="")
        return await self.http.request(
            "GET", f"/v1/users/{user}/devices/{address.device_id}/bundle"
        )

    async def send(self, request: Mapping[str, Any]) -> None:
        await self.http.request("POST", "/v1/messages", json_body=dict(request))

    async def fetch(self) -> Sequence[Delivery]:
        body = await self.http.request("GET", f"/v1/messages?limit={FETCH_PAGE}")
        return [Delivery(str(m["id"]), m["envelope"]) for m in body.get("messages", [])]

    async def ack(self, server_ids: Sequence[str]) -> None:
        if server_ids:
            await self.http.request("POST", "/v1/messages/ack", json_body={"ids": list(server_ids)})

    async def one_time_pre_key_count(self) -> int:
        body = await self.http.request("GET", "/v1/keys/one-time-pre-keys")
        return int(body["count"])

    async def upload_pre_keys(
        self, signed_pre_key: SignedPreKey | None, one_time_pre_keys: Sequence[OneTimePreKey]
    ) -> None:
        if signed_pre_key is not None:
            k = signed_pre_key
            await self.http.request(
                "PUT",
                "/v1/keys/signed-pre-key",
                json_body={
                    "id": k.key_id,
                    "key": b64u_encode(k.key_pair.public.data),
                    "signature": b64u_encode(k.signature),
                },
            )
        for start in range(0, len(one_time_pre_keys), 100):
            batch = one_time_pre_keys[start : start + 100]
            await self.http.request(
                "POST",
                "/v1/keys/one-time-pre-keys",
                json_body={
                    "keys": [
                        {"id": k.key_id, "key": b64u_encode(k.key_pair.public.data)} for k in batch
                    ]
                },
            )
