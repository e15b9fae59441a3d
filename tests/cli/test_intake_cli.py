"""`mailtrace ndr` and `mailtrace headers`: exit codes, the JSON contracts, stdin, and
--triage against the embedded lab (a bounce from the contoso lab world)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from unittest import mock

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.cli import main
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.usecases.demo import lab_options
from tests.support.evidence_util import CORPUS, ROOT

CONTOSO = str(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")
NDR = CORPUS / "ndr"
BOUNCES = ROOT / "tests" / "data" / "bounces" / "samples"
HEADERS = CORPUS / "headers"

FINDING = {
    "type": "object",
    "required": ["tag", "level", "probe", "args", "message", "evidence", "remediation"],
}
NDR_SCHEMA = {
    "type": "object",
    "required": ["schema", "recipients"],
    "properties": {
        "schema": {"const": "mailtrace/ndr-1"},
        "recipients": {"type": "array", "items": {
            "type": "object",
            "required": ["address", "action", "status", "diagnostic", "reporting_mta",
                         "remote_mta", "tier", "tag"],
            "properties": {"tier": {"type": ["string", "null"]}, "tag": {"type": "string"}},
        }},
    },
}
HEADERS_SCHEMA = {
    "type": "object",
    "required": ["schema", "hops", "bypassed_gateway", "findings"],
    "properties": {
        "schema": {"const": "mailtrace/headers-1"},
        "hops": {"type": "array", "items": {
            "type": "object", "required": ["from", "by", "at", "delay_s", "tier"],
            "properties": {"tier": {"type": ["string", "null"]},
                           "delay_s": {"type": ["number", "null"]},
                           "at": {"type": ["string", "null"]}},
        }},
        "bypassed_gateway": {"type": "boolean"},
        "findings": {"type": "array", "items": FINDING},
    },
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ndr_json_contract_and_exit_1(capsys):
    code, out, err = run(capsys, "ndr", str(NDR / "pod-dbeb-5.4.1.eml"),
                         "--topology", CONTOSO, "--format", "json")
    assert code == 1 and err == ""
    data = json.loads(out)
    jsonschema.validate(data, NDR_SCHEMA)
    r = data["recipients"][0]
    assert (r["address"], r["status"], r["tier"], r["tag"]) == (
        "frank@contoso.com", "5.4.1", "exchange-online", "NDR_EXO_RECIPIENT_NOT_IN_DIRECTORY")
    assert r["reporting_mta"] == "mx0a-001234.pphosted.com"
    assert r["remote_mta"] == "contoso-com.mail.protection.outlook.com"
    assert r["finding"]["remediation"]["checked"] == "2026-11-29"


def test_ndr_text_names_the_tier_and_the_fix(capsys):
    code, out, _ = run(capsys, "ndr", str(NDR / "exo-5.7.51-direct-to-tenant.eml"),
                       "--topology", CONTOSO)
    assert code == 1
    assert "NDR_EXO_CONNECTOR_RESTRICTED" in out and "tier: exchange-online" in out
    assert "Get-InboundConnector" in out


def test_ndr_of_a_delivery_receipt_exits_0(capsys, tmp_path):
    receipt = tmp_path / "ok.eml"
    receipt.write_text(
        "From: postmaster@relay.example\nSubject: Delivered\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n'
        "--x\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example\n\n"
        "Final-Recipient: rfc822;alice@contoso.com\nAction: delivered\nStatus: 2.0.0\n\n--x--\n")
    code, out, _ = run(capsys, "ndr", str(receipt), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [(r["tag"], r["tier"]) for r in data["recipients"]] == [("NDR_DELIVERED", None)]


def test_ndr_from_stdin(capsys, monkeypatch):
    text = (NDR / "postfix-dns-pasted.txt").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    code, out, _ = run(capsys, "ndr", "-", "--topology", CONTOSO, "--format", "json")
    assert code == 1
    r = json.loads(out)["recipients"][0]
    assert (r["tier"], r["tag"]) == ("public-dns", "NDR_DESTINATION_NOT_RESOLVABLE")


def test_headers_json_contract_and_bypass_exit_1(capsys):
    code, out, err = run(capsys, "headers", str(HEADERS / "contoso-bypass-from-another-tenant.eml"),
                         "--topology", CONTOSO, "--format", "json")
    assert code == 1 and err == ""
    data = json.loads(out)
    jsonschema.validate(data, HEADERS_SCHEMA)
    assert data["bypassed_gateway"] is True
    assert [h["tier"] for h in data["hops"]] == [
        None, "exchange-online", "exchange-online", "exchange-online"]
    assert data["hops"][1]["at"] == "2026-11-29T11:00:01Z" and data["hops"][1]["delay_s"] == 2.0
    bypass = next(f for f in data["findings"] if f["tag"] == "HDR_GATEWAY_BYPASSED")
    assert bypass["args"]["gateway"] == "proofpoint" and bypass["remediation"] is not None


def test_headers_text_timeline_from_stdin(capsys, monkeypatch):
    data = (HEADERS / "contoso-via-pod.eml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "headers", "-", "--topology", CONTOSO, "--slow-hop", "1000")
    assert code == 0
    assert "gateway bypassed: no" in out and "HDR_HOP_SLOW" not in out
    assert "pss/filter?guid=KD6IFI7IWs3ly7cAUhb6pCs4hwd1-ZBO" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["ndr", "/nonexistent/bounce.eml"], "no such file"),
    (["headers", "/nonexistent/h.eml"], "no such file"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--triage"], "--triage needs --topology"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--resolver", "127.0.0.1"], "only apply with"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--ca-file", "x.pem"], "only apply with"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--topology", CONTOSO, "--triage",
      "--resolver", "127.0.0.1", "--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--topology", CONTOSO, "--triage",
      "--resolver", "127.0.0.1", "--helo", "bad name\r\nQUIT"], "not a host name"),
    (["ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--topology", "/nonexistent/t.yaml"],
     "no such file"),
    (["ndr", str(HEADERS / "no-received.txt")], "no delivery status"),
    (["headers", str(ROOT / "pyproject.toml")], "no message header"),
    (["headers", str(HEADERS / "no-received.txt"), "--slow-hop", "0"], "--slow-hop"),
    (["ndr", str(NDR / "postfix-dns-pasted.txt"), "--topology",
      str(ROOT / "topologies" / "fabrikam-essentials-exo.yaml"), "--triage",
      "--resolver", "127.0.0.1"], "nothing to triage"),
])
def test_usage_errors_are_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailtrace: error: ") and needle in lines[0]


def test_binary_file_is_a_usage_error(capsys, tmp_path):
    blob = tmp_path / "x.msg"
    blob.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)))
    code, _, err = run(capsys, "ndr", str(blob))
    assert code == 2 and "Outlook .msg" in err


def test_output_file(capsys, tmp_path):
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "headers", str(HEADERS / "fabrikam-via-essentials.eml"),
                       "--format", "json", "--output", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["schema"] == "mailtrace/headers-1"


def _dsn(status: str, remote: str, diagnostic: str) -> str:
    """A sender's Postfix reporting what one of contoso's servers answered."""
    return (
        "From: MAILER-DAEMON@mail.tailspin.example\nSubject: Undelivered Mail\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; '
        'boundary="b"\n\n--b\nContent-Type: message/delivery-status\n\n'
        "Reporting-MTA: dns; mail.tailspin.example\n\nFinal-Recipient: rfc822; "
        f"alice@contoso.com\nAction: failed\nStatus: {status}\nRemote-MTA: dns; {remote}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n\n--b--\n")


def test_ndr_json_keeps_every_code_and_names_the_one_that_explains(capsys, tmp_path):
    bounce = tmp_path / "b.eml"
    bounce.write_text(_dsn("5.1.1", "mx0a-001234.pphosted.com",
                           "550 5.7.1 Service unavailable; client [192.0.2.9] blocked using "
                           "Proofpoint Dynamic Reputation"))
    code, out, _ = run(capsys, "ndr", str(bounce), "--topology", CONTOSO, "--format", "json")
    assert code == 1
    r = json.loads(out)["recipients"][0]
    assert (r["status"], r["tag"], r["tier"]) == (
        "5.7.1", "NDR_PROOFPOINT_DYNAMIC_REPUTATION", "proofpoint")
    assert [(c["code"], c["source"], c["chosen"]) for c in r["codes"]] == [
        ("5.1.1", "status", False), ("5.7.1", "reply", True)]
    assert r["status_inferred"] is False


def test_a_proofpoint_5_1_1_gets_the_triages_advice_for_the_same_fault(capsys, tmp_path):
    """Triage calls this PP_RECIPIENT_UNKNOWN: Proofpoint's user list, not the tenant."""
    from mailtrace.core import catalog

    bounce = tmp_path / "b.eml"
    bounce.write_text(_dsn("5.1.1", "mx0a-001234.pphosted.com",
                           "550 5.1.1 <alice@contoso.com>... User unknown"))
    code, out, _ = run(capsys, "ndr", str(bounce), "--topology", CONTOSO, "--format", "json")
    assert code == 1
    r = json.loads(out)["recipients"][0]
    assert (r["tag"], r["tier"], r["advice"]) == (
        "NDR_RECIPIENT_UNKNOWN", "proofpoint", "PP_RECIPIENT_UNKNOWN")
    expected = catalog.info("PP_RECIPIENT_UNKNOWN").remediation
    assert expected is not None
    assert r["finding"]["remediation"]["templates"] == list(expected.commands)
    assert r["finding"]["remediation"]["commands"][0].startswith(
        "Get-EXORecipient -Identity alice@contoso.com ")
    _, text, _ = run(capsys, "ndr", str(bounce), "--topology", CONTOSO)
    assert "SMTP Discovery" in text and "alice@contoso.com" in text


def test_a_code_inferred_from_the_words_is_marked(capsys):
    code, out, _ = run(capsys, "ndr", str(NDR / "postfix-dns-pasted.txt"), "--format", "json")
    assert code == 1
    r = json.loads(out)["recipients"][0]
    assert (r["status"], r["status_inferred"]) == ("5.4.4", True)
    assert r["codes"] == [{"code": "5.4.4", "source": "phrase", "inferred": True,
                           "chosen": True}]


def test_an_mbox_is_read_message_by_message_with_all(capsys):
    mbox = str(BOUNCES / "rhost-cox-01.eml")
    code, out, _ = run(capsys, "ndr", mbox, "--format", "json")
    data = json.loads(out)
    assert code == 1 and len(data["recipients"]) == 1
    assert any("2 messages" in n and "--all" in n for n in data["notes"])
    code, out, _ = run(capsys, "ndr", mbox, "--all", "--format", "json")
    data = json.loads(out)
    jsonschema.validate(data, NDR_SCHEMA)
    assert [(r["address"], r["message"]) for r in data["recipients"]] == [
        ("recipient55@cox.net", 1), ("recipient55@cox.net", 2)]
    assert [m["recipients"] for m in data["messages"]] == [1, 1]
    code, text, _ = run(capsys, "ndr", mbox, "--all")
    assert "message 2 of 2" in text


@pytest.mark.parametrize(("sample", "needle"), [
    ("arf-01.eml", "spam complaint"),
    ("lhost-amazonses-11.eml", "spam complaint"),
    ("rfc3834-01.eml", "automatic reply"),
])
def test_a_complaint_or_an_auto_reply_is_named_and_exits_2(capsys, sample, needle):
    code, out, err = run(capsys, "ndr", str(BOUNCES / sample))
    assert code == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1


# --- --triage against the embedded lab -------------------------------------------------------

@contextlib.contextmanager
def lab_in_thread(name: str) -> Iterator[Lab]:
    """The lab on its own event loop in a thread, so the CLI can run its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    lab = Lab(scenarios.get(name))
    try:
        asyncio.run_coroutine_threadsafe(lab.__aenter__(), loop).result(20)
        yield lab
    finally:
        asyncio.run_coroutine_threadsafe(lab.__aexit__(None, None, None), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def lab_flags(lab: Lab) -> list[str]:
    """--resolver, --connect-to and --ca-file that reach only this lab (lab_options(lab))."""
    options = lab_options(lab)
    flags = [arg for r in options.resolvers for arg in ("--resolver", f"{r.address}:{r.port}")]
    flags += [arg for c in options.connect_to for arg in ("--connect-to", str(c))]
    if options.ca_file is not None:
        flags += ["--ca-file", str(options.ca_file)]
    return flags


def _triage(capsys, scenario: str, bounce: str) -> tuple[int, dict]:
    """ndr --triage as an admin runs it, with the lab's API credentials in the
    environment (the stand-ins accept only this lab run's throwaway values)."""
    with lab_in_thread(scenario) as lab, mock.patch.dict(os.environ, lab.environ):
        code, out, err = run(capsys, "ndr", str(NDR / bounce), "--topology",
                             str(lab.topology_path), "--triage", *lab_flags(lab),
                             "--timeout", "20", "--format", "json")
    assert err == ""
    return code, json.loads(out)


def _verdict(data: dict) -> tuple:
    v = data["triage"]["report"]["verdict"]
    return (v["status"], v["tier"], v["tag"])


def test_triage_agrees_with_a_dns_bounce(capsys):
    code, data = _triage(capsys, "mx-missing", "postfix-dns-pasted.txt")
    assert code == 1
    assert data["named"] == {"tier": "public-dns", "tag": "NDR_DESTINATION_NOT_RESOLVABLE",
                             "address": "alice@contoso.com"}
    assert _verdict(data) == ("fault", "public-dns", "DNS_MX_MISSING")
    assert data["triage"]["agreement"] == "agrees"


def test_triage_finds_the_cause_upstream_of_the_connector_bounce(capsys):
    """Exchange Online refused mail that skipped the gateway (5.7.51); the cause is the
    MX pointing straight at Exchange Online, upstream in the flow."""
    code, data = _triage(capsys, "mx-bypasses-gateway", "exo-5.7.51-direct-to-tenant.eml")
    assert code == 1
    assert data["named"]["tier"] == "exchange-online"
    assert _verdict(data) == ("fault", "public-dns", "DNS_MX_BYPASSES_GATEWAY")
    assert data["triage"]["agreement"] == "upstream"


def test_triage_of_a_directory_bounce_in_a_healthy_world(capsys):
    code, data = _triage(capsys, "healthy", "exo-5.1.10-pasted.txt")
    assert code == 0
    assert _verdict(data) == ("healthy", None, None)
    assert data["triage"]["agreement"] == "no-fault-found"
    assert data["recipients"][0]["tag"] == "NDR_EXO_RECIPIENT_NOT_FOUND"


def test_triage_text_shows_the_ndr_tier_next_to_the_verdict(capsys):
    with lab_in_thread("mx-missing") as lab:
        code, out, _ = run(capsys, "ndr", str(NDR / "postfix-dns-pasted.txt"), "--topology",
                           str(lab.topology_path), "--triage", *lab_flags(lab),
                           "--timeout", "20")
    assert code == 1
    assert "VERDICT: FAULT at public-dns" in out
    assert "NDR vs triage: AGREES" in out


def test_triage_follows_the_bounced_message_through_the_lab_file(capsys, tmp_path):
    """The bounce returns the message's header section: the triage follows that message
    (its Message-ID and sender), and --lab-file brings the lab's resolver, CA,
    credentials and DNSSEC trust anchor as it does for triage."""
    from mailtrace.lab import labfile

    with lab_in_thread("pp-onward-deferred") as lab:
        lab_file = tmp_path / "lab.yaml"
        labfile.write(lab.access(), lab_file)
        code, out, err = run(capsys, "ndr", str(NDR / "pod-delayed-4.7.500-returned.eml"),
                             "--topology", str(lab.topology_path), "--triage",
                             "--lab-file", str(lab_file), "--timeout", "20",
                             "--format", "json")
    assert err == ""
    data = json.loads(out)
    wanted = "<lab.fd47280a4072@fabrikam.example>"
    assert data["original"]["message_id"] == wanted
    report = data["triage"]["report"]
    assert (report["target"]["message_id"], report["target"]["from"]) == (
        wanted, "carol@fabrikam.example")
    assert {step["message_id"] for step in report["journey"]} == {wanted}
    assert _verdict(data) == ("degraded", "exchange-online", "PP_ONWARD_DELIVERY_DEFERRED")
    assert data["triage"]["agreement"] == "agrees"
    tags = {f["tag"] for t in report["tiers"] for f in t["findings"]}
    assert "DNSSEC_TRUST_ANCHOR_MISMATCH" not in tags and "DNSSEC_SIGNED" in tags
    assert code == 1


def test_ndr_json_fills_the_fix_in_as_the_text_does(capsys):
    code, out, _ = run(capsys, "ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--topology", CONTOSO,
                       "--format", "json")
    remediation = json.loads(out)["recipients"][0]["finding"]["remediation"]
    assert code == 1
    assert remediation["commands"][0].startswith("Get-EXORecipient -Identity frank@contoso.com ")
    assert remediation["templates"][0].startswith("Get-EXORecipient -Identity <recipient> ")
    code, out, _ = run(capsys, "ndr", str(NDR / "pod-dbeb-5.4.1.eml"), "--topology", CONTOSO)
    assert remediation["commands"][0] in out


@pytest.mark.parametrize("flag", [["--lab-file", "lab.yaml"], ["--trust-anchor", "root.ds"]])
def test_network_flags_of_ndr_need_triage(capsys, flag):
    code, out, err = run(capsys, "ndr", str(NDR / "pod-dbeb-5.4.1.eml"), *flag)
    assert code == 2 and out == "" and flag[0] in err and "only apply with --triage" in err


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), command=st.sampled_from(["ndr", "headers"]))
def test_any_file_gives_exit_0_1_or_2_never_an_internal_error(tmp_path, capsys, data, command):
    path = tmp_path / "input.eml"
    path.write_bytes(data)
    code, _, err = run(capsys, command, str(path), "--topology", CONTOSO)
    assert code in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err
