"""`semafore-client`: the bundled device client.

Every failure is one line on stderr and a non-zero exit status (see EXIT_* and the errors'
`exit_code`); identity-change notices (PROTOCOL s8.3) are printed as warnings after each
command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from semafore.client import commands, contact_commands
from semafore.client.errors import ClientError
from semafore.client.home import HOME_ENV, default_home
from semafore.client.keysource import PASSPHRASE_ENV

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEBUG_ENV = "SEMAFORE_CLIENT_DEBUG"


# --json is also accepted after the command (`listen --once --json`).
_JSON_FLAG = argparse.ArgumentParser(add_help=False)
_JSON_FLAG.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="semafore-client",
        description="SemaFore device client: end-to-end-encrypted messaging from the terminal.",
        epilog=f"The keystore passphrase is read from ${PASSPHRASE_ENV}, else asked for.",
    )
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help=f"this device's state directory (default: ${HOME_ENV}, else {default_home()})",
    )
    p.add_argument("--server", help="appliance URL, e.g. https://chat.example.org:8443")
    p.add_argument("--ca", type=Path, help="appliance CA certificate (pinned at enrol)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    e = sub.add_parser(
        "enrol", parents=[_JSON_FLAG], help="enrol this device: phone -> code -> keys -> approval"
    )
    e.add_argument("phone", help="your phone number in E.164 form, e.g. +447700900123")
    e.add_argument("--code", help="the code you received (skips requesting a new one)")
    e.add_argument(
        "--request-code-only", action="store_true", help="only ask the server to send a code"
    )
    e.add_argument("--no-wait", action="store_true", help="do not wait for approval")
    e.add_argument("--wait-timeout", type=float, default=None, help="give up waiting after S s")
    e.add_argument("--keyring", action="store_true", help="keep the key in the OS keyring")
    e.add_argument("--device-name", metavar="NAME",
                   help='a name your admins see for this device, e.g. "Alice\'s laptop"')
    e.set_defaults(func=commands.enrol)

    sub.add_parser(
        "status", parents=[_JSON_FLAG], help="this device: who, which server, approval"
    ).set_defaults(func=commands.status)
    sub.add_parser(
        "contacts", parents=[_JSON_FLAG], help="the organisation's directory"
    ).set_defaults(func=commands.contacts)

    s = sub.add_parser(
        "send", parents=[_JSON_FLAG], help="send a text to a user (all their devices)"
    )
    s.add_argument("user", help="user id or phone number (see `contacts`)")
    s.add_argument("text")
    s.set_defaults(func=commands.send)

    li = sub.add_parser(
        "listen", parents=[_JSON_FLAG], help="receive messages (ack after they are stored)"
    )
    li.add_argument("--once", action="store_true", help="take what is queued, then exit")
    li.add_argument("--timeout", type=float, help="exit after S seconds")
    li.add_argument("--count", type=int, help="exit after N new messages")
    li.set_defaults(func=commands.listen)

    g = sub.add_parser("group", parents=[_JSON_FLAG], help="groups (pairwise fan-out)")
    gs = g.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    gc = gs.add_parser("create", parents=[_JSON_FLAG], help="create a group")
    gc.add_argument("name")
    gc.add_argument("members", nargs="+", metavar="USER")
    gc.set_defaults(func=contact_commands.group_create)
    ga = gs.add_parser("add", parents=[_JSON_FLAG], help="add members")
    ga.add_argument("group", help="group name or id")
    ga.add_argument("members", nargs="+", metavar="USER")
    ga.set_defaults(func=contact_commands.group_add)
    gr = gs.add_parser("remove", parents=[_JSON_FLAG], help="remove members")
    gr.add_argument("group", help="group name or id")
    gr.add_argument("members", nargs="+", metavar="USER")
    gr.set_defaults(func=contact_commands.group_remove)
    gse = gs.add_parser("send", parents=[_JSON_FLAG], help="send a text to the group")
    gse.add_argument("group", help="group name or id")
    gse.add_argument("text")
    gse.set_defaults(func=contact_commands.group_send)
    gs.add_parser("list", parents=[_JSON_FLAG], help="groups this device knows").set_defaults(
        func=contact_commands.group_list
    )

    sf = sub.add_parser(
        "send-file", parents=[_JSON_FLAG], help="encrypt a file, upload it, send it to a user"
    )
    sf.add_argument("path", type=Path)
    sf.add_argument("to", metavar="USER|GROUP", help="user id, phone number, or group name/id")
    sf.add_argument("--caption", help="a text sent with the file")
    sf.add_argument("--group", action="store_true", help="TO names a group")
    sf.set_defaults(func=commands.send_file)
    gf = sub.add_parser(
        "get-file", parents=[_JSON_FLAG], help="download, check and decrypt a received file"
    )
    gf.add_argument("message", metavar="MID", help="the message id (`mid` in `listen --json`)")
    gf.add_argument("out", nargs="?", type=Path, default=Path("."), help="file or directory")
    gf.set_defaults(func=commands.get_file)

    sn = sub.add_parser(
        "safety-number", parents=[_JSON_FLAG], help="the 60-digit number to compare with a contact"
    )
    sn.add_argument("user")
    sn.set_defaults(func=contact_commands.safety_number)
    v = sub.add_parser(
        "verify", parents=[_JSON_FLAG], help="mark a contact verified (after comparing the number)"
    )
    v.add_argument("user")
    v.add_argument("--number", help="the number the contact read out; refuse on mismatch")
    v.set_defaults(func=contact_commands.verify)
    t = sub.add_parser(
        "trust", parents=[_JSON_FLAG], help="accept a contact's new or changed devices, unverified"
    )
    t.add_argument("user")
    t.set_defaults(func=contact_commands.trust)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home is None:
        args.home = default_home()
    try:
        return int(asyncio.run(args.func(args)) or EXIT_OK)
    except ClientError as exc:
        print(f"semafore-client {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except sqlite3.Error as exc:
        print(f"semafore-client {args.command}: error: keystore: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"semafore-client {args.command}: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"semafore-client {args.command}: error: unexpected {type(exc).__name__} (a bug;"
            f" run with {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
