"""The logs a ``semafore verify`` run searches: the log files named with ``--log-file`` and the
systemd journal of ``--journal-unit`` since the run started (unless ``--no-journal``)."""

from __future__ import annotations

import argparse
import shutil
import subprocess


def read_logs(
    args: argparse.Namespace, started: float
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(source name, bytes) of every log to search, and the gaps in that coverage."""
    sources: list[tuple[str, bytes]] = []
    gaps: list[str] = []
    for path in args.log_file:
        try:
            sources.append((str(path), path.read_bytes()))
        except OSError as exc:
            gaps.append(f"log file {path} not searched: {exc.strerror}")
    if not args.no_journal:
        journalctl = shutil.which("journalctl")
        if journalctl is None:
            gaps.append(
                "journal not searched: journalctl not found (pass --log-file or --no-journal)"
            )
        else:
            proc = subprocess.run(
                [
                    journalctl,
                    "--unit",
                    args.journal_unit,
                    "--since",
                    f"@{int(started) - 1}",
                    "--output",
                    "cat",
                    "--no-pager",
                    "--quiet",
                ],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if proc.returncode != 0:
                gaps.append(f"journal not searched: journalctl exited {proc.returncode}")
            elif not proc.stdout:
                gaps.append(f"journal of unit {args.journal_unit} has no entries for this run")
            else:
                sources.append((f"journal:{args.journal_unit}", proc.stdout))
    return sources, gaps
