"""``mailtrace login`` and ``mailtrace logout``: a person signs in to Microsoft Graph once,
and every triage after signs in silently.

Exit codes: 0 signed in (or out); 1 the sign-in failed (declined, timed out, refused);
2 usage or configuration (no tier a person signs in to, no keyring and no consent to a
plain-file cache).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError

if TYPE_CHECKING:
    from mailtrace.topology.model import ExchangeOnlineTier, Topology


def add_parsers(sub: Any) -> dict[str, Any]:
    login = sub.add_parser("login", help="sign in to Microsoft Graph once (device code or "
                           "browser); triage then signs in silently")
    opt.add_topology(login)
    _tier(login)
    login.add_argument("--browser", action="store_true",
                       help="sign in in a browser on this machine instead of with a device code")
    login.add_argument("--allow-unencrypted-cache", action="store_true",
                       help="where no OS keyring can encrypt the token cache, keep it in a "
                       "plain file only you can read (mode 0600)")
    opt.add_ca_file(login, "trust these CA certificates for the sign-in service")
    opt.add_lab_file(login)
    login.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for the sign-in (default 300)")
    login.set_defaults(resolver=[], connect_to=[])

    logout = sub.add_parser("logout", help="forget a sign-in: its tokens and its record")
    opt.add_topology(logout)
    _tier(logout)
    opt.add_lab_file(logout)
    logout.set_defaults(resolver=[], connect_to=[], ca_file=None)
    return {"login": cmd_login, "logout": cmd_logout}


def _tier(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tier", metavar="ID",
                   help="only this Exchange Online tier (default: every one a person signs "
                   "in to)")


def _tiers(topology: Topology, only: str | None) -> list[tuple[str, ExchangeOnlineTier]]:
    """The Exchange Online tiers whose Graph access is a person's sign-in."""
    from mailtrace.clients.msgraph.signin import DELEGATED
    from mailtrace.topology.model import ExchangeOnlineTier

    graph = [(tid, t) for tid, t in topology.tiers.items()
             if isinstance(t, ExchangeOnlineTier) and t.graph is not None
             and (only is None or tid == only)]
    chosen = [(tid, t) for tid, t in graph if t.graph is not None and t.graph.auth in DELEGATED]
    if chosen:
        return chosen
    if only is not None and only not in topology.tiers:
        raise UsageError(f"--tier {only}: no such tier in topology {topology.topology}")
    if graph:
        kinds = ", ".join(f"{tid} (auth {t.graph.auth})" for tid, t in graph if t.graph)
        raise UsageError(f"no person signs in to Graph here: {kinds} signs in as itself. "
                         "Declare auth: device-code for an admin's own sign-in")
    raise UsageError(f"topology {topology.topology} declares no graph: with auth device-code"
                     " on an Exchange Online tier: nothing to sign in to")


def _prompt(tier: str) -> Any:
    def prompt(uri: str, code: str, expires: dt.datetime) -> None:
        # stderr, so that stdout stays for the result; the code is no secret: it is useless
        # without the person's own sign-in at that page.
        until = expires.astimezone(dt.UTC).strftime("%H:%M UTC")
        print(f"mailtrace: to sign in to Microsoft Graph for tier {tier}, open {uri} and "
              f"enter the code {code} (valid until {until})", file=sys.stderr, flush=True)
    return prompt


def cmd_login(args: argparse.Namespace) -> int:
    from azure.core.exceptions import ClientAuthenticationError

    from mailtrace.clients.msgraph import signin
    from mailtrace.clients.msgraph.credentials import GraphConfigError
    from mailtrace.engine.clients import graph_settings

    timeout = opt.positive(args.timeout)
    topology = opt.load_topology(args.topology)
    tiers = _tiers(topology, args.tier)
    with opt.network(args) as network:
        for tier_id, tier in tiers:
            assert tier.graph is not None
            try:
                place = signin.place_of(graph_settings(tier.graph, tier.tenant),
                                        network.environ)
                done, path = signin.login(
                    place, network.environ, allow_unencrypted=args.allow_unencrypted_cache,
                    prompt=_prompt(tier_id), browser=args.browser, ca_file=network.ca_file,
                    timeout=int(timeout))
            except signin.KeyringUnavailable as exc:
                raise UsageError(f"{exc}: pass --allow-unencrypted-cache") from None
            except GraphConfigError as exc:
                raise UsageError(f"tier {tier_id}: {exc}") from None
            except ClientAuthenticationError as exc:
                print(f"mailtrace: the sign-in for tier {tier_id} failed: "
                      f"{_first_line(exc.message)}", file=sys.stderr)
                return 1
            record = done.record
            kept = ("a plain file only you can read (mode 0600)" if done.unencrypted_cache
                    else "encrypted by the OS keyring")
            opt.write(f"signed in as {record.username} (tenant {record.tenant_id}) for tier "
                      f"{tier_id}\n  record: {path}\n  token cache: {signin.cache_file()}, "
                      f"{kept}\n  triage now signs in silently; `mailtrace logout "
                      f"--topology {args.topology}` forgets it\n")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from mailtrace.clients.msgraph import signin
    from mailtrace.clients.msgraph.credentials import GraphConfigError
    from mailtrace.engine.clients import graph_settings

    topology = opt.load_topology(args.topology)
    with opt.network(args) as network:
        for tier_id, tier in _tiers(topology, args.tier):
            assert tier.graph is not None
            try:
                place = signin.place_of(graph_settings(tier.graph, tier.tenant),
                                        network.environ)
                gone = signin.logout(place, network.environ)
            except GraphConfigError as exc:
                raise UsageError(f"tier {tier_id}: {exc}") from None
            if gone is None:
                opt.write(f"tier {tier_id}: not signed in\n")
            else:
                opt.write(f"tier {tier_id}: signed out {gone.record.username}; its tokens "
                          "left the cache and its record was removed\n")
    return 0


def _first_line(text: str | None) -> str:
    return (text or "no reason given").strip().splitlines()[0][:300]
