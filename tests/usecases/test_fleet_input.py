"""A fleet's list read line by line: every bad line named by number and the rest read on,
each domain once (by a compact fingerprint set), topologies loaded once, a previous run's
results resumed from; no network."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mailtrace.report.fleet import FleetSummary, domain_doc, dumps, error_doc
from mailtrace.usecases.fleet.domains import (
    MAX_LINE,
    BadLine,
    DomainLine,
    count_lines,
    domain_name,
    read_lines,
)
from mailtrace.usecases.fleet.plan import Duplicate, Planner, Problem, Resumed
from mailtrace.usecases.fleet.resume import ResumeError, read_previous
from mailtrace.usecases.fleet.seen import SeenSet
from mailtrace.usecases.fleet.verifying import Work
from tests.support.paths import TOPOLOGIES

CONTOSO = TOPOLOGIES / "contoso-proofpoint-exo.yaml"
NORTHWIND = TOPOLOGIES / "northwind-exo-direct.yaml"


def lines(text: str | bytes) -> list[DomainLine | BadLine]:
    raw = text.encode() if isinstance(text, str) else text
    return list(read_lines(io.BytesIO(raw)))


def test_plain_and_csv_lines_comments_header_and_blank_lines():
    got = lines("domain,topology\n# our clients\n\nContoso.COM.\n"
                f'fabrikam.com,{NORTHWIND}\n"litware.com",  other.yaml  \n')
    assert got == [DomainLine(4, "contoso.com", None),
                   DomainLine(5, "fabrikam.com", str(NORTHWIND)),
                   DomainLine(6, "litware.com", "other.yaml")]


@pytest.mark.parametrize(("text", "reason"), [
    ("alice@contoso.com", "an address"),
    ("localhost", "single label"),
    ("bad_label.example", "label 'bad_label'"),
    ("-lead.example", "label '-lead'"),
    ("a..b.example", "an empty label"),
    ("x" * 64 + ".example", "label"),
    ("a.b,c.yaml,extra", "3 fields"),
    ('"unterminated,x', "not a CSV line"),
])
def test_a_bad_line_is_named_by_number_and_the_rest_read_on(text: str, reason: str):
    got = lines(f"contoso.com\n{text}\nfabrikam.com\n")
    assert got[0] == DomainLine(1, "contoso.com", None)
    assert isinstance(got[1], BadLine) and got[1].line == 2 and reason in got[1].reason
    assert got[2] == DomainLine(3, "fabrikam.com", None)


def test_not_utf8_an_overlong_line_and_an_idn():
    raw = (b"\xff\xfe.example\n" + b"a" * (MAX_LINE + 10) + b"\n" + "bücher.example\n".encode())
    got = lines(raw)
    assert isinstance(got[0], BadLine) and got[0].reason == "not UTF-8 text"
    assert isinstance(got[1], BadLine) and got[1].line == 2 and "longer than" in got[1].reason
    assert len(got[1].text) <= 120
    assert got[2] == DomainLine(3, "xn--bcher-kva.example", None)
    assert domain_name("xn--bcher-kva.example.") == "xn--bcher-kva.example"


def test_the_header_is_only_the_first_line():
    assert lines("domain\ncontoso.com\n") == [DomainLine(2, "contoso.com", None)]
    got = lines("contoso.com\ndomain\n")
    assert isinstance(got[1], BadLine) and got[1].line == 2


def test_count_lines_puts_the_stream_back():
    stream = io.BytesIO(b"a.example\nb.example\nc.example")
    stream.readline()
    assert count_lines(stream) == 2 and stream.readline() == b"b.example\n"


def test_the_seen_set_keeps_the_first_line_and_stays_compact():
    seen = SeenSet()
    assert seen.add("contoso.com", 3) is None
    assert seen.add("contoso.com", 9) == 3
    for i in range(20000):
        assert seen.add(f"client-{i}.example", i + 10) is None
    assert len(seen) == 20001 and "client-19999.example" in seen and "other.example" not in seen
    assert seen.add("client-77.example", 1) == 87
    # 12 bytes a slot, at most half full: well under the 100 bytes a name would cost
    assert seen.nbytes <= 48 * len(seen)


def test_the_planner_loads_each_topology_once_and_sets_duplicates_aside(tmp_path: Path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("topology: x\ndomains: [\n", encoding="utf-8")
    text = (f"contoso.com\nfabrikam.com,{NORTHWIND}\ncontoso.com\nlitware.com,broken.yaml\n"
            f"adatum.com,missing.yaml\nnot a domain\n")
    planner = Planner(CONTOSO, tmp_path)
    items = list(planner.items(lines(text)))
    assert [type(i).__name__ for i in items] == ["Work", "Work", "Duplicate", "Problem",
                                                 "Problem", "Problem"]
    assert items[2] == Duplicate(3, "contoso.com", 1)
    assert isinstance(items[3], Problem) and items[3].domain == "litware.com"
    assert "broken.yaml:" in items[3].reason  # the loader's file:line:column
    assert isinstance(items[4], Problem) and "missing.yaml" in items[4].reason
    assert len(planner.topologies) == 2
    names = {t.topology for t in planner.topologies.values()}
    assert names == {"contoso", "northwind"}


def test_a_line_without_a_topology_when_none_is_given():
    planner = Planner(None, Path("."))
    (item,) = planner.items(lines("contoso.com\n"))
    assert isinstance(item, Problem) and "no topology" in item.reason


def test_resume_skips_what_a_previous_run_reported(tmp_path: Path):
    previous = tmp_path / "out.ndjson"
    done = domain_doc(1, "contoso.com", "contoso", {"default": {"status": "converged",
                                                                "records": []}})
    retried = error_doc(2, "the shard failed", domain="fabrikam.com")
    unreadable = error_doc(3, "not UTF-8 text", text="?")
    previous.write_text("\n".join(dumps(d) for d in (done, retried, unreadable))
                        + '\n{"schema": "mailtrace/fleet-1", "kind": "dom', encoding="utf-8")
    summary = FleetSummary()
    got = read_previous(previous, summary)
    assert got.unfinished and got.lines == 3
    assert previous.read_bytes()[got.end:] == b'{"schema": "mailtrace/fleet-1", "kind": "dom'
    assert "contoso.com" in got.done and "fabrikam.com" not in got.done
    assert summary.domains == 1 and summary.errors.count == 1  # the retried one not counted
    planner = Planner(CONTOSO, tmp_path, got.done, got.bad_lines)
    items = list(planner.items(lines(b"contoso.com\nfabrikam.com\n\xff\n")))
    assert items == [Resumed(1, "contoso.com"), Work(2, "fabrikam.com", str(CONTOSO.resolve()))]


def test_resume_refuses_a_file_that_is_no_fleet_output(tmp_path: Path):
    other = tmp_path / "other.ndjson"
    other.write_text(json.dumps({"schema": "mailtrace/verify-1"}) + "\n{}\n", encoding="utf-8")
    with pytest.raises(ResumeError, match=r"other.ndjson:1: not a mailtrace/fleet-1 line"):
        read_previous(other, FleetSummary())
    assert read_previous(tmp_path / "absent.ndjson", FleetSummary()).lines == 0
