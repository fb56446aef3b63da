"""Test hosts for the playbooks: a systemd-nspawn container and a QEMU VM, plus Ansible runs.

Both hosts come from the image that build-image.sh caches. Neither has a network beyond what
the test creates: the container lives in a network namespace with only a loopback interface,
the VM has QEMU user networking with ``restrict=on`` and only SSH forwarded in from the host's
loopback. Everything started here is stopped by its PID, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
SAMPLE_VAULT_PASSWORD = "sample-vault-password-for-tests-only"


def log(message: str) -> None:
    print(f"[deploy {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(
    argv: list[str], *, timeout: float = 600, check: bool = True, **kw
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def build_image() -> Path:
    """The cached image directory (built on first use, keyed by build-image.sh's hash)."""
    out = run(["bash", str(HERE / "build-image.sh")], timeout=1200)
    return Path(out.stdout.strip().splitlines()[-1])


def wait_until(what: str, predicate, *, timeout: float, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def stop_pid(proc: subprocess.Popen, *, timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- bundles


@dataclass
class Bundle:
    archive: Path
    version: str
    root: Path  # extracted bundle directory (the operator's working directory)


def build_bundle(
    *, source: Path, out_dir: Path, build_id: str, signing_key: Path, extract_to: Path
) -> Bundle:
    """Run playbooks/bundle.yml from the repository and extract the result."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run(
        [
            str(VENV_BIN / "ansible-playbook"),
            str(source / "playbooks" / "bundle.yml"),
            "-e",
            f"semafore_bundle_source={source}",
            "-e",
            f"semafore_bundle_output_dir={out_dir}",
            "-e",
            f"semafore_bundle_build_id={build_id}",
            "-e",
            f"semafore_bundle_signing_key={signing_key}",
        ],
        timeout=900,
        env=ansible_env(source / "ansible.cfg"),
        cwd=source,
    )
    archives = sorted(out_dir.glob(f"semafore-*-{build_id}.tar.gz"))
    assert len(archives) == 1, archives
    archive = archives[0]
    version = archive.name.removeprefix("semafore-").removesuffix(".tar.gz")
    extract_to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(extract_to, filter="data")
    return Bundle(archive=archive, version=version, root=extract_to / f"semafore-{version}")


def broken_source(src: Path, dest: Path) -> Path:
    """A copy of the source tree whose `semafore serve` exits at once (all else works).

    Its bundle installs, passes check-config and migrates, but never answers /healthz: the
    verification step of an upgrade fails, which must roll the host back by itself.
    """
    shutil.copytree(
        src,
        dest,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "dist",
            "build",
            "*.egg-info",
            "__pycache__",
            ".local",
            "node_modules",
            ".pytest_cache",
            ".ruff_cache",
        ),
    )
    init = dest / "appliance" / "semafore" / "__init__.py"
    init.write_text(
        init.read_text()
        + "\n\nimport sys as _sys\n\n"
        + "if _sys.argv[1:2] == ['serve']:  # deliberately broken release (rollback test)\n"
        + "    raise SystemExit('this release is broken on purpose')\n"
    )
    return dest


# --------------------------------------------------------------------------- ansible


def ansible_env(config: Path, *, mitogen: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        # An emulated guest on a busy 2-core host can take longer than the 10 s default to
        # answer a new SSH connection (seen right after a reboot).
        ANSIBLE_TIMEOUT="60",
        ANSIBLE_LOCAL_TEMP=str(Path(os.environ.get("TMPDIR", "/tmp")) / "semafore-ansible-local"),
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
    )
    if mitogen:
        import ansible_mitogen

        env["ANSIBLE_STRATEGY_PLUGINS"] = str(
            Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
        )
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    recap: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"PLAY RECAP \*+\n\S+\s+:\s+(.*)", output)
    if not match:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


@dataclass
class Inventory:
    """An operator's inventory for one test host: the bundle's production example with the
    host replaced and test-only host variables (what a site changes for its own network)."""

    path: Path
    host: str
    vault_password_file: Path

    @classmethod
    def create(cls, bundle: Bundle, workdir: Path, host: str, hostvars: dict) -> Inventory:
        inv = workdir / "inventory"
        if inv.exists():
            shutil.rmtree(inv)
        shutil.copytree(bundle.root / "inventory" / "production", inv)
        (inv / "hosts.yml").write_text(
            json.dumps({"semafore": {"hosts": {host: hostvars}}}, indent=2)
        )
        password = workdir / "vault-password"
        password.write_text(SAMPLE_VAULT_PASSWORD + "\n")
        password.chmod(0o600)
        return cls(path=inv, host=host, vault_password_file=password)

    def env(self, bundle: Bundle, *, mitogen: bool) -> dict[str, str]:
        env = ansible_env(bundle.root / "ansible.cfg", mitogen=mitogen)
        # SSH multiplexing sockets of this test run only: another run on the same machine
        # (same host alias, port and user) must never share a connection with this one.
        control = self.path.parent / "cp"
        control.mkdir(mode=0o700, exist_ok=True)
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control)
        return env

    def playbook(
        self, bundle: Bundle, name: str, *extra: str, mitogen: bool = False, timeout: float = 1800
    ) -> PlaybookRun:
        argv = [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(self.path),
            "--vault-password-file",
            str(self.vault_password_file),
            str(bundle.root / "playbooks" / name),
            *extra,
        ]
        log(f"ansible-playbook {name} ({bundle.version}){' ' + ' '.join(extra) if extra else ''}")
        start = time.monotonic()
        # Output to a file, not a pipe: ssh's ControlPersist master inherits the descriptors
        # and would hold a pipe open for a minute after ansible-playbook exits.
        log_file = self.path.parent / f"ansible-{name}-{time.time_ns()}.log"
        with open(log_file, "w+") as out:
            returncode = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
                cwd=bundle.root,
                env=self.env(bundle, mitogen=mitogen),
            ).returncode
            out.seek(0)
            output = out.read()
        seconds = time.monotonic() - start
        recap = _recap(output)
        log(f"  -> rc={returncode} {recap} in {seconds:.0f}s")
        return PlaybookRun(returncode, output, recap, seconds)


def verify_report(output: str) -> dict[str, str]:
    """The top-level fields of verify.yml's report (the "Show the report" task's YAML)."""
    block = output.split("TASK [Show the report]", 1)[-1].split("PLAY RECAP", 1)[0]
    return dict(re.findall(r"^ {8}(\w+): (\S.*)$", block, re.M))


def ok(run_: PlaybookRun) -> PlaybookRun:
    assert run_.returncode == 0, run_.output[-12000:]
    return run_


# --------------------------------------------------------------------------- hosts


class Host:
    """Common SSH access to a test host as the image's "ansible" admin user."""

    key: Path
    name: str

    def ssh_argv(self) -> list[str]:
        raise NotImplementedError

    def ssh(
        self, command: str, *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return run([*self.ssh_argv(), command], check=check, timeout=timeout)

    def sudo(self, command: str, **kw) -> subprocess.CompletedProcess:
        return self.ssh(f"sudo sh -c {shlex_quote(command)}", **kw)

    def ssh_ok(self) -> bool:
        try:
            return self.ssh("true", check=False, timeout=15).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def ssh_options(self) -> list[str]:
        return [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "BatchMode=yes",
            "-i",
            str(self.key),
        ]

    def ansible_hostvars(self) -> dict:
        raise NotImplementedError

    def testinfra_host(self, workdir: Path):
        import testinfra

        config = workdir / "ssh_config"
        config.write_text(self.ssh_config())
        return testinfra.get_host(
            f"ssh://ansible@{self.name}", ssh_config=str(config), sudo=True, controlpersist=0
        )

    def ssh_config(self) -> str:
        raise NotImplementedError


@contextlib.contextmanager
def loopback_listener(accept_seconds: float) -> Iterator[tuple[int, list]]:
    """A port on this host's loopback that records every connection made to it in the next
    ``accept_seconds``: yields (port, accepted). For "the guest cannot reach the host" checks."""
    accepted: list = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(accept_seconds)

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    accepted.append(listener.accept())

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            yield listener.getsockname()[1], accepted
        finally:
            thread.join(timeout=accept_seconds + 10)
            for connection, _ in accepted:
                connection.close()


def connect_probe(targets: list[tuple[str, int]], timeout: float) -> str:
    """A shell command that tries a TCP connection to each target and prints, per target,
    "CONNECTED" or "refused" with the error."""
    source = (
        "import socket\n"
        f"for target in {targets!r}:\n"
        "    try:\n"
        f"        socket.create_connection(target, timeout={timeout}).close()\n"
        "        print('CONNECTED', target)\n"
        "    except OSError as e:\n"
        "        print('refused', target, e.__class__.__name__)\n"
    )
    return f"python3 -c {shlex_quote(source)}"


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


class Container(Host):
    """Debian 12 booted with systemd-nspawn (systemd as PID 1) in a loopback-only netns."""

    def __init__(self, image: Path, workdir: Path, name: str = "semafore-ct") -> None:
        self.image = image
        self.workdir = workdir
        self.name = name
        self.netns = f"{name}-{os.getpid()}"
        self.rootfs = workdir / "rootfs"
        self.key = workdir / "id_ed25519"
        self.proc: subprocess.Popen | None = None
        self.boots = 0

    # lifecycle
    def create(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.rootfs.exists():
            shutil.rmtree(self.rootfs)
        run(
            ["cp", "-a", "--reflink=auto", str(self.image / "rootfs"), str(self.rootfs)],
            timeout=300,
        )
        shutil.copy(self.image / "id_ed25519", self.key)
        self.key.chmod(0o600)
        run(["ip", "netns", "add", self.netns])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])

    def boot(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.boots += 1
        console = open(self.workdir / f"console-{self.boots}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--boot",
                "--directory",
                str(self.rootfs),
                "--machine",
                self.name,
                "--register=no",
                "--keep-unit",
                f"--network-namespace-path=/run/netns/{self.netns}",
                # nftables needs CAP_NET_ADMIN, which nspawn grants only with a private network
                "--capability=CAP_NET_ADMIN",
                "--console=read-only",
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
        console.close()
        wait_until(
            "SSH in the container", lambda: self.proc.poll() is None and self.ssh_ok(), timeout=90
        )
        wait_until(
            "systemd to finish booting",
            lambda: (
                self.ssh(
                    "systemctl is-system-running --wait", check=False, timeout=60
                ).stdout.strip()
                in ("running", "degraded")
            ),
            timeout=90,
            interval=2,
        )

    def poweroff(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.ssh("sudo systemctl poweroff", check=False, timeout=30)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc)

    def destroy(self) -> None:
        if self.proc is not None:
            self.poweroff()
            stop_pid(self.proc)
        run(["ip", "netns", "delete", self.netns], check=False)
        if self.rootfs.exists():
            shutil.rmtree(self.rootfs, ignore_errors=True)

    # access
    def proxy_command(self) -> str:
        return f"ip netns exec {self.netns} python3 {HERE / 'netns_proxy.py'} 127.0.0.1 22"

    def ssh_argv(self) -> list[str]:
        return [
            "ssh",
            *self.ssh_options(),
            "-o",
            f"ProxyCommand={self.proxy_command()}",
            f"ansible@{self.name}",
        ]

    def ssh_config(self) -> str:
        return (
            f"Host {self.name}\n  User ansible\n  IdentityFile {self.key}\n"
            f"  ProxyCommand {self.proxy_command()}\n  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
        )

    def ansible_hostvars(self) -> dict:
        return {
            "ansible_host": self.name,
            "ansible_user": "ansible",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": (
                f"-o ProxyCommand='{self.proxy_command()}' -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null"
            ),
        }

    def netns_exec(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.netns, *argv], **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_usable() -> bool:
    """KVM only where a stock kernel runs under it (kvm_intel/kvm_amd, not kvm_pvm)."""
    try:
        modules = Path("/proc/modules").read_text()
    except OSError:
        return False
    return os.path.exists("/dev/kvm") and bool(re.search(r"^kvm_(intel|amd) ", modules, re.M))


class VirtualMachine(Host):
    """Debian 12 under QEMU (KVM where usable, else TCG), air-gapped with restrict=on."""

    def __init__(self, image: Path, workdir: Path, name: str = "semafore-vm") -> None:
        self.image = image
        self.workdir = workdir
        self.name = name
        self.key = workdir / "id_ed25519"
        self.overlay = workdir / "overlay.qcow2"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.boots = 0
        self.accel = "kvm" if kvm_usable() else "tcg"

    def create(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.image / "id_ed25519", self.key)
        self.key.chmod(0o600)
        if self.overlay.exists():
            self.overlay.unlink()
        run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                str(self.image / "disk.qcow2"),
                str(self.overlay),
            ]
        )

    def boot(self, *, timeout: float = 300) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.boots += 1
        accel = (
            ["-accel", "kvm", "-cpu", "host"]
            if self.accel == "kvm"
            else [
                "-accel",
                "tcg,thread=multi,tb-size=256",
                "-cpu",
                "max",
            ]
        )
        console = self.workdir / f"console-{self.boots}.log"
        qemu_log = open(self.workdir / f"qemu-{self.boots}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "qemu-system-x86_64",
                *accel,
                "-machine",
                "q35",
                "-smp",
                "2",
                "-m",
                "1536",
                "-nographic",
                "-no-reboot",
                "-kernel",
                str(self.image / "vmlinuz"),
                "-initrd",
                str(self.image / "initrd.img"),
                "-append",
                "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=0",
                "-drive",
                f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe",
                # air gap: user networking restricted to the guest; only SSH forwarded in
                "-netdev",
                f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device",
                "virtio-net-pci,netdev=n0",
                "-serial",
                f"file:{console}",
                "-monitor",
                "none",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=qemu_log,
        )
        qemu_log.close()
        start = time.monotonic()
        wait_until(
            "SSH in the VM",
            lambda: self.proc.poll() is None and self.ssh_ok(),
            timeout=timeout,
            interval=3,
        )
        log(f"VM boot {self.boots} ({self.accel}): SSH after {time.monotonic() - start:.0f}s")

    def reboot(self, *, timeout: float = 300) -> None:
        # -no-reboot: the guest's reboot ends QEMU; boot it again on the same disk (a reboot).
        self.ssh("sudo systemctl reboot", check=False, timeout=30)
        try:
            self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc)
        self.boot(timeout=timeout)

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.ssh("sudo systemctl poweroff", check=False, timeout=30)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                stop_pid(self.proc)
        if self.overlay.exists():
            self.overlay.unlink()

    def ssh_argv(self) -> list[str]:
        return ["ssh", *self.ssh_options(), "-p", str(self.port), "ansible@127.0.0.1"]

    def ssh_config(self) -> str:
        return (
            f"Host {self.name}\n  HostName 127.0.0.1\n  Port {self.port}\n  User ansible\n"
            f"  IdentityFile {self.key}\n  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
        )

    def ansible_hostvars(self) -> dict:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "ansible",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": (
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
            ),
        }


# --------------------------------------------------------------------------- site settings


def offline_venv(
    venv: Path, wheel_dir: Path, *requirements: str, env: dict | None = None
) -> None:
    """A venv with ``requirements`` installed from ``wheel_dir`` alone (no package index)."""
    run(["python3", "-m", "venv", str(venv)], env=env)
    run(
        [
            str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
            "--no-index", "--find-links", str(wheel_dir), *requirements,
        ],
        env=env,
        timeout=900,
    )


def release_has(bundle: Bundle, *command: str) -> bool:
    """Whether the release in the bundle has a CLI command (checked in a scratch venv)."""
    venv = bundle.root.parent / "probe-venv"
    if not (venv / "bin" / "semafore").exists():
        wheels = bundle.root.parent / "probe-wheels"
        wheels.mkdir(exist_ok=True)
        subprocess.run(
            ["tar", "-xf", str(bundle.root / "wheelhouse.tar"), "-C", str(wheels)], check=True
        )
        offline_venv(
            venv, wheels / "wheelhouse", "-r", str(wheels / "wheelhouse" / "requirements.lock")
        )
    result = subprocess.run(
        [str(venv / "bin" / "semafore"), *command, "--help"], capture_output=True, check=False
    )
    return result.returncode == 0


def site_hostvars(host: Host, bundle: Bundle, **extra) -> dict:
    """What a site sets for its own host, on top of the example inventory's group_vars."""
    hostvars = host.ansible_hostvars()
    hostvars.update(
        # verify.yml runs `semafore verify` (device enrolments from 127.0.0.1) many times within
        # 15 minutes here; raise the per-address OTP limits so the story is not rate-limited.
        semafore_appliance_settings_extra={
            "otp": {"sends_per_address_15min": 1000, "sends_per_address_day": 10000}
        },
        semafore_tls_hostnames=["semafore.test"],
        semafore_tls_ip_addresses=[],
        semafore_appliance_server_public_url="https://semafore.test",
    )
    if not release_has(bundle, "org", "create"):
        # The example inventory bootstraps an organisation; this release cannot yet.
        hostvars["semafore_appliance_bootstrap_org_name"] = ""
    hostvars.update(extra)
    return hostvars
