"""The appliance under test: ``semafore init`` into a scratch directory, ``semafore serve``
as a subprocess (stopped by its PID), and its RSS and CPU read from /proc."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

# Enough room for a benchmark organisation: codes go to files, limits raised where the
# defaults protect a real deployment from abuse rather than shape the workload.
BENCH_CONFIG: dict[str, dict[str, Any]] = {
    "otp": {
        "provider": "file",
        "sends_per_number_15min": 1000,
        "sends_per_number_day": 10_000,
        "sends_per_address_15min": 1_000_000,
        "sends_per_address_day": 1_000_000,
    },
    "orgs": {"free_plan_member_limit": 10_000_000},
    "relay": {"bundle_fetches_per_minute": 1_000_000},
    "logging": {"level": "warning", "access_log": False},
}


def semafore_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "semafore"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "semafore.cli.main", *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def init_appliance(data_dir: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """``semafore init`` + the benchmark settings; returns the config path."""
    subprocess.run(
        semafore_command("init", "--data-dir", str(data_dir)),
        check=True, stdout=subprocess.DEVNULL, timeout=120,
    )
    config_path = data_dir / "semafore.toml"
    data = tomllib.loads(config_path.read_text())
    for section, values in {**BENCH_CONFIG, **overrides}.items():
        data.setdefault(section, {}).update(values)
    config_path.write_text(dump_toml(data))
    return config_path


def dump_toml(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@dataclass
class Server:
    """A running ``semafore serve``."""

    config_path: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls, config_path: Path, ca_path: Path, *, command: list[str] | None = None,
        timeout: float = 30,
    ) -> Server:
        """``command`` replaces the installed ``semafore`` (e.g. to try a server change)."""
        port = free_port()
        data = tomllib.loads(config_path.read_text())
        data.setdefault("server", {}).update({"port": port, "host": HOST})
        config_path.write_text(dump_toml(data))
        log_path = config_path.parent / "serve.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [*(command or semafore_command()), "serve", "--config", str(config_path)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        server = cls(config_path, port, process, log_path, log)
        try:
            server._wait_until_up(ca_path, timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_up(self, ca_path: Path, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(ca_path))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("semafore serve exited:\n" + self.log_path.read_text())
            try:
                with (
                    socket.create_connection((HOST, self.port), timeout=1) as raw,
                    context.wrap_socket(raw, server_hostname=HOST),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("semafore serve did not come up:\n" + self.log_path.read_text())

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0])
    return found


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """user + system CPU time of a process, or of one of its threads (/proc/.../stat)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    stat = Path(path).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy_record(pid: int, output: Path, *options: str) -> subprocess.Popen[bytes]:
    """py-spy (installed beside this interpreter) recording ``pid`` into ``output`` as raw
    collapsed stacks at 200 Hz; it writes the file when ``--duration`` ends or on SIGINT."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
         "--format", "raw", "--rate", "200", "--output", str(output), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count
