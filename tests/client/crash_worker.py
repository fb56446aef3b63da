"""Run one keystore step of the real client code in a child process and die by SIGKILL at a
chosen point. Used by test_keystore_crash.py.

    python crash_worker.py receive-before-commit HOME DELIVERY.json
    python crash_worker.py send-before-commit HOME TARGET_USER TARGET_DEVICE
    python crash_worker.py send-after-commit HOME TARGET_USER TARGET_DEVICE
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from semafore.client.device_state import DeviceState
from semafore.client.keysource import RawKey
from semafore.client.keystore import Keystore
from semafore.client.messages import Messages
from semafore.client.messaging import Messenger, new_content
from semafore.protocol import DeviceAddress

KEK = RawKey(b"k" * 32)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_after(method_name: str) -> None:
    """Let Messages.<method> do its writes, then die before the surrounding COMMIT."""
    real = getattr(Messages, method_name)

    def wrapper(self, *args, **kwargs):
        real(self, *args, **kwargs)
        die()

    setattr(Messages, method_name, wrapper)


def main() -> None:
    mode, home = sys.argv[1], Path(sys.argv[2])
    messenger = Messenger(DeviceState(Keystore.open(home, KEK)))
    if mode == "receive-before-commit":
        delivery = json.loads(Path(sys.argv[3]).read_text())
        crash_after("add_incoming")
        messenger.receive(delivery["envelope"], delivery["server_id"])
    elif mode in ("send-before-commit", "send-after-commit"):
        target = DeviceAddress(sys.argv[3], int(sys.argv[4]))
        content, raw = new_content("text", f"crash test {mode}", to=target.user_id)
        if mode == "send-before-commit":
            crash_after("put_outgoing")
        messenger.prepare(content, raw, [target])
        die()  # committed, but the process dies before anything reaches the network
    raise SystemExit("the worker should have died")


if __name__ == "__main__":
    main()
