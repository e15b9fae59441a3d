"""A drafted topology (``mailtrace init``) and its YAML: a file that loads as it is, with
every value that was read or guessed from DNS commented with the record that led to it,
and the API sections left as commented templates naming their environment variables.

The document is data (:class:`TopologyDraft`); :func:`render` writes the YAML by hand so
that each value keeps its comment beside it (a YAML library would drop them).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml

from mailtrace.topology.loader import parse_topology
from mailtrace.topology.model import Topology

#: Comments are wrapped at this width, and a long one (an SPF record) cut after a few lines.
COMMENT_WIDTH = 96
COMMENT_LINES = 4


@dataclass(frozen=True)
class Value:
    """One key of the draft: its value, and why it has that value.

    ``source`` is the record read (``MX contoso.com: 10 mx0a-….``); ``guess`` says what
    was inferred from it when the value is not the record itself (a tier kind from a host
    name, a tenant from a DKIM target). ``children`` nest a mapping (``expect:``).
    """

    key: str
    value: Any = None
    source: str | None = None
    guess: str | None = None
    children: tuple[Value, ...] = ()
    #: Shown commented out: a value to fill in, or to keep only when it holds.
    commented: bool = False


@dataclass(frozen=True)
class TierDraft:
    id: str
    kind: str
    title: str  # what the tier is, as an admin knows it: "Proofpoint on Demand"
    values: tuple[Value, ...]
    #: Commented-out sections to fill in (an API's URL and the env vars of its credentials).
    templates: tuple[str, ...] = ()


@dataclass
class TopologyDraft:
    domain: str
    name: str
    tiers: list[TierDraft]  # in flow order, the DNS tier first
    drafted_at: str  # ISO 8601 UTC
    resolvers: list[str]
    version: str
    #: What an admin should know about the draft (an MX that bypasses the gateway, ...).
    notes: list[str] = field(default_factory=list)

    @property
    def flow(self) -> str:
        return " -> ".join(t.id for t in self.tiers)


def _flow_style(value: Any) -> str:
    """A value in YAML flow style on one line (strings quoted only when they must be)."""
    dumped = yaml.safe_dump({"v": value}, default_flow_style=True, width=10**6,
                            sort_keys=False, allow_unicode=False)
    return dumped.strip()[len("{v: "):-1]


def _comment(text: str) -> str:
    """A comment's text: printable ASCII on one line (a record may hold anything)."""
    return re.sub(r"[^\x20-\x7e]", "?", " ".join(text.split()))


def _comments(text: str, indent: str, lead: str) -> list[str]:
    """A comment wrapped at the width, at most :data:`COMMENT_LINES` lines."""
    width = max(COMMENT_WIDTH - len(indent), 40)
    lines = textwrap.wrap(_comment(text), width, initial_indent=f"# {lead}",
                          subsequent_indent="#   ", break_long_words=True,
                          break_on_hyphens=False)
    if len(lines) > COMMENT_LINES:
        lines = [*lines[: COMMENT_LINES - 1], lines[COMMENT_LINES - 1][: width - 3] + "..."]
    return [indent + line for line in lines]


def _value_lines(item: Value, indent: str, commented: bool = False) -> list[str]:
    lines = []
    if item.source:
        lines += _comments(item.source, indent, "from ")
    if item.guess:
        lines += _comments(item.guess, indent, "GUESS: ")
    commented = commented or item.commented
    hash_ = "# " if commented else ""
    if item.children:
        lines.append(f"{indent}{hash_}{item.key}:")
        for child in item.children:
            lines += _value_lines(child, indent + "  ", commented)
    else:
        lines.append(f"{indent}{hash_}{item.key}: {_flow_style(item.value)}")
    return lines


def render(draft: TopologyDraft) -> str:
    """The draft as a commented topology file."""
    out = [
        f"# mailtrace topology for {draft.domain}, drafted by `mailtrace init` "
        f"({draft.version}) from DNS",
        f"# on {draft.drafted_at} through {', '.join(draft.resolvers)}.",
        "#",
        "# Each value says which record it comes from; a line marked GUESS is inferred from",
        "# it: check it. The API sections are commented out: fill them in to let mailtrace",
        "# ask the gateway and the tenant too (credentials stay in the environment).",
        "# Check the file with: mailtrace graph --topology THIS-FILE",
    ]
    for note in draft.notes:
        out += _comments(note, "", "NOTE: ")
    out += [
        "",
        f"topology: {_flow_style(draft.name)}",
        f"description: {_flow_style(f'Inbound mail for {draft.domain} (drafted from DNS)')}",
        f"domains: [{_flow_style(draft.domain)}]",
        "",
        "flow:",
        f"  - {draft.flow}",
        "",
        "tiers:",
    ]
    for tier in draft.tiers:
        out += ["", *_comments(tier.title, "  ", ""), f"  {tier.id}:", f"    kind: {tier.kind}"]
        for item in tier.values:
            out += _value_lines(item, "    ")
        out += [f"    {line}" if line else "" for line in tier.templates]
    return "\n".join(out) + "\n"


def check(text: str, source: str = "<draft>") -> Topology:
    """The rendered draft, loaded as any topology file is: a draft that does not load is
    a bug here, never the admin's to find."""
    return parse_topology(text, source)


def commented(*lines: str) -> tuple[str, ...]:
    """Template lines, commented out (an empty string stays an empty line)."""
    return tuple(f"# {line}" if line else "" for line in lines)
