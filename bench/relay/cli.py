"""``python -m bench.relay``: set up an appliance, enrol devices, run one mode, print JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import shlex
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from bench.relay import load
from bench.relay.appliance import (
    Server,
    cpu_seconds,
    init_appliance,
    memory_kib,
    open_sockets,
    py_spy_record,
)
from bench.relay.enrol import enrol_devices, operator_members
from bench.relay.report import machine, percentiles_ms

MODES = ("pairs", "group", "idle", "crypto")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    p.add_argument("--mode", choices=MODES, default="pairs")
    p.add_argument("--devices", type=int, default=100, help="devices to enrol and connect")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds at the start left out of the latency figures")
    p.add_argument("--rate", type=float, default=0.0,
                   help="offered sends/s in total (0: flat out, each device keeps --window sends "
                        "in flight)")
    p.add_argument("--window", type=int, default=4, help="sends in flight per device")
    p.add_argument("--group-size", type=int, default=500, help="devices per group (group mode)")
    p.add_argument("--procs", type=int, default=1, help="load-generator processes")
    p.add_argument("--drain", type=float, default=30.0,
                   help="seconds to wait for outstanding deliveries after the load")
    p.add_argument("--profile", type=Path,
                   help="record the server with py-spy during the load (collapsed stacks)")
    p.add_argument("--serve-command", type=shlex.split,
                   help="run the server with this command instead of the installed semafore "
                        "(it gets 'serve --config PATH' appended)")
    p.add_argument("--data-dir", type=Path, help="keep the appliance here (default: a temp dir)")
    args = p.parse_args(argv)
    if args.mode == "group":
        args.devices = max(args.devices, args.group_size)
        if args.rate <= 0:
            args.rate = 2.0
    if args.mode in ("pairs", "crypto") and args.devices % 2:
        args.devices += 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="semafore-bench-") as scratch:
        root = args.data_dir or Path(scratch)
        report = run(args, root / "appliance")
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0 if not report["errors"] and report["messages"]["undelivered"] == 0 else 1


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    config = init_appliance(data_dir, {})
    ca_path = data_dir / "tls" / "ca.crt"
    org_id, phones = asyncio.run(operator_members(config, args.devices))
    server = Server.start(config, ca_path, command=args.serve_command)
    try:
        context = ssl.create_default_context(cafile=str(ca_path))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        started = time.monotonic()
        creds = asyncio.run(enrol_devices(
            server.url, context, config, phones, org_id, keep_keys=args.mode == "crypto"
        ))
        enrol_seconds = time.monotonic() - started
        rss_enrolled = memory_kib(server.pid)["VmRSS"]
        if args.mode == "crypto":
            from bench.relay import crypto

            plans = crypto.plans(args, server.url, str(ca_path), creds)
            target: Any = crypto.main
        else:
            plans = _plans(args, server.url, str(ca_path), creds)
            target = load.main
        report = _drive(args, server, plans, target)
        report["queue_depth_after"] = _queue_depth(config.parent / "semafore.db")
    finally:
        server.stop()
    report["server"]["rss_enrolled_kib"] = rss_enrolled  # before any socket opened
    report["enrolment"] = {"devices": len(creds), "seconds": round(enrol_seconds, 1)}
    report["machine"] = machine()
    return report


def _plans(args: argparse.Namespace, url: str, ca: str, creds: list[Any]) -> list[load.Plan]:
    devices = [(c.user_id, c.device_id, c.token) for c in creds]
    routes: list[list[tuple[str, int]]] = [[] for _ in devices]
    owner = [0] * len(devices)  # which process holds each device
    if args.mode == "pairs":
        for i in range(0, len(devices) - 1, 2):
            routes[i], routes[i + 1] = [creds[i + 1].address], [creds[i].address]
            owner[i] = owner[i + 1] = (i // 2) % args.procs
    elif args.mode == "group":
        size = args.group_size
        for start in range(0, len(devices) - size + 1, size):
            routes[start] = [c.address for c in creds[start + 1 : start + size]]
        owner = [i % args.procs for i in range(len(devices))]
    else:
        owner = [i % args.procs for i in range(len(devices))]
    senders = sum(1 for r in routes if r) or 1
    plans = []
    for index in range(args.procs):
        mine = [i for i in range(len(devices)) if owner[i] == index]
        share = sum(1 for i in mine if routes[i]) / senders
        plans.append(load.Plan(
            index=index, mode=args.mode, url=url, ca_path=ca,
            devices=[devices[i] for i in mine], routes=[routes[i] for i in mine],
            rate=args.rate * share, duration=args.duration, warmup=args.warmup,
            window=args.window, drain_seconds=args.drain,
        ))
    return plans


def _drive(
    args: argparse.Namespace, server: Server, plans: list[Any], target: Any
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    procs, inboxes, outboxes = [], [], []
    for plan in plans:
        parent_in, child_out = ctx.Pipe(duplex=False)
        child_in, parent_out = ctx.Pipe(duplex=False)
        process = ctx.Process(target=target, args=(plan, child_in, child_out), daemon=True)
        process.start()
        procs.append(process)
        inboxes.append(parent_in)
        outboxes.append(parent_out)
    try:
        connected = sum(_expect(inbox, "ready", 600)[1] for inbox in inboxes)
        time.sleep(1.0)  # let the server settle after the connection storm
        rss_connected = memory_kib(server.pid)
        sockets = open_sockets(server.pid)
        start = time.time() + 0.5
        for outbox in outboxes:
            outbox.send(start)
        time.sleep(max(0.0, start - time.time()))
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        profiler = _profiler(args, server.pid)
        rss_peak = 0
        while time.monotonic() - t0 < args.duration:
            rss_peak = max(rss_peak, memory_kib(server.pid)["VmRSS"])
            time.sleep(0.25)
        cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
        if profiler is not None:
            profiler.wait(60)
        answered = [_expect(inbox, "answered", args.drain + 60) for inbox in inboxes]
        expected = sum(a[1] for a in answered)
        delivered = {i: a[2] for i, a in enumerate(answered)}
        deadline = time.monotonic() + args.drain
        while sum(delivered.values()) < expected and time.monotonic() < deadline:
            for inbox in wait(inboxes, timeout=0.2):
                message = inbox.recv()
                if message[0] == "progress":
                    delivered[inboxes.index(inbox)] = message[1]
        drain_seconds = time.monotonic() - t1
        cpu2 = cpu_seconds(server.pid)
        for outbox in outboxes:
            outbox.send("stop")
        results = [_expect(inbox, "result", 120)[1] for inbox in inboxes]
        memory = memory_kib(server.pid)
    finally:
        for process in procs:
            process.join(30)
            if process.is_alive():
                process.kill()
    return _summary(args, results, {
        "pid": server.pid,
        "sockets": sockets,
        "rss_connected_kib": rss_connected["VmRSS"],
        "rss_peak_kib": max(rss_peak, rss_connected["VmRSS"]),
        "hwm_kib": memory["VmHWM"],
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "cpu_seconds_with_drain": round(cpu2 - cpu0, 2),
    }, connected, drain_seconds)


def _profiler(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes] | None:
    if args.profile is None:
        return None
    return py_spy_record(pid, args.profile, "--duration", str(int(args.duration)))


def _expect(inbox: Any, kind: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inbox.poll(0.2):
            message = inbox.recv()
            if message[0] == kind:
                return message
    raise TimeoutError(f"no {kind!r} from a load-generator process")


def _summary(args: argparse.Namespace, results: list[Any], server: dict[str, Any],
             connected: int, drain_seconds: float) -> dict[str, Any]:
    total = lambda name: sum(getattr(r, name) for r in results)  # noqa: E731
    errors: Counter[str] = Counter()
    latencies: list[int] = []
    for r in results:
        errors.update(r.errors)
        latencies += r.latencies_us
    delivered = total("delivered")
    report: dict[str, Any] = {
        "mode": args.mode,
        "devices": args.devices,
        "connected": connected,
        "open_at_end": total("open_at_end"),
        "tls": next((r.tls_version for r in results if r.tls_version), ""),
        "duration_s": args.duration,
        "offered_per_s": args.rate or "flat out",
        "window": args.window,
        "load_procs": args.procs,
        "messages": {
            "sent": total("sent"),
            "accepted": total("accepted"),
            "accepted_per_s": round(total("accepted_in_window") / args.duration, 1),
            "envelopes_accepted": total("envelopes_accepted"),
            "delivered": delivered,
            "delivered_per_s": round(total("delivered_in_window") / args.duration, 1),
            "undelivered": total("envelopes_accepted") - delivered,
            "duplicates": total("duplicates"),
            "behind_schedule": total("behind"),
            "drain_s": round(drain_seconds, 2),
        },
        "latency_ms": percentiles_ms(latencies),
        "server": server,
        "client": {"cpu_seconds": round(total("cpu_seconds"), 2)},
        "errors": dict(errors),
    }
    if delivered:  # robust to a shared machine: CPU per envelope, not wall-clock rate
        report["server"]["cpu_us_per_envelope"] = round(
            1e6 * server["cpu_seconds_with_drain"] / delivered, 1
        )
    if args.mode == "group":
        merged: dict[int, list[int]] = {}
        for r in results:
            for seq, (sent_ns, count, last_ns) in r.messages.items():
                entry = merged.setdefault(seq, [sent_ns, 0, 0])
                entry[1] += count
                entry[2] = max(entry[2], last_ns)
        complete = [(last - sent) // 1000 for sent, count, last in merged.values()
                    if count == args.group_size - 1]
        report["group"] = {
            "size": args.group_size,
            "messages": len(merged),
            "complete": len(complete),
            "all_delivered_ms": percentiles_ms(complete),
        }
    if args.mode == "crypto":
        report["crypto"] = {
            "encrypt_us_per_msg": round(total("encrypt_us") / max(1, total("accepted")), 1),
            "decrypt_us_per_msg": round(total("decrypt_us") / max(1, delivered), 1),
        }
    return report


def _queue_depth(database: Path, timeout: float = 5.0) -> int:
    """Envelopes still queued (acks are not answered on the socket, so read the database)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as conn:
            depth = int(conn.execute("SELECT total(messages) FROM relay_depth").fetchone()[0])
        if depth == 0 or time.monotonic() > deadline:
            return depth
        time.sleep(0.1)
