"""Helpers for the evidence tests: the corpus and the read-parse-analyze pipeline."""

from __future__ import annotations

from typing import Any

import yaml

from mailtrace.intake import headers, ndr, readers
from mailtrace.intake import message as intake
from mailtrace.intake.tiers import HostMap
from mailtrace.topology import load_topology
from tests.support.paths import ROOT

CORPUS = ROOT / "tests" / "data" / "evidence"
EXPECTED: dict[str, Any] = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def hosts(topology_file: str | None) -> HostMap:
    return HostMap(load_topology(ROOT / "topologies" / topology_file) if topology_file else None)


def ndr_of(data: bytes, host_map: HostMap) -> ndr.NdrAnalysis:
    text = intake.to_text(data)
    return ndr.analyze(readers.parse_report(intake.parse_message(text), text), host_map)


def headers_of(data: bytes, host_map: HostMap) -> headers.HeaderAnalysis:
    msg = intake.parse_message(intake.to_text(data))
    fields = [(str(k), str(v)) for k, v in msg.items()]
    if not headers.check_is_header_set(fields):
        raise intake.EvidenceError("no header fields")
    return headers.analyze(fields, host_map)
