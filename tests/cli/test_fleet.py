"""verify --domains against the lab's fleet (``mailtrace lab fleet``, in a process of its
own): every domain's status and failing records from each vantage are what the lab broke;
the same list on a LocalCluster of two worker processes, one per vantage resource, gives
the same NDJSON; a worker killed mid-run loses and repeats nothing; bad lines, stdin and
--resume."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailtrace.cli import main
from mailtrace.lab.fleet import VANTAGES, FleetRecords, FleetWorld
from mailtrace.lab.lab import FLEET_TOPOLOGY
from mailtrace.topology import load_topology
from tests.support.paths import ROOT

COUNT, BROKEN, REGIONAL = 24, 0.25, 0.1
#: Few domains at a time: each has its probes' deadlines, and the suite shares the CPU.
CONCURRENCY = "8"
#: What changes from one run to the next: when it ran, how long it took.
VOLATILE = {"checked_at", "elapsed_ms", "old_answers_expired_everywhere_at", "old_expires_at"}


@dataclass(frozen=True)
class FleetLab:
    lab_file: Path
    domains: Path
    topology: Path
    world: FleetWorld

    def argv(self, *more: str, domains: str | None = None) -> list[str]:
        return ["verify", "--domains", domains or str(self.domains), "--topology",
                str(self.topology), "--lab-file", str(self.lab_file), "--concurrency",
                CONCURRENCY, *more]


@pytest.fixture
def fleet_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetLab]:
    """``mailtrace lab fleet`` in a process of its own, for one test."""
    folder = tmp_path_factory.mktemp("fleet")
    lab_file, domains = folder / "lab.yaml", folder / "domains.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailtrace", "lab", "fleet", "--domains", str(COUNT),
         "--broken", str(BROKEN), "--regional", str(REGIONAL), "--lab-file", str(lab_file),
         "--domains-file", str(domains)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    topology = None
    for line in proc.stdout:
        if "--topology " in line:
            topology = Path(line.split("--topology ", 1)[1].split()[0])
        if line.startswith("Ctrl-C"):
            break
    if topology is None:
        proc.kill()
        raise AssertionError(f"the lab did not start: {proc.communicate()[1]}")
    world = FleetWorld(COUNT, FleetRecords.of(load_topology(ROOT / "topologies" /
                                                            FLEET_TOPOLOGY)),
                       broken=BROKEN, regional=REGIONAL)
    try:
        yield FleetLab(lab_file, domains, topology, world)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stable(doc: Any) -> Any:
    """``doc`` without what changes from run to run."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def sorted_lines(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(stable(d), sort_keys=True) for d in docs)


def assert_as_broken(docs: list[dict[str, Any]], world: FleetWorld) -> None:
    """Each domain once, and from each vantage the status and failing records the lab
    gave it."""
    domains = [d["domain"] for d in docs if d["kind"] == "domain"]
    assert sorted(domains) == sorted(world.domains())
    for doc in docs:
        for vantage in VANTAGES:
            seen = doc["vantages"][vantage]
            expected = world.expected(doc["domain"], vantage)
            failing = {r["record"] for r in seen["records"] if r["status"] != "matches"}
            assert (seen["status"], failing) == (expected.status, set(expected.records)), \
                (doc["domain"], vantage, json.dumps(seen)[:3000])
        regional = world.expected(doc["domain"], "us") != world.expected(doc["domain"], "eu")
        assert bool(doc["vantages_differ"]) == regional, doc["domain"]


@pytest.fixture
def in_process(fleet_lab: FleetLab, tmp_path_factory: pytest.TempPathFactory,
               capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], str]:
    """The lab's fleet verified in this process from both vantages: the NDJSON, and the
    summary."""
    out = tmp_path_factory.mktemp("in-process") / "fleet.ndjson"
    assert main(fleet_lab.argv("--vantage", "eu,us", "--output", str(out))) == 1
    return read_ndjson(out), capsys.readouterr().out


def test_every_domain_is_what_the_lab_broke_and_resume_finishes_the_rest(
        fleet_lab, in_process, tmp_path, capsys):
    docs, summary = in_process
    assert_as_broken(docs, fleet_lab.world)
    assert {d["status"] for d in docs} == {"converged", "differs", "propagating"}

    # The summary groups the failing domains by the finding that fails them.
    lines = summary.splitlines()
    kinds = [fleet_lab.world.kind(i) for i in range(COUNT)]
    failing = lines[lines.index("failing, by the finding that fails them:"):]
    groups = {m[1]: int(m[2]) for line in failing[1:]
              if (m := re.match(r"  ([A-Z_]+) +(\d+) ", line))}
    assert groups["DNS_MX_MISSING"] == kinds.count("mx-missing")
    assert groups["DMARC_POLICY_DIFFERS"] == kinds.count("dmarc-weaker")
    differ = lines[lines.index("answers differ between vantages:") + 1]
    assert differ.split()[:2] == ["SPF", str(fleet_lab.world.regional_count)]

    # A run killed in the middle of writing its 21st line, resumed into the same file.
    out = tmp_path / "fleet.ndjson"
    done = docs[: COUNT // 2]
    out.write_text("".join(json.dumps(d) + "\n" for d in done) + '{"schema": "mailt',
                   encoding="utf-8")
    assert main(fleet_lab.argv("--vantage", "eu,us", "--output", str(out), "--resume",
                               str(out))) == 1
    assert f"{len(done)} done by the previous run" in capsys.readouterr().out
    assert sorted_lines(read_ndjson(out)) == sorted_lines(docs)  # the cut line dropped


def test_bad_lines_duplicates_and_stdin(fleet_lab, monkeypatch, capsys):
    names = list(fleet_lab.world.domains())
    text = (f"{names[0]}\nalice@{names[1]}\n{names[0].upper()}.\n\xff\n{names[1]}\n")
    stdin = io.TextIOWrapper(io.BytesIO(text.encode("latin-1")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code = main(fleet_lab.argv(domains="-"))
    captured = capsys.readouterr()
    docs = [json.loads(line) for line in captured.out.splitlines()]
    assert [(d["kind"], d["line"], d.get("domain")) for d in sorted(
        docs, key=lambda d: d["line"])] == [("domain", 1, names[0]), ("error", 2, None),
                                            ("error", 4, None), ("domain", 5, names[1])]
    assert "an address" in next(d["error"] for d in docs if d["line"] == 2)
    assert "not UTF-8" in next(d["error"] for d in docs if d["line"] == 4)
    assert "line 3: " in captured.err and "duplicates (verified once): 1" in captured.err
    expected = {fleet_lab.world.expected(n).status for n in names[:2]}
    assert code == (1 if expected - {"converged"} else 3)  # bad lines: not healthy


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["sigterm", "ctrl-c"])
def test_a_signal_writes_out_what_finished_as_valid_ndjson(fleet_lab, tmp_path, signum, code):
    out = tmp_path / "fleet.ndjson"
    argv = fleet_lab.argv("--output", str(out))
    argv[argv.index("--concurrency") + 1] = "2"
    proc = subprocess.Popen([sys.executable, "-m", "mailtrace", *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and (
            not out.exists() or out.read_text(encoding="utf-8").count("\n") < 2):
        time.sleep(0.02)
    proc.send_signal(signum)
    summary, err = proc.communicate(timeout=30)
    docs = read_ndjson(out)  # every line whole
    assert proc.returncode == code and 2 <= len(docs) < COUNT
    assert err == ""  # no traceback, nor one line per cancelled domain
    assert f"fleet: {len(docs)} domains verified" in summary


# -- on a Dask cluster ---------------------------------------------------------------------

@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A LocalCluster of two worker processes (each under a nanny that restarts it), one
    offering vantage eu, the other vantage us."""
    import copy

    import dask
    from distributed import LocalCluster

    scratch = tmp_path_factory.mktemp("dask")
    # Dask's lock files and workers' spill folders go with the test's folder.
    config = dask.config.set({"temporary-directory": str(scratch)})
    local = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                         dashboard_address=None, local_directory=str(scratch),
                         silence_logs=50)
    _, template = local.new_worker_spec().popitem()
    for vantage in VANTAGES:
        spec = copy.deepcopy(template)
        spec["options"]["resources"] = {f"vantage-{vantage}": 1}
        spec["options"]["name"] = vantage
        local.worker_spec[vantage] = spec
    local.scale(len(VANTAGES))
    try:
        yield local
    finally:
        local.close(timeout=30)
        config.__exit__(None, None, None)


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=60)


def test_a_cluster_gives_the_same_ndjson_and_a_killed_worker_loses_nothing(
        fleet_lab, in_process, cluster, tmp_path, capsys):
    from distributed import Client

    expected = sorted_lines(in_process[0])
    with Client(cluster.scheduler_address, timeout=30) as client:
        client.wait_for_workers(len(VANTAGES), timeout=60)
    out = tmp_path / "fleet.ndjson"
    assert main(fleet_lab.argv("--vantage", "eu,us", "--output", str(out), "--scheduler",
                               cluster.scheduler_address, "--shard-size", "7")) == 1
    capsys.readouterr()
    assert sorted_lines(read_ndjson(out)) == expected

    # Again, the us worker killed once the first shards are back: its nanny starts it
    # anew, the scheduler runs its shards again, and the client reports each domain once.
    with Client(cluster.scheduler_address, timeout=30) as client:
        workers = client.scheduler_info()["workers"]
        pids = client.run(os.getpid)
    victim = next(pids[address] for address, info in workers.items()
                  if "vantage-us" in info["resources"])
    out = tmp_path / "killed.ndjson"
    killed, stop = threading.Event(), threading.Event()

    def kill_once_results_flow() -> None:
        while not stop.wait(0.02):
            if out.exists() and out.read_text(encoding="utf-8").count("\n") >= 3:
                os.kill(victim, signal.SIGKILL)
                killed.set()
                return

    watcher = threading.Thread(target=kill_once_results_flow, daemon=True)
    watcher.start()
    try:
        code = main(fleet_lab.argv("--vantage", "eu,us", "--output", str(out), "--scheduler",
                                   cluster.scheduler_address, "--shard-size", "3"))
    finally:
        stop.set()
        watcher.join(timeout=5)
    capsys.readouterr()
    docs = read_ndjson(out)
    assert killed.is_set() and code == 1
    assert [d["kind"] for d in docs] == ["domain"] * COUNT
    assert sorted_lines(docs) == expected
