#!/usr/bin/env python3
"""Describe a wheelhouse: a pinned, hash-checked requirements file and a CycloneDX SBOM.

    wheelhouse_manifest.py WHEELHOUSE --root NAME [--bundle-version V] --lock OUT --sbom OUT

Reads every wheel's own metadata (name, version, licence, Requires-Dist), so the SBOM lists
exactly what the site installs. Standard library only (runs on the build machine's Python).
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import json
import re
import sys
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_wheel(path: Path) -> dict:
    with zipfile.ZipFile(path) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.BytesParser().parsebytes(wheel.read(meta_name))
    requires = []
    for req in meta.get_all("Requires-Dist") or []:
        if "extra ==" in req or "extra==" in req:
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if match:
            requires.append(canonical(match.group(1)))
    licence = meta.get("License-Expression") or meta.get("License") or ""
    licence = licence.strip().splitlines()[0] if licence.strip() else ""
    return {
        "name": meta["Name"],
        "version": meta["Version"],
        "licence": licence,
        "summary": meta.get("Summary", ""),
        "requires": requires,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheelhouse", type=Path)
    parser.add_argument("--root", required=True, help="the distribution the bundle installs")
    parser.add_argument("--bundle-version", help="default: the root distribution's version")
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--sbom", type=Path, required=True)
    args = parser.parse_args(argv)

    wheels = [read_wheel(p) for p in sorted(args.wheelhouse.glob("*.whl"))]
    by_name = {canonical(w["name"]): w for w in wheels}
    root = by_name.get(canonical(args.root))
    if root is None:
        print(f"wheelhouse_manifest: no wheel of {args.root} in {args.wheelhouse}", file=sys.stderr)
        return 1
    version = args.bundle_version or root["version"]
    missing = sorted({r for w in wheels for r in w["requires"] if r not in by_name})
    if missing:
        # Only dependencies for other platforms/Pythons may be absent (markers); list them.
        print(
            f"wheelhouse_manifest: not in the wheelhouse (marker-excluded?): {missing}",
            file=sys.stderr,
        )

    lines = [f"# {args.root} {version}: every wheel pinned by hash (--require-hashes)"]
    for w in sorted(wheels, key=lambda w: canonical(w["name"])):
        lines.append(f"{canonical(w['name'])}=={w['version']} --hash=sha256:{w['sha256']}")
    args.lock.write_text("\n".join(lines) + "\n")

    def ref(w: dict) -> str:
        return f"pkg:pypi/{canonical(w['name'])}@{w['version']}"

    def component(w: dict, kind: str) -> dict:
        comp = {
            "type": kind,
            "bom-ref": ref(w),
            "name": w["name"],
            "version": w["version"],
            "description": w["summary"],
            "purl": ref(w),
            "hashes": [{"alg": "SHA-256", "content": w["sha256"]}],
            "properties": [{"name": "semafore:wheel", "value": w["file"]}],
        }
        if w["licence"]:
            comp["licenses"] = [{"license": {"name": w["licence"][:200]}}]
        return comp

    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "wheelhouse_manifest.py"}]},
            "component": {**component(root, "application"), "version": version},
        },
        "components": [component(w, "library") for w in wheels if w is not root],
        "dependencies": [
            {
                "ref": ref(w),
                "dependsOn": sorted(ref(by_name[r]) for r in w["requires"] if r in by_name),
            }
            for w in wheels
        ],
    }
    args.sbom.write_text(json.dumps(sbom, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
