"""Every acknowledged write survives a SIGKILL of the process in the middle of group commits.

A real child process (crash_writer.py) runs concurrent writers and prints each id the moment
write() returns. It is killed with SIGKILL after a random number of acknowledgements, then every
id it printed must be in the database file, and the file must pass integrity_check. Ten runs
kill it from here (1,000 writers, the kill lands at a random point of the child's work); ten
more have the child kill itself the instant a chosen write returns (one writer, 256 KiB rows):
if an answer ever came before its COMMIT had reached the OS, that write is lost. With the
answer moved before the COMMIT in Database._run_batch, those ten fail every time.

What this proves is the order "COMMIT, then answer": a process kill keeps whatever reached the
OS, so a write acknowledged before its COMMIT is lost, one acknowledged after is not. Durability
across power loss rests on synchronous=FULL, which test_database checks is set.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("crash_writer.py")
WRITERS = 1000
MOST_ACKS = 4000
# The child killing itself at an ack: one writer, so that ack is the whole batch and the kill
# comes as soon as the caller is answered (a batch of 1,000 takes longer to print than to COMMIT).
SELF_KILL_WRITERS = 1
SELF_KILL_MOST_ACKS = 200
SELF_KILL_ROW_BYTES = 256 * 1024
TIMEOUT = 120.0  # only a bound for a hang; a run takes about a second


@pytest.mark.parametrize("killer", ["test", "itself"])
@pytest.mark.parametrize("run", range(10))
def test_every_acknowledged_write_survives_sigkill(tmp_path: Path, run: int, killer: str) -> None:
    """``test``: this test kills the child once it has read enough acks, a random moment for
    the child; ``itself``: the child kills itself the instant its chosen ack is printed."""
    seed = random.randrange(1 << 32)
    writers, most = (WRITERS, MOST_ACKS) if killer == "test" else (
        SELF_KILL_WRITERS, SELF_KILL_MOST_ACKS)
    kill_after = random.Random(seed).randint(1, most)
    context = f"run {run}, seed {seed}, {killer} kills after {kill_after} acks"
    self_kill = [str(kill_after), str(SELF_KILL_ROW_BYTES)] if killer == "itself" else []
    db_path = tmp_path / "crash.db"
    stderr_path = tmp_path / "child.stderr"
    acked: list[int] = []
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(db_path), str(writers), *self_kill],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        child.kill()

    watchdog = threading.Timer(TIMEOUT, on_timeout)
    watchdog.start()
    try:
        assert child.stdout is not None
        for line in child.stdout:  # the child writes until it is killed
            acked.append(int(line))
            if len(acked) == kill_after:
                child.send_signal(signal.SIGKILL)
                break
        # Ids printed before the kill landed were acknowledged too.
        acked.extend(int(line) for line in child.stdout.read().splitlines(keepends=True)
                     if line.endswith("\n"))
        child.wait(timeout=TIMEOUT)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert not timed_out.is_set(), f"{context}: no kill after {TIMEOUT}s, {len(acked)} acks"
    assert child.returncode == -signal.SIGKILL, (
        f"{context}: child ended with {child.returncode}: {stderr_path.read_text()[-2000:]}"
    )
    assert len(acked) >= kill_after, context

    conn = sqlite3.connect(db_path)
    try:
        present = {row[0] for row in conn.execute("SELECT id FROM acked")}
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    lost = sorted(set(acked) - present)
    assert not lost, (
        f"{context}: {len(lost)} of {len(acked)} acknowledged writes are missing, e.g. {lost[:5]}"
    )
    assert integrity == [("ok",)], f"{context}: {integrity}"
