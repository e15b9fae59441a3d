"""The text of ``mailtrace permissions``: per tier, each permission and the probes needing it."""

from __future__ import annotations

from typing import Any


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No planned probe needs an API permission for this topology.\n"
    lines = []
    for row in rows:
        lines.append(f"{row['tier']}: {row.get('api', 'API')} — {row.get('kind', '')} "
                     "permissions".replace("  ", " "))
        width = max(len(p) for p in row["permissions"])
        for permission, probes in row["permissions"].items():
            lines.append(f"  {permission:<{width}}  {', '.join(probes)}")
        lines.extend(f"  prerequisite: {note}" for note in row["prerequisites"])
    return "\n".join(lines) + "\n"
