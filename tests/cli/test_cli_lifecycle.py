"""The command line's life cycle: signals, broken pipes, interrupted reports, the lab file,
and help for every flag."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mailtrace.cli import main
from mailtrace.cli.main import build_parser
from mailtrace.lab import labfile
from tests.support.paths import ROOT

CONTOSO = str(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")


def _start_lab(*argv: str) -> tuple[subprocess.Popen[str], Path]:
    """``mailtrace lab`` in a process of its own, once its lab file is written."""
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("lab file: "):
            return proc, Path(line.split(": ", 1)[1].strip())
    proc.kill()
    raise AssertionError(f"the lab did not start: {proc.communicate()[1]}")


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("lab") / "lab.yaml"
    proc, written = _start_lab("healthy", "--lab-file", str(path))
    assert written == path
    try:
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_every_flag_of_every_command_says_what_it_does():
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, command in sub.choices.items() for action in command._actions
               if not action.help and not isinstance(action, argparse._HelpAction)]
    assert missing == []


def test_a_reader_that_goes_away_ends_the_command_quietly_with_141():
    # `mailtrace probes | head -1`: the shell's usual status for SIGPIPE, nothing on stderr.
    # The reading end closes before the command has written anything (it takes longer
    # than this to start), as when head has already had its line.
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "probes"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141
    assert err == ""


def test_lab_list_lists_the_scenarios_as_demo_list_does(capsys):
    assert main(["lab", "--list"]) == 0
    lab_list = capsys.readouterr().out
    assert main(["demo", "--list"]) == 0
    assert lab_list == capsys.readouterr().out and "healthy" in lab_list


def test_the_lab_says_its_scenario_once_and_writes_its_trust_anchor(tmp_path):
    """The root's DS record is written beside the lab file, readable by --trust-anchor
    and the same as the lab file's; both go when the lab stops."""
    from mailtrace.clients.trust_anchor import TrustAnchor

    path = tmp_path / "lab.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", "healthy",
                             "--lab-file", str(path), "--for", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C") or line.startswith("stopping in"):
            break
    try:
        assert sum("scenario healthy" in line for line in lines) == 1, lines
        [anchor] = [line.split(": ", 1)[1].strip() for line in lines
                    if line.startswith("trust anchor: ")]
        assert anchor == str(tmp_path / "lab.root.ds")
        access = labfile.read(str(path))
        assert TrustAnchor.from_file(Path(anchor)).ds == access.trust_anchor
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert not Path(anchor).exists() and not path.exists()


def test_sigterm_stops_the_lab_and_removes_its_key_and_credentials():
    proc, path = _start_lab("healthy")
    access = yaml.safe_load(path.read_text(encoding="utf-8"))
    ca_folder = Path(access["environ"]["MAILTRACE_CA_FILE"]).parent
    assert any(p.suffix == ".key" for p in ca_folder.iterdir())  # server keys, on disk
    assert path.stat().st_mode & 0o777 == 0o600
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not path.exists() and not path.parent.exists() and not ca_folder.exists()


def test_sigterm_while_the_lab_answers_queries_still_stops_it():
    """A signal handler's exception lands in whichever task runs: with the lab busy
    answering, that is a server's task, which would keep it and run on."""
    import socket
    import threading

    import dns.message

    proc, path = _start_lab("healthy")
    access = yaml.safe_load(path.read_text(encoding="utf-8"))
    host, _, port = str(access["resolver"]).rpartition(":")
    query = dns.message.make_query("contoso.com", "MX").to_wire()
    done = threading.Event()

    def ask() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            while not done.is_set():
                sock.sendto(query, (host, int(port)))
                with contextlib.suppress(OSError):
                    sock.recv(4096)

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for t in askers:
        t.start()
    try:
        time.sleep(0.5)
        for _ in range(5):  # a few, should the first land between two queries
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
                break
        _, err = proc.communicate(timeout=20)
    finally:
        done.set()
        for t in askers:
            t.join()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert not path.exists()


def test_an_interrupted_run_leaves_no_empty_report(capsys, monkeypatch, tmp_path):
    import mailtrace.usecases.triage as triage

    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(triage, "run_triage", interrupted)
    report = tmp_path / "report.html"
    code = main(["triage", "--topology", CONTOSO, "--recipient", "alice@contoso.com",
                 "--resolver", "127.0.0.1", "--format", "html", "--output", str(report)])
    assert code == 130
    assert not report.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_report_is_replaced_whole_and_keeps_its_mode(capsys, tmp_path):
    report = tmp_path / "graph.txt"
    report.write_text("old\n", encoding="utf-8")
    report.chmod(0o640)
    from mailtrace.cli.options import deliver

    deliver("new\n", str(report))
    assert report.read_text(encoding="utf-8") == "new\n"
    assert report.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["graph.txt"]


# --- the lab file --------------------------------------------------------------------------


def test_triage_and_verify_of_an_unchanged_example_reach_the_lab_by_one_flag(
        capsys, running_lab):
    code = main(["triage", "--topology", CONTOSO, "--recipient", "alice@contoso.com",
                 "--lab-file", str(running_lab), "--format", "json"])
    out = capsys.readouterr().out
    import json

    report = json.loads(out)
    tiers = {t["id"]: t for t in report["tiers"]}
    assert tiers["public-dns"]["status"] == "pass"
    # The example's own API URL reaches the stand-in: the lab's credentials were used.
    assert "PP_MESSAGE_DELIVERED" in {f["tag"] for f in tiers["proofpoint"]["findings"]}
    # The example signs in to Graph with an app certificate this machine does not have
    # (the lab's own copy uses a token): the tenant is not tested, so not healthy
    tags = {f["tag"] for f in tiers["exchange-online"]["findings"]}
    assert "EXO_GRAPH_NOT_CONFIGURED" in tags, tags
    assert (report["verdict"]["status"], report["verdict"]["tier"], code) == (
        "inconclusive", "exchange-online", 3)
    code = main(["verify", "--topology", CONTOSO, "--lab-file", str(running_lab)])
    assert code == 0, capsys.readouterr().out


def test_a_lab_file_names_no_secret_outside_itself(running_lab):
    access = labfile.read(running_lab)
    assert access.environ and access.scenario == "healthy"
    assert all(value not in repr(access) for value in access.environ.values())


@pytest.mark.parametrize(("text", "needle"), [
    ("not: [a lab file", "not readable YAML"),
    ("schema: mailtrace/triage-1\n", "not a lab file"),
    ("schema: mailtrace/lab-1\nscenario: x\nresolver: 127.0.0.1:5353\nca: nope\n", "ca:"),
    ("schema: mailtrace/lab-1\nscenario: x\nresolver: dns.example\n"
     "ca: '-----BEGIN CERTIFICATE----- AAAA -----END CERTIFICATE-----'\n", "--resolver"),
])
def test_a_bad_lab_file_is_one_line_and_exit_2(capsys, tmp_path, text, needle):
    path = tmp_path / "lab.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["triage", "--topology", CONTOSO, "--recipient", "alice@contoso.com",
                 "--lab-file", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_a_lab_file_credential_is_never_echoed_in_an_error(capsys, tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("schema: mailtrace/lab-1\nscenario: x\nresolver: 127.0.0.1\n"
                    "ca: |\n  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\n"
                    "environ: {'bad name': hunter2-secret}\n", encoding="utf-8")
    code = main(["verify", "--topology", CONTOSO, "--lab-file", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "environ" in err and "hunter2" not in err


def test_a_gone_lab_says_so(capsys, tmp_path):
    code = main(["verify", "--topology", CONTOSO, "--lab-file", str(tmp_path / "gone.yaml")])
    assert code == 2 and "still running" in capsys.readouterr().err


def test_the_lab_file_is_private_from_its_first_byte(tmp_path):
    from mailtrace.core.network import Endpoint

    access = labfile.LabAccess("x", Endpoint("127.0.0.1", 53), (), "PEM", {"A": "b"})
    old = os.umask(0)
    try:
        path = labfile.write(access, tmp_path / "lab.yaml")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600


def test_verify_shows_a_dkim_selector_published_as_an_alias_and_its_target(
        capsys, running_lab):
    """Microsoft 365's DKIM: selector1._domainkey is a CNAME to the tenant's selector; the
    TXT asked for is at the target, as the resolver followed it."""
    code = main(["verify", "--topology", CONTOSO, "--lab-file", str(running_lab)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("✓ DKIM selector1"))
    assert code == 0 and lines[at].endswith("TXT asked, answered by a CNAME")
    assert lines[at + 1].strip().startswith(
        "current: CNAME → selector1-contoso-com._domainkey.contoso.onmicrosoft.com.")
    assert lines[at + 2].strip().startswith("TXT at the target (followed by resolver")
    assert "v=DKIM1" in lines[at + 2]
    mx = next(line for line in lines if line.startswith("✓ MX"))
    assert "CNAME" not in mx
