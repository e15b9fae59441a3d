"""SPF ``check_host()`` (RFC 7208 §4): the result for one client IP, sender and domain.

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
from dataclasses import dataclass
from typing import Any

from mailtrace.core.evidence import Evidence
from mailtrace.mailauth.lookup import Answer, Lookup, absolute, valid_name
from mailtrace.mailauth.spf_record import (
    MacroEnv,
    Mechanism,
    SpfRecord,
    SpfSyntaxError,
    expand,
    parse_record,
    shorten,
    uses_p_macro,
)
from mailtrace.mailauth.spf_tree import (
    MAX_LOOKUPS,
    MAX_NAMES,
    MAX_VOID,
    Node,
    select_record,
)

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


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
    evidence: tuple[Evidence, ...] = ()

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
            raise _PermError(f"loop: {node.term} leads back to {domain.rstrip('.')}, already "
                             "being evaluated")
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
            child.matched = True  # RFC 7208 §6.1: the target's result is the domain's
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
