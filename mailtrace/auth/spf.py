"""SPF ``check_host()`` (RFC 7208 §4) and the lookup tree of a domain's SPF record.

The evaluation is sequential as the RFC defines it — terms in order, the first match
wins, the 10 DNS-querying terms limit (§4.6.4), the 2 void lookups limit, 10 names per
``mx`` and ``ptr`` (§4.6.4, §5.5) — but lookups are *prefetched*: as soon as a record is
parsed, the records of its includes and the addresses its ``a``/``mx`` terms name are
asked concurrently, so waiting follows the include tree's depth rather than its size.
A prefetched answer is only used when the sequential evaluation reaches its term, and
only then counted: the result never depends on prefetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from mailtrace.auth.lookup import Answer, Lookup, absolute, valid_name
from mailtrace.auth.spf_record import (
    MacroEnv,
    Mechanism,
    SpfRecord,
    SpfSyntaxError,
    expand,
    has_macros,
    is_spf,
    parse_record,
    shorten,
    uses_p_macro,
)

MAX_LOOKUPS = 10
MAX_VOID = 2
MAX_NAMES = 10  # MX names per mx term, PTR names per ptr term (RFC 7208 §4.6.4)
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


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


@dataclass(frozen=True)
class SpfResult:
    result: str
    domain: str
    ip: str
    explanation: str | None = None
    problem: str | None = None  # why permerror / temperror / none
    lookups: int = 0
    void_lookups: int = 0
    tree: Node | None = None
    matched: str | None = None  # the term that decided, e.g. "include:spf.example"
    evidence: tuple[dict[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"result": self.result, "domain": self.domain, "ip": self.ip,
                "matched": self.matched, "problem": self.problem,
                "explanation": self.explanation, "lookups": self.lookups,
                "void_lookups": self.void_lookups,
                "tree": self.tree.as_json() if self.tree else None}


class _Fetcher:
    """Shared answers for one evaluation; prefetching starts tasks, evaluation awaits."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.tasks: dict[tuple[str, str], asyncio.Task[Answer]] = {}
        self.answers: list[Answer] = []
        self.prefetched_records: set[str] = set()
        self.prefetch_budget = 4 * MAX_LOOKUPS

    def start(self, name: str, rdtype: str) -> asyncio.Task[Answer]:
        key = (absolute(name), rdtype)
        task = self.tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self.lookup(key[0], rdtype))
            self.tasks[key] = task
        return task

    async def get(self, name: str, rdtype: str) -> Answer:
        answer = await self.start(name, rdtype)
        self.answers.append(answer)
        return answer

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()


def select_record(answer: Answer) -> tuple[str | None, str | None]:
    """RFC 7208 §4.5: (the one SPF record, or None; a problem when there are several)."""
    records = [text for text in answer.data if is_spf(text)]
    if len(records) > 1:
        return None, f"{len(records)} SPF records at {answer.name.rstrip('.')}"
    return (records[0] if records else None), None


def _ip_matches(ip: IP, addresses: tuple[str, ...], cidr4: int, cidr6: int) -> bool:
    for text in addresses:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            continue
        if addr.version != ip.version:
            continue
        prefix = cidr4 if addr.version == 4 else cidr6
        if ip in ipaddress.ip_network(f"{addr}/{prefix}", strict=False):
            return True
    return False


def _client_ip(text: str) -> IP:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # an IPv4 client on an IPv6 socket is an IPv4 client
    return ip


class _Evaluation:
    def __init__(self, lookup: Lookup, ip: IP, sender: str, helo: str) -> None:
        self.fetch = _Fetcher(lookup)
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.lookups = 0
        self.voids = 0
        self.explanation: str | None = None
        self.in_effect: tuple[SpfRecord, str] | None = None

    @property
    def addr_type(self) -> str:
        return "A" if self.ip.version == 4 else "AAAA"

    def env(self, domain: str) -> MacroEnv:
        return MacroEnv(self.sender, domain.rstrip("."), self.ip, self.helo)

    # -- accounting ------------------------------------------------------------------------

    def _count(self, node: Node) -> None:
        self.lookups += 1
        node.cost = 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(f"more than {MAX_LOOKUPS} DNS lookups (RFC 7208 §4.6.4)")

    def _void(self, answer: Answer, node: Node) -> None:
        if answer.void:
            node.void = True
            self.voids += 1
            if self.voids > MAX_VOID:
                raise _PermError(f"more than {MAX_VOID} void lookups (RFC 7208 §4.6.4)")

    async def _answer(self, name: str, rdtype: str) -> Answer:
        answer = await self.fetch.get(name, rdtype)
        if answer.status == "error":
            raise _TempError(f"{name.rstrip('.')} {rdtype}: {answer.error}")
        return answer

    # -- records ---------------------------------------------------------------------------

    async def record(self, domain: str) -> tuple[SpfRecord | None, str | None]:
        """The domain's SPF record, (None, why) when it has none."""
        answer = await self._answer(domain, "TXT")
        if answer.status == "nxdomain":
            return None, f"{domain.rstrip('.')} does not exist"
        text, problem = select_record(answer)
        if problem:
            raise _PermError(problem)
        if text is None:
            return None, f"{domain.rstrip('.')} publishes no SPF record"
        try:
            return parse_record(text), None
        except SpfSyntaxError as exc:
            raise _PermError(f"{domain.rstrip('.')}: {exc.message}"
                             + (f" in {exc.term!r}" if exc.term else "")) from None

    def target(self, spec: str | None, domain: str, validated: str = "unknown") -> str:
        if spec is None:
            return domain
        env = self.env(domain)
        if validated != "unknown":
            env = MacroEnv(env.sender, env.domain, env.ip, env.helo, validated)
        try:
            return shorten(expand(spec, env))
        except SpfSyntaxError as exc:
            raise _PermError(exc.message) from None

    async def validated(self, domain: str) -> str:
        """The %{p} value (RFC 7208 §7.3): a validated name of the client, the domain
        itself or a subdomain of it when there is one, else "unknown"."""
        names = await self.validated_names()
        want = absolute(domain)
        for name in names:
            if name == want or name.endswith("." + want):
                return name.rstrip(".")
        return names[0].rstrip(".") if names else "unknown"

    async def resolve_target(self, spec: str | None, domain: str) -> str:
        if spec is not None and uses_p_macro(spec):
            return self.target(spec, domain, await self.validated(domain))
        return self.target(spec, domain)

    def prefetch(self, record: SpfRecord, domain: str, chain: frozenset[str]) -> None:
        """Start the lookups this record's terms may need (never counted, never judged)."""
        for mech in record.mechanisms:
            if self.fetch.prefetch_budget <= 0:
                return
            if not mech.costs_lookup or (mech.domain_spec and uses_p_macro(mech.domain_spec)):
                continue
            try:
                name = self.target(mech.domain_spec, domain)
            except _PermError:
                continue
            if not valid_name(name):
                continue
            self.fetch.prefetch_budget -= 1
            if mech.name == "include":
                self._prefetch_record(name, chain)
            elif mech.name == "a":
                self.fetch.start(name, self.addr_type)
            elif mech.name == "exists":
                self.fetch.start(name, "A")
            elif mech.name == "mx":
                self._prefetch_mx(name)
        if record.redirect and not uses_p_macro(record.redirect):
            with contextlib.suppress(_PermError):
                self._prefetch_record(self.target(record.redirect, domain), chain)

    def _prefetch_record(self, name: str, chain: frozenset[str]) -> None:
        key = absolute(name)
        if key in chain or key in self.fetch.prefetched_records or not valid_name(name):
            return
        self.fetch.prefetched_records.add(key)
        task = self.fetch.start(name, "TXT")

        def parsed(done: asyncio.Task[Answer]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            text, problem = select_record(done.result())
            if text is None or problem:
                return
            try:
                self.prefetch(parse_record(text), key, chain | {key})
            except SpfSyntaxError:
                return

        task.add_done_callback(parsed)

    def _prefetch_mx(self, name: str) -> None:
        task = self.fetch.start(name, "MX")

        def hosts(done: asyncio.Task[Answer]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            for data in done.result().data[:MAX_NAMES]:
                host = data.partition(" ")[2]
                if valid_name(host):
                    self.fetch.start(host, self.addr_type)

        task.add_done_callback(hosts)

    # -- check_host --------------------------------------------------------------------------

    async def check_host(self, domain: str, node: Node, chain: frozenset[str], *,
                         top: bool = False) -> str:
        """The result for ``domain``; raises _PermError/_TempError. ``node`` collects the
        terms evaluated; ``chain`` holds the domains of the includes above (loops).
        ``top``: this record's exp= is the one in effect (the first record, or one it
        redirects to; never an included one — RFC 7208 §6.2)."""
        domain = absolute(domain)
        if domain in chain:
            raise _PermError(f"include/redirect loop through {domain.rstrip('.')}")
        chain = chain | {domain}
        record, why = await self.record(domain)
        if record is None:
            node.note = why
            return "none"
        node.record = record.text
        if top:
            self.in_effect = (record, domain)
        self.prefetch(record, domain, chain)
        for mech in record.mechanisms:
            child = Node(mech.text, domain.rstrip("."))
            node.children.append(child)
            if await self.mechanism(mech, domain, child, chain):
                child.matched = True
                return mech.result
        if record.redirect is not None and record.all is None:
            child = Node(f"redirect={record.redirect}", domain.rstrip("."))
            node.children.append(child)
            self._count(child)
            target = await self.resolve_target(record.redirect, domain)
            if not valid_name(target):
                raise _PermError(f"redirect to an invalid domain {target!r}")
            result = await self.check_host(target, child, chain, top=top)
            if result == "none":
                raise _PermError(f"redirect target {target} has no SPF record")
            return result
        return "neutral"

    async def mechanism(self, mech: Mechanism, domain: str, node: Node,
                        chain: frozenset[str]) -> bool:
        name = mech.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            assert mech.network is not None
            return mech.network.version == self.ip.version and self.ip in mech.network
        self._count(node)
        target = await self.resolve_target(mech.domain_spec, domain)
        if name == "include":
            if not valid_name(target):
                raise _PermError(f"include of an invalid domain {target!r}")
            result = await self.check_host(target, node, chain)
            if result == "none":
                raise _PermError(f"include:{target.rstrip('.')} has no SPF record")
            return result == "pass"
        if not valid_name(target):
            return False
        if name == "a":
            answer = await self._answer(target, self.addr_type)
            self._void(answer, node)
            return _ip_matches(self.ip, answer.data, mech.cidr4, mech.cidr6)
        if name == "exists":
            answer = await self._answer(target, "A")
            self._void(answer, node)
            return bool(answer.data)
        if name == "mx":
            return await self._mx(target, mech, node)
        return await self._ptr(target, node)

    async def _mx(self, target: str, mech: Mechanism, node: Node) -> bool:
        answer = await self._answer(target, "MX")
        self._void(answer, node)
        hosts = [data.partition(" ")[2] for data in answer.data]
        if len(hosts) > MAX_NAMES:
            raise _PermError(f"{target.rstrip('.')} has {len(hosts)} MX names, more than "
                             f"{MAX_NAMES} (RFC 7208 §4.6.4)")
        tasks = [self.fetch.get(h, self.addr_type) for h in hosts if valid_name(h)]
        for addresses in await asyncio.gather(*tasks):
            if addresses.status == "error":
                raise _TempError(f"{addresses.name} {addresses.rdtype}: {addresses.error}")
            if _ip_matches(self.ip, addresses.data, mech.cidr4, mech.cidr6):
                return True
        return False

    async def validated_names(self) -> list[str]:
        """RFC 7208 §5.5: PTR names of the client whose addresses include it."""
        reverse = self.ip.reverse_pointer
        answer = await self.fetch.get(reverse, "PTR")
        if answer.status != "answer":
            return []
        names = [absolute(d) for d in answer.data[:MAX_NAMES] if valid_name(d)]
        checks = await asyncio.gather(*(self.fetch.get(n, self.addr_type) for n in names))
        return [n for n, a in zip(names, checks, strict=True)
                if a.status == "answer" and _ip_matches(self.ip, a.data, 32, 128)]

    async def _ptr(self, target: str, node: Node) -> bool:
        reverse = self.ip.reverse_pointer
        answer = await self.fetch.get(reverse, "PTR")
        if answer.status == "error":
            return False  # RFC 7208 §5.5: a DNS error here means no match
        self._void(answer, node)
        want = absolute(target)
        for name in await self.validated_names():
            if name == want or name.endswith("." + want):
                return True
        return False

    async def explain(self) -> str | None:
        """RFC 7208 §6.2: the exp= text for a fail; any problem means no explanation."""
        if self.in_effect is None:
            return None
        record, domain = self.in_effect
        domain = domain.rstrip(".")
        try:
            if record.exp is None:
                return None
            name = await self.resolve_target(record.exp, domain)
            answer = await self.fetch.get(name, "TXT")
            if answer.status != "answer" or len(answer.data) != 1:
                return None
            text = answer.data[0]
            if not text.isascii():
                return None
            env = self.env(domain)
            if uses_p_macro(text):
                env = MacroEnv(env.sender, env.domain, env.ip, env.helo,
                               await self.validated(domain))
            return expand(text, env, exp=True)
        except (SpfSyntaxError, _PermError):
            return None


async def check_host(lookup: Lookup, ip: str, domain: str, sender: str,
                     helo: str = "unknown") -> SpfResult:
    """RFC 7208 §4: the SPF result for mail from ``sender`` at ``ip`` for ``domain``.

    ``sender`` is the MAIL FROM address (``postmaster@<helo>`` when it is empty).
    """
    client = _client_ip(ip)
    domain = domain.rstrip(".").lower()
    if "@" not in sender:
        sender = f"postmaster@{sender or domain}"
    elif sender.startswith("@"):
        sender = "postmaster" + sender
    tree = Node(domain, domain)
    run = _Evaluation(lookup, client, sender, helo)

    def done(result: str, problem: str | None = None) -> SpfResult:
        return SpfResult(result, domain, str(client), run.explanation, problem, run.lookups,
                         run.voids, tree, tree.match_path(),
                         tuple(a.evidence() for a in run.fetch.answers))

    # RFC 7208 §4.3: a malformed domain, or one that is not fully qualified, is "none".
    if not valid_name(domain) or "." not in domain:
        return done("none", f"{domain!r} is not a valid fully qualified domain")
    try:
        result = await run.check_host(domain, tree, frozenset(), top=True)
        if result == "none":
            return done("none", tree.note)
        if result == "fail":
            run.explanation = await run.explain()
        return done(result)
    except _PermError as exc:
        return done("permerror", str(exc))
    except _TempError as exc:
        return done("temperror", str(exc))
    finally:
        run.fetch.close()


# -- the lookup tree of a record, whatever the client IP ------------------------------------


@dataclass(frozen=True)
class SpfTree:
    """Every DNS-querying term of a domain's SPF, followed through include and redirect."""

    domain: str
    record: str | None
    tree: Node
    #: (kind, name, detail): kind is one of missing-root, several, syntax, loop,
    #: include-missing, mx-limit, lookups, voids
    problems: tuple[tuple[str, str, str], ...]
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

    @property
    def lookups(self) -> int:
        return self.tree.total

    @property
    def voids(self) -> int:
        return self.tree.voids

    def as_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "record": self.record, "lookups": self.lookups,
                "void_lookups": self.voids,
                "problems": [{"kind": k, "name": n, "detail": d} for k, n, d in self.problems],
                "error": self.error, "tree": self.tree.as_json()}


async def lookup_tree(lookup: Lookup, domain: str) -> SpfTree:
    """Count every term that costs a DNS lookup (as a receiver that matches nothing
    would), include by include, so the cost of each include shows. Sibling includes are
    fetched concurrently. Targets with macros cost one lookup and are not followed
    (they depend on the sender)."""
    domain = domain.rstrip(".").lower()
    root = Node(domain, domain)
    problems: list[tuple[str, str, str]] = []
    errors: list[str] = []
    long_records: list[tuple[str, int]] = []

    async def walk(name: str, node: Node, chain: frozenset[str]) -> None:
        key = absolute(name)
        if key in chain:
            problems.append(("loop", name, f"{name} includes itself again"))
            node.note = "loop"
            return
        answer = await lookup(key, "TXT")
        if answer.status == "error":
            errors.append(f"{name} TXT: {answer.error}")
            node.note = "lookup failed"
            return
        text, several = select_record(answer)
        if several:
            problems.append(("several", name, several))
            node.note = several
            return
        if text is None:
            node.note = "no SPF record"
            problems.append(("missing-root" if node is root else "include-missing", name,
                             f"{name}: {answer.status}"))
            return
        node.record = text
        if len(text.encode("latin-1", "replace")) > 450:
            long_records.append((name, len(text)))
        try:
            record = parse_record(text)
        except SpfSyntaxError as exc:
            problems.append(("syntax", name, exc.message + (f" in {exc.term!r}"
                                                            if exc.term else "")))
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
            problems.append(("mx-limit", target,
                             f"{target} has {len(answer.data)} MX names (limit {MAX_NAMES})"))

    await walk(domain, root, frozenset())
    if root.total > MAX_LOOKUPS:
        problems.append(("lookups", domain, f"{root.total} DNS lookups, more than {MAX_LOOKUPS}"))
    if root.voids > MAX_VOID:
        problems.append(("voids", domain, f"{root.voids} void lookups, more than {MAX_VOID}"))
    return SpfTree(domain, root.record, root, tuple(problems),
                   "; ".join(errors) if errors else None, tuple(long_records))
