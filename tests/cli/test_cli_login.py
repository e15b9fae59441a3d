"""``mailtrace login`` then ``mailtrace triage`` against the lab, as an admin does it: the
lab's identity platform runs the device code flow, the person enters the code on its
page, and the triage after signs in silently and asks Graph; ``logout`` forgets it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from mailtrace.cli import main
from mailtrace.clients.msgraph import signin
from tests.support.paths import ROOT


@pytest.fixture
def lab_with_a_person(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A running lab, and the contoso topology with an admin's sign-in (auth device-code)
    to the lab's Graph; HOME and the config folder are the test's own."""
    lab_file = tmp_path / "lab.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", "healthy",
                             "--lab-file", str(lab_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("lab file: "):
            break
    access = yaml.safe_load(lab_file.read_text(encoding="utf-8"))
    lab_topology = yaml.safe_load(Path(access["topology"]).read_text(encoding="utf-8"))
    topology = yaml.safe_load((ROOT / "topologies" / "contoso-proofpoint-exo.yaml").read_text())
    topology["tiers"]["exchange-online"]["graph"] = {
        "url": lab_topology["tiers"]["exchange-online"]["graph"]["url"],
        "auth": "device-code", "tenant_id": "contoso.onmicrosoft.com"}
    path = tmp_path / "contoso.yaml"
    path.write_text(yaml.safe_dump(topology), encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config")}
    for name in ("HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, env[name])
    try:
        yield path, lab_file, env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def _login(topology: Path, lab_file: Path, env: dict[str, str], *extra: str
           ) -> tuple[int, str, str]:
    """`mailtrace login` in its own process; the person reads the prompt, opens the page
    and enters the code (the lab CA is what their browser would trust here)."""
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", "login", "--topology",
                             str(topology), "--lab-file", str(lab_file), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    assert proc.stderr is not None
    prompt = proc.stderr.readline()
    match = re.search(r"open (\S+) and enter the code (\S+) ", prompt)
    if match is not None:
        ca = Path(env["HOME"]) / "lab-ca.pem"
        ca.write_text(yaml.safe_load(lab_file.read_text())["ca"], encoding="ascii")
        answer = requests.post(match.group(1), data={"otc": match.group(2)}, verify=str(ca),
                               timeout=10)
        assert answer.status_code == 200
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, prompt + err


def test_sign_in_once_then_triage_asks_graph_silently(capsys, lab_with_a_person):
    topology, lab_file, env = lab_with_a_person
    # Before signing in: the Graph probes are not tested, nothing waits for a person, and
    # the tenant every path crosses was not tested: inconclusive, saying to sign in.
    code = main(["triage", "--topology", str(topology), "--recipient", "alice@contoso.com",
                 "--lab-file", str(lab_file), "--format", "json"])
    before = json.loads(capsys.readouterr().out)
    exo = next(t for t in before["tiers"] if t["id"] == "exchange-online")
    assert "mailtrace login" in " ".join(p["reason"] or "" for p in exo["probes"])
    assert (code, before["verdict"]["status"]) == (3, "inconclusive")
    assert "mailtrace login" in before["verdict"]["summary"]

    code, out, err = _login(topology, lab_file, env, "--allow-unencrypted-cache")
    assert code == 0, err
    assert "signed in as admin@contoso.com" in out
    assert "enter the code" in err  # the prompt went to stderr

    code = main(["triage", "--topology", str(topology), "--recipient", "alice@contoso.com",
                 "--lab-file", str(lab_file), "--format", "json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    exo = next(t for t in report["tiers"] if t["id"] == "exchange-online")
    tags = {f["tag"] for f in exo["findings"]}
    assert {"EXO_RECIPIENT_OK", "EXO_DOMAIN_OK", "EXO_MAILTIPS_OK"} <= tags
    assert exo["status"] == "pass" and report["verdict"]["status"] == "healthy" and code == 0
    assert "enter the code" not in captured.err

    assert main(["logout", "--topology", str(topology), "--lab-file", str(lab_file)]) == 0
    assert "signed out admin@contoso.com" in capsys.readouterr().out
    assert not list((Path(env["XDG_CONFIG_HOME"]) / "mailtrace" / "sign-in").iterdir())


def test_without_a_keyring_login_asks_for_consent_first(lab_with_a_person):
    if signin.keyring_problem() is None:
        pytest.skip("this machine has an OS keyring: the cache is encrypted")
    topology, lab_file, env = lab_with_a_person
    code, _, err = _login(topology, lab_file, env)
    assert code == 2 and "--allow-unencrypted-cache" in err and "enter the code" not in err
    assert not (Path(env["HOME"]) / ".IdentityService").exists()


def test_a_topology_whose_graph_signs_in_as_an_app_has_nothing_to_log_in(capsys):
    code = main(["login", "--topology", str(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "auth client-certificate" in err
