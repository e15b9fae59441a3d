"""The lookup tree of a domain's SPF record: every term that costs one of the 10 DNS
lookups (RFC 7208 §4.6.4), followed through include and redirect whatever the client
IP, so the cost of each include shows; and how many lookups were void.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mailtrace.mailauth.lookup import Answer, Lookup, absolute
from mailtrace.mailauth.spf_record import (
    QUALIFIERS,
    SpfSyntaxError,
    has_macros,
    is_spf,
    parse_record,
)

MAX_LOOKUPS = 10
MAX_VOID = 2
MAX_NAMES = 10  # MX names per mx term, PTR names per ptr term (RFC 7208 §4.6.4)


def select_record(answer: Answer) -> tuple[str | None, str | None]:
    """RFC 7208 §4.5: (the one SPF record, or None; a problem when there are several)."""
    records = [text for text in answer.data if is_spf(text)]
    if len(records) > 1:
        return None, f"{len(records)} SPF records at {answer.name.rstrip('.')}"
    return (records[0] if records else None), None


@dataclass
class Node:
    """One term of the lookup tree: what it cost, and the record an include leads to."""

    term: str
    domain: str
    cost: int = 0
    void: bool = False
    record: str | None = None
    children: list[Node] = field(default_factory=list)
    note: str | None = None
    matched: bool = False  # this term decided its record's result

    def match_path(self) -> str | None:
        """The matching terms from here down, e.g. "include:x > ip4:192.0.2.0/24"."""
        hit = next((c for c in self.children if c.matched), None)
        if hit is None:
            return None
        below = hit.match_path()
        return f"{hit.term} > {below}" if below else hit.term

    @property
    def total(self) -> int:
        return self.cost + sum(child.total for child in self.children)

    @property
    def voids(self) -> int:
        return int(self.void) + sum(child.voids for child in self.children)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"term": self.term, "domain": self.domain, "cost": self.cost,
                               "total": self.total}
        if self.void:
            out["void"] = True
        if self.record is not None:
            out["record"] = self.record
        if self.note:
            out["note"] = self.note
        if self.children:
            out["children"] = [c.as_json() for c in self.children]
        return out

    def lines(self, indent: str = "") -> list[str]:
        own = f"{indent}{self.term}  [{self.total} lookup{'s' if self.total != 1 else ''}]"
        if self.void:
            own += " void"
        if self.note:
            own += f" ({self.note})"
        out = [own]
        for child in self.children:
            out.extend(child.lines(indent + "  "))
        return out


class Problem(NamedTuple):
    """Something that makes the tree (and a receiver's evaluation) go wrong."""

    kind: str  # missing-root, several, syntax, loop, include-missing, mx-limit, lookups, voids
    name: str  # the domain (or host) concerned
    detail: str
    term: str = ""  # the term that led there, e.g. "include:x" or "redirect=x"

    @property
    def via(self) -> str:
        """The mechanism or modifier that led there: "include", "redirect", "mx"..."""
        text = self.term.lstrip("".join(QUALIFIERS))
        for sep in (":", "=", "/"):
            text = text.split(sep, 1)[0]
        return text.lower()


@dataclass(frozen=True)
class EffectiveAll:
    """The ``all`` that decides for every host a domain's SPF does not list.

    RFC 7208 §6.1: ``redirect=`` applies only when the record has no ``all`` mechanism,
    and the domain's result is then the target record's — so is its ``all``, followed
    through every redirect. ``term`` None: there is none at the end of the chain, and
    hosts no term matches get neutral, as with ``?all`` (RFC 7208 §4.7)."""

    term: str | None  # as published, e.g. "-all", "+all", "all"
    record: str  # the domain whose record holds it (the domain itself, or a redirect target)

    @property
    def result(self) -> str:
        """What the hosts the record does not list get: pass, fail, softfail or neutral."""
        if self.term is None:
            return "neutral"
        return QUALIFIERS.get(self.term[0], "pass")


@dataclass(frozen=True)
class SpfTree:
    """Every DNS-querying term of a domain's SPF, followed through include and redirect."""

    domain: str
    record: str | None
    tree: Node
    problems: tuple[Problem, ...]
    error: str | None = None  # temporary failure: the tree is incomplete
    long_records: tuple[tuple[str, int], ...] = ()

    def terms(self) -> set[str]:
        """Every term text of every record in the tree (lowercase)."""
        out: set[str] = set()
        stack = [self.tree]
        while stack:
            node = stack.pop()
            if node.record:
                out.update(t.lower() for t in node.record.split()[1:])
            stack.extend(node.children)
        return out

    def effective_all(self) -> EffectiveAll | None:
        """The domain's effective ``all``, through ``redirect=`` (RFC 7208 §6.1); None when
        it cannot be told (a redirect with macros, or whose target could not be read: the
        problems say why)."""
        node, name = self.tree, self.domain
        while node.record is not None:
            try:
                record = parse_record(node.record)
            except SpfSyntaxError:
                return None
            if record.all is not None:
                return EffectiveAll(record.all.text, name)
            if record.redirect is None:
                return EffectiveAll(None, name)
            term = f"redirect={record.redirect}"
            child = next((c for c in node.children if c.term == term), None)
            if child is None or has_macros(record.redirect):
                return None
            node, name = child, record.redirect.rstrip(".").lower()
        return None

    @property
    def lookups(self) -> int:
        return self.tree.total

    @property
    def voids(self) -> int:
        return self.tree.voids

    def as_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "record": self.record, "lookups": self.lookups,
                "void_lookups": self.voids,
                "problems": [{"kind": p.kind, "name": p.name, "detail": p.detail,
                              "term": p.term} for p in self.problems],
                "error": self.error, "tree": self.tree.as_json()}


async def lookup_tree(lookup: Lookup, domain: str) -> SpfTree:
    """Count every term that costs a DNS lookup (as a receiver that matches nothing
    would), include by include, so the cost of each include shows. Sibling includes are
    fetched concurrently. Targets with macros cost one lookup and are not followed
    (they depend on the sender)."""
    domain = domain.rstrip(".").lower()
    root = Node(domain, domain)
    problems: list[Problem] = []
    errors: list[str] = []
    long_records: list[tuple[str, int]] = []

    async def walk(name: str, node: Node, chain: frozenset[str]) -> None:
        key = absolute(name)
        led_by = "" if node is root else node.term
        if key in chain:
            problems.append(Problem("loop", name, f"{led_by} leads back to {name}, already "
                                    "being evaluated", led_by))
            node.note = "loop"
            return
        answer = await lookup(key, "TXT")
        if answer.status == "error":
            errors.append(f"{name} TXT: {answer.error}")
            node.note = "lookup failed"
            return
        text, several = select_record(answer)
        if several:
            problems.append(Problem("several", name, several, led_by))
            node.note = several
            return
        if text is None:
            node.note = "no SPF record"
            problems.append(Problem("missing-root" if node is root else "include-missing",
                                    name, f"{name}: {answer.status}", led_by))
            return
        node.record = text
        if len(text.encode("latin-1", "replace")) > 450:
            long_records.append((name, len(text)))
        try:
            record = parse_record(text)
        except SpfSyntaxError as exc:
            problems.append(Problem("syntax", name, exc.message + (
                f" in {exc.term!r}" if exc.term else ""), led_by))
            node.note = "syntax error"
            return
        pending = []
        for mech in record.mechanisms:
            child = Node(mech.text, name)
            node.children.append(child)
            if not mech.costs_lookup:
                continue
            child.cost = 1
            spec = mech.domain_spec
            if spec is not None and has_macros(spec):
                child.note = "macro: depends on the sender"
                continue
            target = spec or name
            pending.append(term(mech.name, target, child, chain | {key}))
        if record.redirect is not None:
            child = Node(f"redirect={record.redirect}", name, cost=1)
            node.children.append(child)
            if record.all is not None:
                child.note = "ignored: the record has an 'all' mechanism"
                child.cost = 0
            elif has_macros(record.redirect):
                child.note = "macro: depends on the sender"
            else:
                pending.append(walk(record.redirect, child, chain | {key}))
        await asyncio.gather(*pending)

    async def term(kind: str, target: str, node: Node, chain: frozenset[str]) -> None:
        if kind == "include":
            await walk(target, node, chain)
            return
        if kind == "ptr":
            node.note = "ptr is deprecated (RFC 7208 §5.5)"
            return
        rdtype = {"a": "A", "exists": "A", "mx": "MX"}[kind]
        answer = await lookup(absolute(target), rdtype)
        if answer.status == "error":
            errors.append(f"{target} {rdtype}: {answer.error}")
            return
        if kind == "a" and not answer.data:
            aaaa = await lookup(absolute(target), "AAAA")
            answer = aaaa if aaaa.data else answer
        node.void = answer.void
        if kind == "mx" and len(answer.data) > MAX_NAMES:
            problems.append(Problem("mx-limit", target, f"{target} has {len(answer.data)} "
                                    f"MX names (limit {MAX_NAMES})", node.term))

    await walk(domain, root, frozenset())
    if root.total > MAX_LOOKUPS:
        problems.append(Problem("lookups", domain,
                                f"{root.total} DNS lookups, more than {MAX_LOOKUPS}"))
    if root.voids > MAX_VOID:
        problems.append(Problem("voids", domain,
                                f"{root.voids} void lookups, more than {MAX_VOID}"))
    return SpfTree(domain, root.record, root, tuple(problems),
                   "; ".join(errors) if errors else None, tuple(long_records))
