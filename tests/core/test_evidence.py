"""Evidence is typed: each kind has its JSON form and its text, and no report guesses."""

from __future__ import annotations

import json

from mailtrace.core.evidence import ApiCall, DnsAnswer, Observed, SmtpDialogue

DNS = DnsAnswer("ns1.contoso.com 127.0.0.1:53", "authoritative", "contoso.com. MX", "ANSWER",
                "NOERROR", ("AA",), "udp",
                ({"name": "contoso.com.", "ttl": 300, "type": "MX",
                  "data": "10 mx0a-001234.pphosted.com."},), 4.25,
                connected_to="127.0.0.1:5353")


def test_a_dns_answer_keeps_the_json_shape_and_reads_like_dig():
    data = DNS.as_json()
    assert (data["server"], data["outcome"], data["flags"], data["elapsed_ms"]) == (
        "ns1.contoso.com 127.0.0.1:53", "ANSWER", ["AA"], 4.2)
    assert "attempts" not in data and "error" not in data  # only what was seen
    head, record = DNS.lines()
    assert "via 127.0.0.1:5353" in head and "contoso.com. MX → ANSWER" in head
    assert record.strip() == "contoso.com. 300 MX 10 mx0a-001234.pphosted.com."
    assert DNS["rcode"] == "NOERROR"  # read like the JSON


def test_an_smtp_transcript_folds_multi_line_replies_unless_verbose():
    transcript = ("   1.0 ms S: 220 mx.example ESMTP", "   2.0 ms C: EHLO probe",
                  "   3.0 ms S: 250-mx.example", "   3.0 ms S: 250-PIPELINING",
                  "   3.0 ms S: 250-STARTTLS", "   3.1 ms S: 250 SIZE")
    dialogue = SmtpDialogue("mx.example [127.0.0.1]:25", "127.0.0.1:2525", "completed",
                            "rcpt", transcript)
    assert len(dialogue.lines(verbose=True)) == 7
    assert any("2 more reply lines" in line for line in dialogue.lines())
    assert dialogue.as_json()["transcript"] == list(transcript)


def test_a_short_transcript_keeps_the_tls_events_and_the_deciding_exchange():
    transcript = ("   1.0 ms -: connected to 127.0.0.1:25", "   2.0 ms S: 220 mx.example ESMTP",
                  "   3.0 ms C: EHLO probe", "   4.0 ms S: 250 STARTTLS",
                  "   5.0 ms C: STARTTLS", "   6.0 ms S: 220 go ahead",
                  "   7.0 ms -: TLS established: TLSv1.3", "   8.0 ms C: EHLO probe",
                  "   9.0 ms S: 250 OK", "  10.0 ms C: MAIL FROM:<>", "  11.0 ms S: 250 OK",
                  "  12.0 ms C: RCPT TO:<a@example>", "  13.0 ms S: 550 5.1.1 unknown",
                  "  14.0 ms C: QUIT", "  15.0 ms S: 221 bye")
    dialogue = SmtpDialogue("mx.example [127.0.0.1]:25", "127.0.0.1:25", "completed",
                            "rcpt", transcript)
    short = [line.split(" ms ", 1)[-1] for line in dialogue.lines()[1:]]
    assert short == ["S: 220 mx.example ESMTP",
                     "-: TLS established: TLSv1.3", "C: RCPT TO:<a@example>",
                     "S: 550 5.1.1 unknown", "    … 11 more lines of the dialogue (--verbose)"]
    banner_only = SmtpDialogue("mx.example [127.0.0.1]:25", "127.0.0.1:25", "timeout",
                               "banner", ("   1.0 ms -: connected to 127.0.0.1:25",))
    assert banner_only.lines()[1:] == ["     1.0 ms -: connected to 127.0.0.1:25"]


def test_records_are_shown_as_json_never_as_python_reprs():
    call = ApiCall("GET /v1.0/users?$filter=x", 200, "microsoft-graph", "list users",
                   12.0, {"request_id": "r1"},
                   {"found": [{"kind": "user", "id": "u1", "enabled": True}]})
    text = "\n".join([*call.lines(), *Observed({"policy": {"mode": "enforce"}}).lines()])
    assert "{'" not in text and "True" not in text
    assert '"enabled": true' in text and '"mode": "enforce"' in text
    assert json.loads(json.dumps(call.as_json()))["found"][0]["id"] == "u1"
    assert list(call.as_json())[:4] == ["api", "call", "request", "status"]
