"""The command line: contracts, exit codes, and bad input as one clear line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from mailtrace.cli import main
from tests.support.paths import ROOT

CONTOSO = str(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")
BAD = ROOT / "tests" / "data" / "topologies"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailtrace: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(("argv", "needles"), [
    (["--topology", "/nonexistent/t.yaml", "--recipient", "a@contoso.com"], ["no such file"]),
    (["--topology", str(BAD / "syntax-error.yaml"), "--recipient", "a@contoso.com"],
     ["syntax-error.yaml:"]),
    (["--topology", str(BAD / "duplicate-tier.yaml"), "--recipient", "a@contoso.com"],
     ["duplicate key"]),
    (["--topology", str(BAD / "wrong-type.yaml"), "--recipient", "a@contoso.com"],
     ["wrong-type.yaml:"]),
    (["--topology", CONTOSO, "--recipient", "alice"], ["invalid recipient"]),
    (["--topology", CONTOSO, "--recipient", "alice@contoso.com\r\nRCPT TO:<x@y>"],
     ["invalid recipient"]),
    (["--topology", CONTOSO, "--recipient", "alïce@contoso.com"], ["invalid recipient"]),
    (["--topology", CONTOSO, "--recipient", "alice@fabrikam.com"], ["not a domain of topology"]),
    (["--topology", CONTOSO, "--domain", "contoso..com"], ["invalid domain"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "1.2.3"],
     ["--resolver 1.2.3"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "dns.google"],
     ["not an IPv4 or IPv6 address"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1:99999"],
     ["port"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--connect-to", "ns1:53:127.0.0.1"],
     ["--connect-to"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--connect-to", "a:b:c:d"],
     ["--connect-to"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--timeout", "0"], ["--timeout"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--mail-from", "probe@contoso.com\r\nDATA"], ["invalid address"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--mail-from", "prøbe@contoso.com"], ["invalid address"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--helo", "probe.contoso.com\r\nRCPT TO:<x@y>"], ["not a host name"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--smtp-reference", "mx.example.net:99999"], ["port"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--smtp-reference", "mx example net"], ["not a host name"]),
    (["--topology", CONTOSO, "--recipient", "a@contoso.com", "--resolver", "127.0.0.1",
      "--ca-file", "/nonexistent/ca.pem"], ["--ca-file"]),
])
def test_bad_triage_input_is_one_line_and_exit_2(capsys, argv, needles):
    code, out, err = run(capsys, "triage", *argv)
    assert_usage_error(code, err, *needles)
    assert out == ""


def test_bad_topology_error_names_line_and_column(capsys):
    code, _, err = run(capsys, "graph", "--topology", str(BAD / "missing-field.yaml"))
    assert_usage_error(code, err)
    location = err.split(": ")[2]  # "mailtrace: error: FILE:LINE:COL: message"
    _, line, column = location.rsplit(":", 2)
    assert line.isdigit() and column.isdigit()


def test_every_problem_of_a_topology_is_one_line_each(capsys):
    # "mailtrace: error: " opens the first; each line is FILE:LINE:COL: message.
    path = str(BAD / "several-errors.yaml")
    code, _, err = run(capsys, "graph", "--topology", path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 4 and "Traceback" not in err
    assert lines[0].startswith(f"mailtrace: error: {path}:2:24: ")
    assert [line.split(": ")[0] for line in lines[1:]] == [
        f"{path}:10:14", f"{path}:11:5", f"{path}:12:3"]


def test_unknown_demo_scenario(capsys):
    code, _, err = run(capsys, "demo", "no-such-scenario")
    assert_usage_error(code, err, "no-such-scenario")


def test_demo_json_contract_and_exit_code(capsys):
    code, out, _ = run(capsys, "demo", "mx-missing", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "mailtrace/triage-1"
    assert doc["topology"] == "contoso"
    assert doc["target"] == {"recipient": "alice@contoso.com", "domain": "contoso.com",
                             "from": None, "message_id": None, "subject": None}
    v = doc["verdict"]
    assert (v["status"], v["tier"], v["tag"]) == ("fault", "public-dns", "DNS_MX_MISSING")
    assert (doc["strict"], doc["exit_code"]) == (None, 1)
    assert [t["id"] for t in doc["tiers"]] == [
        "observer", "public-dns", "proofpoint", "exchange-online"]
    dns = doc["tiers"][1]
    assert dns["status"] == "fail"
    mx = next(f for f in dns["findings"] if f["tag"] == "DNS_MX_MISSING")
    assert set(mx) >= {"tag", "level", "probe", "args", "message", "evidence", "remediation"}
    assert mx["level"] == "critical" and mx["probe"] == "dns.mx"
    assert mx["remediation"]["checked"] and mx["remediation"]["commands"]
    # the commands filled in as the text report shows them; the catalog's templates kept
    assert mx["remediation"]["commands"][0] == "Resolve-DnsName -Name contoso.com -Type MX -DnsOnly"
    assert mx["remediation"]["templates"][0] == "Resolve-DnsName -Name <domain> -Type MX -DnsOnly"
    # remediation only for the localized tier's failing findings
    others = [f for t in doc["tiers"] for f in t["findings"] if f["tag"] != "DNS_MX_MISSING"]
    assert all(f["remediation"] is None for f in others)
    # The gateway itself works (its hosts answer over SMTP, its API shows mail delivered):
    # the fault is DNS.
    assert doc["tiers"][2]["status"] == "pass"
    assert isinstance(doc["elapsed_ms"], float | int)


def test_demo_text_localizes_and_fixes_one_tier(capsys):
    code, out, _ = run(capsys, "demo", "mx-bypasses-gateway")
    assert code == 1
    assert "VERDICT: FAULT at public-dns  [DNS_MX_BYPASSES_GATEWAY]" in out
    assert "Fix for public-dns" in out
    assert "\x1b[" not in out  # not a terminal: no colour
    assert "contoso-com.mail.protection.outlook.com" in out


def test_inconclusive_demo_exits_3(capsys):
    code, out, _ = run(capsys, "demo", "observer-resolver-dead", "--format", "json",
                       "--timeout", "10")
    assert code == 3
    assert json.loads(out)["verdict"]["tier"] == "observer"


def test_healthy_demo_exits_0_and_strict_exits_3(capsys, tmp_path, monkeypatch):
    code, out, _ = run(capsys, "demo", "healthy", "--output", str(tmp_path / "r.json"),
                       "--format", "json")
    assert (code, out) == (0, "")
    assert json.loads((tmp_path / "r.json").read_text())["verdict"]["status"] == "healthy"
    code, _, _ = run(capsys, "demo", "healthy", "--strict", "--format", "json")
    assert code == 0  # every tier was tested
    # a tier tested in part (here TAP, threat-only, could not run) is listed; the verdict
    # stays healthy, but --strict will not call that healthy
    import dataclasses

    from mailtrace.probes import registry as probes
    from mailtrace.probes.base import NotTested

    async def off(ctx):
        raise NotTested("TAP is off in this test")

    monkeypatch.setattr(probes, "TRIAGE", tuple(
        dataclasses.replace(p, collect=off) if p.id == "proofpoint.tap" else p
        for p in probes.TRIAGE))
    code, out, _ = run(capsys, "demo", "healthy", "--format", "json")
    [entry] = json.loads(out)["verdict"]["not_tested"]
    assert (code, entry["tier"], entry["status"]) == (0, "proofpoint", "partly_tested")
    code, _, _ = run(capsys, "demo", "healthy", "--strict", "--format", "json")
    assert code == 3
    # a tier no probe can test, on every path, is not healthy even without --strict
    monkeypatch.setattr(probes, "TRIAGE", tuple(p for p in probes.TRIAGE
                                             if "exchange-online" not in p.kinds))
    code, out, _ = run(capsys, "demo", "healthy", "--format", "json")
    verdict = json.loads(out)["verdict"]
    assert (code, verdict["status"], verdict["tier"]) == (3, "inconclusive", "exchange-online")
    # a fault keeps its own exit code under --strict
    code, _, _ = run(capsys, "demo", "mx-missing", "--strict", "--format", "json")
    assert code == 1


def test_html_report_is_self_contained(capsys):
    code, out, _ = run(capsys, "demo", "stale-ns", "--format", "html")
    assert code == 1
    assert out.startswith("<!doctype html>") and "DNS_NS_STALE" in out and "<script" not in out


def test_verbose_shows_per_probe_timings(capsys):
    _, out, _ = run(capsys, "demo", "healthy", "--verbose")
    assert "Timings" in out and "public-dns/dns.mx" in out and "observer/dns.observer" in out


def test_a_console_that_cannot_show_unicode_gets_ascii_not_a_crash():
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run([sys.executable, "-m", "mailtrace", "demo", "mx-missing"], env=env,
                          capture_output=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    out = done.stdout.decode("cp1252")
    assert "VERDICT: FAULT at public-dns  [DNS_MX_MISSING]" in out
    assert "public-dns -> proofpoint -> exchange-online" in out


def test_unwritable_output_is_refused_before_the_run(capsys, tmp_path):
    started = time.monotonic()
    code, _, err = run(capsys, "demo", "observer-resolver-dead", "--output",
                       str(tmp_path / "missing-dir" / "r.json"))
    assert_usage_error(code, err, "cannot write")
    assert time.monotonic() - started < 2  # the 4 s observer wait never started


def test_lab_duration_must_be_positive(capsys):
    for value in ("-5", "0", "nan", "inf"):
        code, _, err = run(capsys, "lab", "--for", value)
        assert_usage_error(code, err, "--for")


def test_remediation_commands_never_carry_names_with_shell_characters():
    from mailtrace.core.findings import Finding
    from mailtrace.report.remediation import fill, values

    hostile = Finding("DNS_NS_STALE", {"ns": "a|iex`x.com", "zone": "contoso.com"})
    command = "Resolve-DnsName -Name <zone> -Server <ns>"
    assert fill(command, values(hostile, "contoso.com")) == \
        "Resolve-DnsName -Name contoso.com -Server <ns>"
    plain = Finding("DNS_NS_STALE", {"ns": "ns2.contoso.com"})
    assert "-Server ns2.contoso.com" in fill(command, values(plain, "contoso.com"))
    # the same rule for every report: the ndr and headers fixes go through it too
    assert fill("Get-EXORecipient -Identity <address>", {"address": "a;rm@x.com"}) == \
        "Get-EXORecipient -Identity <address>"


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    import io

    from mailtrace.report import text

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert text.use_colour(Tty())
    assert not text.use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not count
    assert text.use_colour(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not text.use_colour(Tty())


def test_demo_list(capsys):
    code, out, _ = run(capsys, "demo", "--list")
    assert code == 0
    for name in ("healthy", "mx-missing", "mx-bypasses-gateway", "mx-target-unresolvable",
                 "stale-ns", "all-ns-servfail", "observer-resolver-dead"):
        assert name in out


def test_probes_lists_the_catalog(capsys):
    code, out, _ = run(capsys, "probes")
    assert code == 0
    assert "dns.mx" in out and "DNS_MX_MISSING" in out and "critical" in out


def test_schema_is_json_schema(capsys):
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and "$schema" in schema and "tiers" in schema["properties"]


@pytest.mark.parametrize("fmt", ["text", "dot", "svg"])
def test_graph_formats(capsys, fmt):
    code, out, _ = run(capsys, "graph", "--topology", CONTOSO, "--format", fmt)
    assert code == 0 and "proofpoint" in out


def test_lab_stops_quietly_with_a_client_still_connected():
    import socket

    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", "healthy", "--for", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while "resolver:" not in line:
        line = proc.stdout.readline()
    port = int(line.split("resolver: ")[1].split()[0].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)):  # an idle TCP client
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err and "CancelledError" not in err


def test_lab_prints_how_to_reach_it():
    done = subprocess.run([sys.executable, "-m", "mailtrace", "lab", "stale-ns", "--for", "0.2"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "resolver: 127.0.0.1:" in done.stdout
    assert "dig @127.0.0.1 -p" in done.stdout
    # One flag instead of twenty --connect-to: the lab file, gone once the lab stops.
    command = next(line for line in done.stdout.splitlines() if "mailtrace triage" in line)
    lab_file = command.split("--lab-file ")[1].split()[0]
    assert "--connect-to" not in command
    assert not os.path.exists(lab_file)


def test_no_command_prints_help_and_exit_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "triage" in out


def test_internal_error_is_one_line_exit_4(capsys, monkeypatch):
    from mailtrace.cli import catalog

    def boom(args):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(catalog, "cmd_probes", boom)
    monkeypatch.delenv("MAILTRACE_DEBUG", raising=False)
    code, _, err = run(capsys, "probes")
    assert code == 4 and "internal error" in err and "Traceback" not in err


def test_help_is_fast():
    """Start-up budget is measured in the benchmark; this only guards against a heavy
    import creeping into the CLI's module level."""
    code = ("import sys, mailtrace.cli; "
            "heavy = [m for m in ('pydantic', 'dns.asyncquery', 'networkx', 'yaml') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)
    assert done.stdout.strip() == "[]"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "mailtrace", "--help"], capture_output=True,
                   timeout=30, cwd=ROOT, check=True)
    assert time.monotonic() - started < 5


EVIDENCE = ROOT / "tests" / "data" / "evidence"
#: What only a triage (or the lab) needs: the Graph SDK and its HTTP stack, the lab, and
#: the network stacks of the DNS, SMTP and gateway clients.
NETWORK_STACKS = ("msgraph", "kiota_", "azure", "httpx", "mailtrace.lab", "dns", "requests",
                  "cryptography")


@pytest.mark.parametrize("argv", [
    ["probes"], ["schema"], ["graph", "--topology", CONTOSO],
    ["ndr", str(EVIDENCE / "ndr" / "pod-dbeb-5.4.1.eml"), "--topology", CONTOSO],
    ["headers", str(EVIDENCE / "headers" / "contoso-via-pod.eml"), "--topology", CONTOSO],
], ids=lambda argv: argv[0])
def test_commands_that_ask_no_network_load_no_network_stack(argv):
    """Start-up time is the benchmark's (benchmarks/bench_process.py); this keeps the
    Graph SDK, the lab and the network clients' libraries out of these commands."""
    code = ("import sys, contextlib, io\n"
            "from mailtrace.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(sys.argv[1:])\n"
            f"print(sorted(m for m in sys.modules if m.startswith({NETWORK_STACKS!r})))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_fleet_without_a_scheduler_never_loads_dask(tmp_path):
    """verify --domains runs in-process unless --scheduler names a cluster: Dask is the
    optional fleet extra, and costs a fleet on one machine nothing."""
    listed = tmp_path / "domains.txt"
    listed.write_text("not_a_domain\n", encoding="utf-8")
    code = ("import sys, contextlib, io\n"
            "from mailtrace.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    code = main(sys.argv[1:])\n"
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code, "verify", "--domains", str(listed),
                           "--topology", CONTOSO, "--resolver", "127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip() == "3 []", done.stdout + done.stderr


def test_version_names_the_distribution(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("mailtrace-diagnostics ")


@pytest.mark.parametrize(("flags", "needle"), [
    (["--from", "carol@fabrikam.example\r\nRCPT TO:<x@y>"], "invalid address"),
    (["--from", "fabrikam..example"], "invalid domain"),
    (["--message-id", "<a@b>\nBcc: x@y"], "--message-id"),
    (["--subject", "Invoice\x00"], "--subject"),
    (["--subject", "x" * 300], "--subject"),
])
def test_the_keys_of_a_message_are_refused_with_control_characters(capsys, flags, needle):
    code, _, err = run(capsys, "triage", "--topology", CONTOSO, "--recipient",
                       "alice@contoso.com", "--resolver", "127.0.0.1:9", *flags)
    assert_usage_error(code, err, needle)


def test_following_a_message_needs_a_recipient(capsys):
    code, _, err = run(capsys, "triage", "--topology", CONTOSO, "--domain", "contoso.com",
                       "--resolver", "127.0.0.1:9", "--from", "carol@fabrikam.example")
    assert_usage_error(code, err, "--recipient")


def test_strict_says_why_a_healthy_verdict_exits_3(capsys):
    """--strict turns a healthy verdict with a tier not tested into exit 3: the report
    says so (the verdict itself is unchanged)."""
    code, out, _ = run(capsys, "demo", "exo-graph-throttled", "--strict", "--format", "json")
    doc = json.loads(out)
    assert code == 3 and doc["exit_code"] == 3
    assert doc["verdict"]["status"] == "healthy"
    assert doc["strict"] == {"exit_code": 3, "not_tested": ["exchange-online (in part)"]}
    code, out, _ = run(capsys, "demo", "exo-graph-throttled", "--strict")
    lines = out.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("VERDICT: HEALTHY"))
    assert code == 3 and lines[verdict + 1].startswith("STRICT: exit 3")
