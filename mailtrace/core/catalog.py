"""The tag catalog: level, scope, message template and remediation of every finding tag.

The data lives in ``probes/catalog/*.yaml`` (one file per area: engine, dns, smtp, ...)
so it can be reviewed without reading code; a tag is declared in exactly one file.
Each entry also says whether its finding *contradicts* a value the topology declares
(``contradicts: true``): ``verify`` and ``precheck`` judge a record by that, not by the
level alone. It is validated when loaded (unknown level, missing message, a template naming an
argument the probe never passes is caught by the closed-catalog test).

It is read once per process, with libyaml's C parser when PyYAML was built with it (the
usual wheels are): some 140 KB of YAML take tens of milliseconds that way, most of a
second with the pure-Python parser, which stays the fallback. Both read the same data
(``tests/core/test_catalog.py`` compares them).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from mailtrace.core.findings import Finding, Level, Scope

#: What a warning does to the verdict.
EFFECTS = ("degrades", "note")


class CatalogError(Exception):
    """The catalog data itself is broken: a packaging or development error."""


@dataclass(frozen=True)
class Remediation:
    summary: str
    commands: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    checked: str | None = None  # ISO date the command and links were last verified

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "commands": list(self.commands),
            "docs": list(self.docs),
            "checked": self.checked,
        }


@dataclass(frozen=True)
class TagInfo:
    tag: str
    level: Level
    scope: Scope
    message: str
    description: str
    remediation: Remediation | None
    #: The finding says the record contradicts a value the topology declares (an expected
    #: SPF term or ``all``, a DMARC policy, an MX host...), as opposed to a finding about
    #: the record alone or about something the topology does not declare.
    contradicts: bool = False
    #: For a warning: ``degrades`` when it means lost redundancy or delayed or diverted
    #: mail (a partial failure: the verdict is degraded), ``note`` when it only needs
    #: attention; ``because`` says why, in one sentence.
    effect: str | None = None
    because: str | None = None

    @property
    def degrades(self) -> bool:
        return self.effect == "degrades"

    @property
    def fails(self) -> bool:
        """Does this tag, on its own, make its probe fail (as opposed to warn or inform)?"""
        return self.level.rank >= Level.ERROR.rank

    def render(self, args: dict[str, Any]) -> str:
        return string.Formatter().vformat(self.message, (), _Lenient(args))


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _parse(tag: str, raw: Any) -> TagInfo:
    if not isinstance(raw, dict):
        raise CatalogError(f"catalog entry {tag}: expected a mapping")
    try:
        level = Level(raw["level"])
        scope = Scope(raw.get("scope", "tier"))
        message = str(raw["message"])
        description = str(raw["description"])
    except (KeyError, ValueError) as exc:
        raise CatalogError(f"catalog entry {tag}: {exc}") from exc
    contradicts = raw.get("contradicts", False)
    if not isinstance(contradicts, bool):
        raise CatalogError(f"catalog entry {tag}: contradicts must be true or false")
    effect, because = raw.get("effect"), raw.get("because")
    if level is Level.WARNING and (effect not in EFFECTS or not because):
        raise CatalogError(f"catalog entry {tag}: a warning states its effect "
                           f"({' or '.join(EFFECTS)}) and why (because)")
    if level is not Level.WARNING and effect is not None:
        raise CatalogError(f"catalog entry {tag}: only a warning states an effect")
    rem = raw.get("remediation")
    remediation = None
    if rem is not None:
        remediation = Remediation(
            summary=str(rem["summary"]),
            commands=tuple(rem.get("commands", ())),
            docs=tuple(rem.get("docs", ())),
            checked=str(rem["checked"]) if "checked" in rem else None,
        )
    return TagInfo(tag, level, scope, message, description, remediation, contradicts,
                   effect, str(because) if because is not None else None)


#: libyaml's safe loader when PyYAML has it, else the pure-Python one (same results).
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load() -> dict[str, TagInfo]:
    return parse(sources(), LOADER)


def parse(files: list[tuple[str, str]], loader: type[yaml.SafeLoader]) -> dict[str, TagInfo]:
    """The catalog in ``files`` (name, YAML text), read with ``loader``."""
    tags: dict[str, TagInfo] = {}
    for name, text in files:
        raw = yaml.load(text, Loader=loader)  # a safe loader: LOADER or yaml.SafeLoader
        if not isinstance(raw, dict):
            raise CatalogError(f"probes/catalog/{name}: expected a mapping of tags")
        for tag, entry in raw.items():
            if tag in tags:
                raise CatalogError(f"probes/catalog/{name}: tag {tag} is declared twice")
            tags[tag] = _parse(tag, entry)
    return tags


def sources() -> list[tuple[str, str]]:
    """(file name, text) of every catalog file, in name order."""
    folder = resources.files("mailtrace.probes").joinpath("catalog")
    return sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def info(tag: str) -> TagInfo:
    try:
        return load()[tag]
    except KeyError:
        raise CatalogError(f"tag {tag} is not declared in probes/catalog/") from None


def message(finding: Finding) -> str:
    return info(finding.tag).render(finding.args)
