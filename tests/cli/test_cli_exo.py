"""The command line for the Exchange Online tier: `permissions`, and `--since`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailtrace.cli import main
from tests.support.paths import ROOT

CONTOSO = str(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")
FABRIKAM = str(ROOT / "topologies" / "fabrikam-essentials-exo.yaml")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_permissions_lists_the_least_set_with_who_needs_each(capsys):
    code, out, _ = run(capsys, "permissions", "--topology", CONTOSO, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    [tier] = doc["tiers"]
    assert (tier["tier"], tier["kind"]) == ("exchange-online", "application")
    assert tier["permissions"] == {
        "Domain.Read.All": ["exo.domain"],
        "ExchangeMessageTrace.Read.All": ["exo.trace"],
        "GroupMember.Read.All": ["exo.directory"],
        "Mail.Read": ["exo.mailtips"],
        "MailboxSettings.Read": ["exo.recipient", "exo.rules"],
        "OrgContact.Read.All": ["exo.directory"],
        "ServiceHealth.Read.All": ["exo.health"],
        "User.Read.All": ["exo.directory"],
    }
    assert any("8bd644d1-64a1-4d4b-ae52-2e0cbf64e373" in p for p in tier["prerequisites"])


def test_permissions_for_chosen_probes_and_delegated_sign_in(capsys):
    code, out, _ = run(capsys, "permissions", "--topology", FABRIKAM, "--probe", "exo.rules")
    assert code == 0
    assert "delegated permissions" in out
    assert "MailboxSettings.Read" in out and "User.Read.All" not in out
    assert "prerequisite" not in out


def test_permissions_with_no_graph_tier_and_unknown_probes(capsys, tmp_path):
    text = Path(CONTOSO).read_text()
    no_graph = tmp_path / "t.yaml"
    no_graph.write_text(text[:text.index("    graph:")])
    code, out, _ = run(capsys, "permissions", "--topology", str(no_graph))
    assert (code, out) == (0, "No planned probe needs an API permission for this topology.\n")
    code, _, err = run(capsys, "permissions", "--topology", CONTOSO, "--probe", "exo.nope")
    assert code == 2 and "unknown probe exo.nope" in err


@pytest.mark.parametrize("since", ["0h", "31d", "24", "h", "-1h", "1w"])
def test_since_must_be_a_positive_age_of_at_most_thirty_days(capsys, since):
    code, _, err = run(capsys, "demo", "healthy", f"--since={since}")
    assert code == 2 and "--since" in err


def test_demo_takes_since(capsys):
    # the lab's quarantined message was received 3 h ago: outside a 90-minute window
    code, out, _ = run(capsys, "demo", "exo-trace-quarantined", "--since", "90m",
                       "--format", "json")
    doc = json.loads(out)
    assert (code, doc["verdict"]["status"]) == (0, "healthy")
    [f] = [f for t in doc["tiers"] for f in t["findings"] if f["tag"] == "EXO_TRACE_NO_MESSAGES"]
    assert f["args"]["window"] == "1.5 h"
    code, out, _ = run(capsys, "demo", "exo-trace-quarantined", "--since", "4h",
                       "--format", "json")
    assert (code, json.loads(out)["verdict"]["tag"]) == (1, "EXO_TRACE_QUARANTINED")
