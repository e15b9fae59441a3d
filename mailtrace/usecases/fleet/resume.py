"""``--resume FILE``: what a previous run of the same list already reported.

Its domain lines are done (their domains are skipped, their results count in the fleet's
summary and exit status); its error lines for unreadable lines are not reported again; a
domain it could not verify is tried again. A run that was killed outright may have left
its last line unfinished: that line is ignored (its domain is verified again). Any other
line that is not a ``mailtrace/fleet-1`` line makes the file unusable, named with its
line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mailtrace.report.fleet import SCHEMA, FleetSummary
from mailtrace.usecases.fleet.seen import SeenSet


class ResumeError(ValueError):
    """The file cannot be resumed from: FILE:LINE and why."""


@dataclass
class Previous:
    done: SeenSet = field(default_factory=SeenSet)  # domains reported
    bad_lines: SeenSet = field(default_factory=SeenSet)  # "#<line>" of unreadable lines
    lines: int = 0
    unfinished: bool = False  # its last line was cut short
    end: int = 0  # bytes up to the end of its last whole line (where to append)


def read_previous(path: Path, summary: FleetSummary) -> Previous:
    """Read a previous output, counting its lines into ``summary``."""
    previous = Previous()
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return previous  # nothing done yet: the first run of a --resume loop
    except OSError as exc:
        raise ResumeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        number = 0
        for raw in fh:
            number += 1
            if not raw.strip():
                previous.end += len(raw)
                continue
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
                    raise ValueError
            except ValueError:
                if not raw.endswith(b"\n") and not fh.read(1):
                    previous.unfinished = True  # a run killed mid-line
                    break
                raise ResumeError(f"{path}:{number}: not a {SCHEMA} line (an output of "
                                  "mailtrace verify --domains)") from None
            previous.lines += 1
            previous.end += len(raw)
            if doc.get("kind") == "domain" and isinstance(doc.get("domain"), str):
                previous.done.add(doc["domain"], int(doc.get("line") or 0))
                summary.add(doc)
            elif doc.get("kind") == "error" and not doc.get("domain"):
                previous.bad_lines.add(f"#{doc.get('line')}")
                summary.add(doc)
    return previous
