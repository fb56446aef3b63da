"""A real ``semafore serve`` on loopback for the fuzzer, with real credentials of every kind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from robustness.offline import AdminCreds, offline_admin
from support.appliance import Appliance, ServeProcess
from support.relay_client import RELAY_TEST_CONFIG


@dataclass
class FuzzTarget:
    url: str
    session: requests.Session
    creds: AdminCreds
    served: ServeProcess


@pytest.fixture(scope="module")
def fuzz_target(
    appliance_template: Appliance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    appliance = appliance_template.copy_to(tmp_path_factory.mktemp("fuzz") / "appliance")
    config = {**RELAY_TEST_CONFIG, "orgs": {**RELAY_TEST_CONFIG["orgs"],
                                            "self_service_signup": True}}
    appliance.configure(**config)
    creds = asyncio.run(offline_admin(appliance))
    served = ServeProcess.start(appliance)
    session = requests.Session()
    session.verify = str(appliance.ca_path)  # only the appliance CA is trusted
    try:
        yield FuzzTarget(served.url, session, creds, served)
    finally:
        session.close()
        served.terminate()
