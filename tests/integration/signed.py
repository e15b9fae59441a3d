"""A signed copy of the integration world: Knot DNS signing the zones itself (automatic
signing with keys made by ``keymgr`` before it starts), DS records in the parents, and
Unbound validating from the root's key.

Signed: ".", com., example., contoso.com. and bogus.example. — whose DS at example. is for
a key it does not have, so a validating resolver finds it bogus. pphosted.com,
outlook.com and nomx.example stay unsigned (insecure delegations), as on the internet.
The root's DS, from keymgr, is the trust anchor both Unbound and mailtrace are given.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    LOOPBACK,
    ZONES_DIR,
    DnsServer,
    find_binary,
    serving,
    unbound_config,
)

PARENT = {".": "root.zone", "com": "com.zone", "example": "example.zone"}
CHILD = {"contoso.com": "contoso.com.zone", "pphosted.com": "pphosted.com.zone",
         "outlook.com": "outlook.com.zone", "nomx.example": "nomx.example.zone",
         "bogus.example": "bogus.example.zone"}
SIGNED = frozenset({".", "com", "example", "contoso.com", "bogus.example"})
PARENT_NS = ("a.root.lab", "a.gtld-servers.com", "a.nic.example")
CHILD_NS = ("ns1.contoso.com", "ns2.contoso.com", "ns1.pphosted.com", "ns1.outlook.com",
            "ns1.nomx.example", "ns1.bogus.example")
#: A DS naming no key of bogus.example (its key tag and digest are made up).
STRAY_DS = "bogus.example. 3600 IN DS 4711 13 2 " + "5e" * 32


def knot_signing_config(workdir: Path, zones: dict[str, Path], port: int) -> str:
    """knot.conf: foreground, everything inside ``workdir``, the signed zones signed by
    Knot with the keys keymgr put in the KASP database (policy ``manual``)."""
    lines = []
    for origin, path in zones.items():
        lines.append(f'  - domain: "{origin}"\n    file: "{path}"')
        if origin in SIGNED:
            lines.append("    dnssec-signing: on\n    dnssec-policy: manual")
    return f"""\
server:
    rundir: "{workdir / "run"}"
    user: root:root
    listen: {LOOPBACK}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{workdir / "db"}"
    kasp-db: "{workdir / "keys"}"

control:
    listen: "{workdir / "run" / "knot.sock"}"

log:
  - target: stderr
    any: info

policy:
  - id: manual
    manual: on

template:
  - id: default
    storage: "{workdir / "db"}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: on

zone:
""" + "\n".join(lines) + "\n"


def _keymgr(keymgr: str, conf: Path, *args: str) -> str:
    done = subprocess.run([keymgr, "-c", str(conf), *args], capture_output=True, text=True,
                          timeout=20, check=False)
    if done.returncode != 0:
        pytest.fail(f"keymgr {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _prepare(workdir: Path, zones: dict[str, str], extra: dict[str, list[str]]
             ) -> tuple[Path, dict[str, Path], dict[str, list[str]]]:
    """Copy the zones (with ``extra`` records appended), write a config on port 0, make
    each signed zone's KSK and ZSK; returns the config, the zone paths and each signed
    zone's DS records."""
    keymgr = find_binary("keymgr")
    if keymgr is None:
        pytest.skip("keymgr not installed (Debian package knot)")
    for sub in ("run", "db", "keys", "zones"):
        (workdir / sub).mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    for origin, filename in zones.items():
        paths[origin] = workdir / "zones" / filename
        shutil.copyfile(ZONES_DIR / filename, paths[origin])
        with paths[origin].open("a") as fh:
            fh.writelines(line + "\n" for line in extra.get(origin, []))
    conf = workdir / "knot.conf"
    conf.write_text(knot_signing_config(workdir, paths, 53))  # keymgr only reads it
    ds: dict[str, list[str]] = {}
    for origin in zones:
        if origin not in SIGNED:
            continue
        apex = "." if origin == "." else origin + "."
        _keymgr(keymgr, conf, apex, "generate", "algorithm=ECDSAP256SHA256", "ksk=yes",
                "zsk=no")
        _keymgr(keymgr, conf, apex, "generate", "algorithm=ECDSAP256SHA256", "ksk=no",
                "zsk=yes")
        ds[origin] = [line.strip() for line in _keymgr(keymgr, conf, apex, "ds").splitlines()
                      if " DS " in line and " 13 2 " in line]
    return conf, paths, ds


@contextlib.contextmanager
def _knot(name: str, workdir: Path, conf: Path, paths: dict[str, Path],
          ns_names: tuple[str, ...]) -> Iterator[DnsServer]:
    knotd = find_binary("knotd")
    if knotd is None:
        pytest.skip("knotd not installed (Debian package knot)")

    def configure(port: int) -> list[str]:
        conf.write_text(knot_signing_config(workdir, paths, port))
        return [knotd, "-c", str(conf)]

    ready = [(origin, "SOA") for origin in paths]
    with serving(name, workdir, configure, ready, tuple(paths), ns_names) as server:
        yield server


@contextlib.contextmanager
def signed_world(tmp: pytest.TempPathFactory) -> Iterator[tuple[DnsServer, DnsServer, Path]]:
    """(parent Knot, child Knot, root anchor file): children first, their DS in the
    parent zones, then the parent."""
    child_dir = tmp.mktemp("knot-signed-child")
    child_conf, child_paths, child_ds = _prepare(child_dir, CHILD, {})
    parent_extra = {"com": child_ds["contoso.com"],
                    "example": ["bogus\tIN NS\tns1.bogus.example.", "ns1.bogus\tIN A\t127.0.0.1",
                                STRAY_DS]}
    parent_dir = tmp.mktemp("knot-signed-parent")
    parent_conf, parent_paths, parent_ds = _prepare(parent_dir, PARENT, parent_extra)
    with parent_paths["."].open("a") as root:  # the TLDs' DS, now that their keys exist
        root.writelines(line + "\n" for tld in ("com", "example") for line in parent_ds[tld])
    anchor = parent_dir / "root.ds"
    anchor.write_text("; the integration root's key-signing key\n"
                      + "\n".join(parent_ds["."]) + "\n")
    with _knot("knot-signed-child", child_dir, child_conf, child_paths, CHILD_NS) as child, \
            _knot("knot-signed-parent", parent_dir, parent_conf, parent_paths,
                  PARENT_NS) as parent:
        yield parent, child, anchor


def validating_unbound_config(workdir: Path, port: int, stubs: dict[str, DnsServer],
                              anchor: Path) -> str:
    """The plain Unbound configuration, validating from ``anchor`` (RFC 4035 §5)."""
    text = unbound_config(workdir, LOOPBACK, port, stubs)
    text = text.replace('module-config: "iterator"', 'module-config: "validator iterator"')
    return text.replace("    infra-host-ttl: 5\n",
                        f'    infra-host-ttl: 5\n    trust-anchor-file: "{anchor}"\n'
                        "    val-log-level: 2\n")


@contextlib.contextmanager
def validating_unbound(tmp: pytest.TempPathFactory, parent: DnsServer, child: DnsServer,
                       anchor: Path) -> Iterator[DnsServer]:
    unbound = find_binary("unbound")
    if unbound is None:
        pytest.skip("unbound not installed (Debian package unbound)")
    workdir = tmp.mktemp("unbound-validating")
    conf = workdir / "unbound.conf"
    stubs = {origin: parent for origin in PARENT} | {origin: child for origin in CHILD}

    def configure(port: int) -> list[str]:
        conf.write_text(validating_unbound_config(workdir, port, stubs, anchor))
        return [unbound, "-d", "-c", str(conf)]

    with serving("unbound-validating", workdir, configure,
                 [(".", "NS"), ("contoso.com", "MX")]) as server:
        yield server
