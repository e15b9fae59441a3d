"""Real bounces from many MTAs (tests/data/bounces, the Sisimai project's set-of-emails,
BSD-2): every one is recognized, every recipient is found, and the code chosen agrees
with the status the Sisimai project's own tables state for it.

Comparable statuses are RFC 3463 codes (``class.subject.detail``, subject 0-7); the
tables' private guesses (``5.0.9xx``, subject 9) and empty statuses are not compared.
Feedback reports (``arf-*``) and auto-replies (``rfc3834-*``) are not bounces: they must
be recognized as what they are.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from mailtrace.intake import message as intake
from mailtrace.intake import ndr, readers
from mailtrace.intake.dsn import NotABounce
from mailtrace.intake.tiers import HostMap
from tests.support.evidence_util import ROOT, hosts

DATA = ROOT / "tests" / "data" / "bounces"
EXPECTED: dict[str, list[dict[str, str]]] = json.loads(
    (DATA / "expected.json").read_text())["samples"]
NOT_BOUNCES = {"feedback": "feedback", "vacation": "auto-reply"}
_RFC3463 = re.compile(r"[245]\.[0-7]\.\d{1,3}")
_PRIVATE = re.compile(r"\d\.0\.9\d\d")
SLOW_S = 1.0


def bounces_of(data: bytes, host_map: HostMap) -> list[ndr.NdrAnalysis]:
    """Every message of a file (an mbox holds several), as ``mailtrace ndr --all`` reads it."""
    text = intake.to_text(data)
    return [ndr.analyze(readers.parse_report(intake.parse_message(t), t), host_map)
            for t in intake.split_mbox(text)]


def comparable(status: str) -> bool:
    return bool(_RFC3463.fullmatch(status)) and not _PRIVATE.fullmatch(status)


@dataclass
class Tally:
    files: int = 0
    unrecognized: list[str] = field(default_factory=list)
    counts_match: int = 0
    compared: int = 0
    agreed: int = 0
    misses: list[str] = field(default_factory=list)


def _family(name: str) -> str:
    return re.sub(r"-\d+\.eml$", "", name)


def _read(name: str, tally: Tally) -> None:
    expected = EXPECTED[name]
    tally.files += 1
    kind = NOT_BOUNCES.get(expected[0]["reason"])
    started = time.perf_counter()
    try:
        analyses = bounces_of((DATA / "samples" / name).read_bytes(), hosts(None))
    except NotABounce as exc:
        if kind is not None and exc.kind == kind:
            tally.counts_match += 1
        else:
            tally.unrecognized.append(f"{name}: {exc}")
        return
    finally:
        assert time.perf_counter() - started < SLOW_S, f"{name} took too long"
    if kind is not None:
        tally.unrecognized.append(f"{name}: read as a bounce, not as {kind}")
        return
    got = [o.status for a in analyses for o in a.outcomes]
    tally.counts_match += len(got) == len(expected)
    for i, row in enumerate(expected):
        if not comparable(row["status"]):
            continue
        tally.compared += 1
        mine = got[i] if i < len(got) else None
        if mine == row["status"]:
            tally.agreed += 1
        else:
            tally.misses.append(f"{name}#{i + 1}: {mine} (tables: {row['status']})")


def test_every_real_bounce_is_read_and_its_code_agrees(capsys):
    total = Tally()
    families: dict[str, Tally] = defaultdict(Tally)
    for name in sorted(EXPECTED):
        one = Tally()
        _read(name, one)
        for tally in (total, families[_family(name)]):
            tally.files += one.files
            tally.unrecognized += one.unrecognized
            tally.counts_match += one.counts_match
            tally.compared += one.compared
            tally.agreed += one.agreed
            tally.misses += one.misses
    status = total.agreed / total.compared
    counts = total.counts_match / total.files
    with capsys.disabled():
        print(f"\nbounce corpus: {total.files} files; status agrees {total.agreed}/"
              f"{total.compared} ({status:.1%}); recipients match {total.counts_match}/"
              f"{total.files} ({counts:.1%}); unrecognized {len(total.unrecognized)}")
        for name, t in sorted(families.items()):
            print(f"  {name:26} files {t.files:3}  status {t.agreed:3}/{t.compared:<3}"
                  f"  recipients {t.counts_match:3}/{t.files:<3}"
                  f"  unrecognized {len(t.unrecognized)}")
        for miss in total.misses + total.unrecognized:
            print(f"  - {miss}")
    assert not total.unrecognized
    assert status >= 0.95
    assert counts >= 0.98


def test_every_sample_has_its_expected_table_or_is_read_anyway():
    samples = {p.name for p in (DATA / "samples").iterdir()}
    assert set(EXPECTED) <= samples
    for name in samples - set(EXPECTED):  # no table: read, not compared
        analyses = bounces_of((DATA / "samples" / name).read_bytes(), hosts(None))
        assert [o.failed for a in analyses for o in a.outcomes] == [True]
