"""The lab file: everything another shell needs to reach a running lab, in one file.

``mailtrace lab`` writes it; ``mailtrace triage|verify|precheck|init --lab-file FILE``
reads it instead of twenty ``--connect-to`` flags, a ``--resolver``, a ``--ca-file`` and a
sourced credentials file. It holds the lab resolver's address, the connection rules
(curl's ``--connect-to`` idea: a connection to HOST:PORT goes to a loopback port instead),
the lab CA's certificate (public: the CA's key never leaves the lab's process) and the
throwaway credentials the lab's API stand-ins accept. Those are secrets for as long as the
lab runs, so the file is created with mode 0600 and removed when the lab stops.

The format is YAML (``schema: mailtrace/lab-1``), read with a safe loader and checked
field by field: a malformed file is one clear error, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailtrace.core.network import (
    ConnectTo,
    Endpoint,
    EndpointError,
    parse_connect_to,
    parse_resolver,
)

SCHEMA = "mailtrace/lab-1"
#: A lab file is small; anything larger is not one.
MAX_BYTES = 256 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DS = re.compile(r"\d{1,5} \d{1,3} \d{1,3} [0-9A-Fa-f ]{20,200}")
_VANTAGE = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*")


class LabFileError(ValueError):
    """A lab file that cannot be used (missing, malformed): one line naming the file."""


@dataclass(frozen=True)
class LabAccess:
    """How to reach a running lab."""

    scenario: str
    resolver: Endpoint
    connect_to: tuple[ConnectTo, ...]
    ca_pem: str
    environ: Mapping[str, str] = field(repr=False)
    #: The scenario's own topology pointed at the lab's stand-ins (a file the lab wrote).
    topology: str | None = None
    recipient: str | None = None
    pid: int | None = None
    #: The lab root's DS records: the DNSSEC trust anchor of the lab's signed zones.
    trust_anchor: tuple[str, ...] = ()
    #: A fleet lab's vantage points: each one's resolver panel (``verify --vantage``).
    vantages: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)


def render(access: LabAccess) -> str:
    """The lab file's text: a commented YAML document."""
    head = [
        f"# mailtrace lab file: how to reach the running lab (scenario {access.scenario}).",
        "#   mailtrace triage --topology YOUR-TOPOLOGY.yaml --recipient ADDR --lab-file THIS-FILE",
        "# It holds the lab's throwaway API credentials: valid only while that lab runs",
        "# and removed when it stops.",
    ]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "scenario": access.scenario,
        "pid": access.pid,
        "recipient": access.recipient,
        "topology": access.topology,
        "resolver": str(access.resolver),
        "connect_to": [str(rule) for rule in access.connect_to],
        "ca": access.ca_pem,
        "trust_anchor": list(access.trust_anchor),
        "environ": dict(sorted(access.environ.items())),
    }
    if access.vantages:
        data["vantages"] = {name: [str(e) for e in panel]
                            for name, panel in access.vantages.items()}
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, width=100)


def write(access: LabAccess, path: Path) -> Path:
    """Write the lab file at ``path``, readable by this user only (mode 0600 from the
    start: the credentials are never readable by others, not even for a moment)."""
    text = render(access)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def read(path: str | Path) -> LabAccess:
    """Read and check a lab file."""
    name = str(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise LabFileError(f"{name}: no such file (is `mailtrace lab` still running? "
                           "it removes its lab file when it stops)") from None
    except OSError as exc:
        raise LabFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise LabFileError(f"{name}: larger than {MAX_BYTES} bytes: not a lab file")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise LabFileError(f"{name}: not a lab file (not readable YAML)") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise LabFileError(f"{name}: not a lab file (expected schema: {SCHEMA}); "
                           "`mailtrace lab` writes one")
    try:
        return _access(data)
    except (EndpointError, TypeError, ValueError) as exc:
        raise LabFileError(f"{name}: {exc}") from None


def _text(data: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: expected a string")
    return value


def _access(data: Mapping[str, Any]) -> LabAccess:
    rules = data.get("connect_to") or []
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise ValueError("connect_to: expected a list of HOST:PORT:ADDR:PORT")
    ca = _text(data, "ca") or ""
    if not _PEM.fullmatch(ca):
        raise ValueError("ca: expected the lab CA's certificate (PEM)")
    environ = data.get("environ") or {}
    if not isinstance(environ, Mapping) or not all(
            isinstance(k, str) and _ENV_NAME.fullmatch(k) and isinstance(v, str)
            for k, v in environ.items()):
        # Never echo the values: they are credentials.
        raise ValueError("environ: expected environment variable names and string values")
    anchor = data.get("trust_anchor") or []
    if not isinstance(anchor, list) or not all(
            isinstance(ds, str) and _DS.fullmatch(ds.strip()) for ds in anchor):
        raise ValueError("trust_anchor: expected DS records (key tag, algorithm, digest type, "
                         "digest in hexadecimal)")
    vantages = data.get("vantages") or {}
    if not isinstance(vantages, Mapping) or not all(
            isinstance(k, str) and _VANTAGE.fullmatch(k) and isinstance(v, list) and v
            for k, v in vantages.items()):
        raise ValueError("vantages: expected vantage names, each with a list of resolvers")
    pid = data.get("pid")
    return LabAccess(
        scenario=_text(data, "scenario") or "",
        resolver=parse_resolver(_text(data, "resolver") or ""),
        connect_to=tuple(parse_connect_to(str(rule)) for rule in rules),
        ca_pem=ca,
        environ=dict(environ),
        topology=_text(data, "topology", required=False),
        recipient=_text(data, "recipient", required=False),
        pid=pid if isinstance(pid, int) else None,
        trust_anchor=tuple(ds.strip() for ds in anchor),
        vantages={name: tuple(parse_resolver(str(e)) for e in panel)
                  for name, panel in vantages.items()},
    )
