"""The human-readable report of a ``semafore verify`` run (``--json`` prints the dict itself);
docs/verification.md explains how to read it."""

from __future__ import annotations


def human_report(report: dict) -> str:
    lines = [f"SemaFore on-box verification: {'PASS' if report['passed'] else 'FAIL'}", ""]
    lines.append(
        f"server          {report['server']} (TLS 1.3, certificate checked against the"
        " appliance CA)"
    )
    for step in report["steps"]:
        mark = "skip" if step.get("skipped") else "ok  " if step["ok"] else "FAIL"
        lines.append(
            f"  [{mark}] {step['step']}" + (f": {step['detail']}" if step["detail"] else "")
        )
    searched = report["searched_for"]
    kinds: dict[str, int] = {}
    for item in searched:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    lines.append("")
    lines.append(
        "searched for    "
        + ", ".join(f"{n} {kind}(s)" for kind, n in sorted(kinds.items()))
        + " in raw, UTF-16, hex and base64 forms"
    )
    for name, scan in report["passes"].items():
        total = sum(s["bytes"] for s in scan["scanned"])
        lines.append(f"pass {name:<14} {len(scan['scanned'])} file(s)/stream(s), {total} bytes")
        for s in scan["scanned"]:
            lines.append(f"    {s['kind']:<9} {s['source']} ({s['bytes']} bytes)")
    lines.append("")
    if report["findings"]:
        lines.append(f"FINDINGS ({len(report['findings'])}):")
        for f in report["findings"]:
            lines.append(
                f"  FOUND {f['needle']} ({f['encoding']}) in {f['source']} at offset {f['offset']}"
                f" [{f['pass']}]"
            )
    else:
        lines.append("findings        none")
    for gap in report["gaps"]:
        lines.append(f"gap             {gap}")
    return "\n".join(lines)
