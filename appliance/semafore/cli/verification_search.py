"""One search pass of a ``semafore verify`` run: the database (with its WAL), the blob
directory and the logs, for every needle in every encoding."""

from __future__ import annotations

import argparse
from typing import Any

from semafore.cli.verification_logs import read_logs
from semafore.config import Settings
from semafore.services.verification import Needle, Scanner, ScanResult, database_files


def search_pass(
    settings: Settings,
    needles: list[Needle],
    args: argparse.Namespace,
    started: float,
    report: dict[str, Any],
) -> dict[str, Any]:
    """What was scanned and found (JSON); gaps in the coverage are added to the report once."""
    scanner = Scanner(needles)
    result = ScanResult()
    for path, kind in database_files(settings.storage.database_path):
        scanner.scan_file(path, kind, result)
    scanner.scan_tree(settings.storage.blob_dir, "blob", result)
    sources, gaps = read_logs(args, started)
    for name, data in sources:
        scanner.scan_stream(name, "log", [data], result)
    for gap in gaps:
        if gap not in report["gaps"]:
            report["gaps"].append(gap)
    return result.to_json()
