#!/usr/bin/python3
"""On-box checks of a SemaFore appliance, run by verify.yml and upgrade.yml as root.

    verify_host.py '{"port": 443, "hostname": "...", ...}'

Checks: the service is active and enabled; /healthz and /readyz answer over TLS 1.3 with the
appliance CA pinned; TLS 1.2 is refused; the host holds no connection it opened to another
host and cannot open one (firewall output policy and a probe connection); the journal holds no
phone numbers or tokens; `semafore verify --json` passes where the release has it.
Prints one JSON report; exits 1 if any check failed. Standard library only.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import subprocess
import sys
import time


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def https_get(cfg: dict, path: str) -> tuple[int, str, str]:
    ctx = ssl.create_default_context(cafile=cfg["ca_file"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with (
        socket.create_connection((cfg["address"], cfg["port"]), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=cfg["hostname"]) as tls,
    ):
        request = f"GET {path} HTTP/1.1\r\nHost: {cfg['hostname']}\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        version = tls.version() or ""
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace"), version


def check_health(cfg: dict) -> list[str]:
    deadline = time.monotonic() + cfg["wait_seconds"]
    last = ""
    while True:
        try:
            status, body, version = https_get(cfg, "/healthz")
            if status == 200 and '"ok"' in body:
                break
            last = f"/healthz answered {status}: {body[:200]}"
        except (OSError, ValueError, IndexError) as exc:
            last = f"/healthz: {exc}"
        if time.monotonic() > deadline:
            return [last]
        time.sleep(2)
    problems = []
    if version != "TLSv1.3":
        problems.append(f"/healthz was served over {version}, not TLSv1.3")
    try:
        status, body, _ = https_get(cfg, "/readyz")
        if status != 200:
            problems.append(f"/readyz answered {status}: {body[:200]}")
    except (OSError, ValueError, IndexError) as exc:
        problems.append(f"/readyz: {exc}")
    return problems


def check_tls12_refused(cfg: dict) -> list[str]:
    ctx = ssl.create_default_context(cafile=cfg["ca_file"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with (
            socket.create_connection((cfg["address"], cfg["port"]), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=cfg["hostname"]) as tls,
        ):
            return [f"a TLS 1.2 handshake succeeded ({tls.version()})"]
    except ssl.SSLError:
        return []
    except OSError as exc:
        return [f"TLS 1.2 probe could not connect: {exc}"]


def _sockets(kind: str) -> list[tuple[str, int, str, int, str]]:
    rows = []
    for family in ("", "6"):
        try:
            with open(f"/proc/net/{kind}{family}") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            rows.append((*_addr(local), *_addr(remote), state))
    return rows


def _addr(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        ip = ipaddress.IPv6Address(b"".join(words))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def check_no_outbound(cfg: dict) -> list[str]:
    problems = []
    inbound = set(cfg["inbound_ports"])
    allowed_peers = set(cfg["allowed_peers"])
    tcp_listen = "0A"
    for kind in ("tcp", "udp"):
        for lip, lport, rip, rport, state in _sockets(kind):
            if kind == "tcp" and state == tcp_listen:
                continue
            if rport == 0 or ipaddress.ip_address(rip).is_unspecified:
                continue
            if ipaddress.ip_address(rip).is_loopback or lport in inbound or rip in allowed_peers:
                continue
            problems.append(f"{kind} connection {lip}:{lport} -> {rip}:{rport} (state {state})")
    if cfg["check_firewall"]:
        out = run("nft", "list", "chain", "inet", "semafore", "output")
        if out.returncode != 0 or "policy drop" not in out.stdout:
            problems.append("the firewall's output chain with policy drop is not loaded")
    if cfg["probe"]:
        host, _, port = cfg["probe"].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                problems.append(f"an outbound connection to {cfg['probe']} succeeded")
        except OSError:
            pass
    return problems


JOURNAL_PATTERNS = {
    "phone number": re.compile(r"\+[1-9][0-9]{7,14}\b"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "bearer token": re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{8,}", re.IGNORECASE),
}


def check_journal(cfg: dict) -> list[str]:
    out = run("journalctl", "--unit", cfg["service"], "--output", "cat", "--no-pager")
    problems = []
    for name, pattern in JOURNAL_PATTERNS.items():
        hits = len(pattern.findall(out.stdout))
        if hits:
            problems.append(f"the journal of {cfg['service']} holds {hits} line(s) like a {name}")
    return problems


def check_service(cfg: dict) -> list[str]:
    problems = []
    for verb, want in (("is-active", "active"), ("is-enabled", "enabled")):
        state = run("systemctl", verb, cfg["service"]).stdout.strip()
        if state != want:
            problems.append(f"{cfg['service']} is {state or 'unknown'}, not {want}")
    return problems


def check_semafore_verify(cfg: dict) -> tuple[list[str], str]:
    semafore = cfg["semafore_bin"]
    helptext = run(semafore, "--help").stdout
    if not re.search(r"\bverify\b", helptext):
        return [], "not in this release"
    # As the service user, with read access to the journal for this command only.
    argv = ["runuser", "-u", cfg["user"], "-g", cfg["group"], "-G", "systemd-journal", "--"]
    argv += [semafore, "verify"]
    argv += ["--json", "--config", cfg["config_file"], "--ca", cfg["ca_file"]]
    if cfg["server_url"]:
        argv += ["--server", cfg["server_url"]]
    out = run(*argv, timeout=600)
    if out.returncode != 0:
        return [
            f"semafore verify failed ({out.returncode}): {(out.stdout + out.stderr)[-1500:]}"
        ], "failed"
    return [], "passed"


def main() -> int:
    cfg = {
        "address": "127.0.0.1",
        "port": 443,
        "hostname": "localhost",
        "ca_file": "/etc/semafore/tls/ca.crt",
        "service": "semafore.service",
        "user": "semafore",
        "group": "semafore",
        "config_file": "/etc/semafore/semafore.toml",
        "semafore_bin": "/opt/semafore/current/venv/bin/semafore",
        "inbound_ports": [22, 443],
        "allowed_peers": [],
        "check_firewall": True,
        "probe": "192.0.2.1:443",
        "server_url": "",
        "wait_seconds": 30,
        "skip": [],
    }
    cfg.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
    report: dict[str, object] = {}
    failed = False
    checks = {
        "service": check_service,
        "health": check_health,
        "tls12_refused": check_tls12_refused,
        "no_outbound": check_no_outbound,
        "journal": check_journal,
    }
    for name, check in checks.items():
        if name in cfg["skip"]:
            report[name] = "skipped"
            continue
        problems = check(cfg)
        report[name] = problems or "ok"
        failed = failed or bool(problems)
    if "semafore_verify" in cfg["skip"]:
        report["semafore_verify"] = "skipped"
    else:
        problems, state = check_semafore_verify(cfg)
        report["semafore_verify"] = problems or state
        failed = failed or bool(problems)
    try:
        release = subprocess.run(
            ["readlink", "-f", "/opt/semafore/current"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        release = ""
    report["release"] = release.rsplit("/", 1)[-1]
    report["result"] = "FAILED" if failed else "ok"
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
