"""A person's sign-in to Microsoft Graph, against the lab's identity platform stand-in
(the v2.0 device code and token endpoints, over HTTPS from a lab CA): azure-identity's own
device code flow and persistent cache, then silent tokens, refreshes, revocation, logout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailtrace.clients.msgraph import signin
from mailtrace.clients.msgraph.credentials import GraphConfigError, graph_target
from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.lab.ca import LabCA
from mailtrace.lab.graph_api import SignInStandIn

ACCESS_TOKEN = "lab-access-token-" + "x" * 32
LAB_GRAPH = GraphSettings(url="http://127.0.0.1:9/v1.0", auth="device-code",
                          tenant_id="contoso.onmicrosoft.com")


class Authority:
    """The stand-in on its own event loop thread (the sign-in client blocks: it is sync)."""

    def __init__(self, lifetime: int) -> None:
        self.ca = LabCA()
        tls = self.ca.issue("127.0.0.1", "localhost").server_context()
        self.stand_in = SignInStandIn(ACCESS_TOKEN, "admin@contoso.com",
                                      "contoso.onmicrosoft.com", tls, token_lifetime=lifetime)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.stand_in.start(), self.loop).result(10)

    def close(self) -> None:
        async def stop() -> None:
            await self.stand_in.stop()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:  # connections closing (a TLS goodbye is not waited for long)
                await asyncio.wait(others, timeout=1)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.ca.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # azure-identity keeps its cache under ~/.IdentityService: this test's home, not yours.
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _authority(lifetime: int = 3600) -> Iterator[Authority]:
    authority = Authority(lifetime)
    try:
        yield authority
    finally:
        authority.close()


@pytest.fixture
def authority() -> Iterator[Authority]:
    yield from _authority()


@pytest.fixture
def short_lived() -> Iterator[Authority]:
    # MSAL refreshes a token due within five minutes: every silent request refreshes.
    yield from _authority(lifetime=60)


def environ(home: Path, authority: Authority) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(home / ".config"),
            signin.AUTHORITY_ENV: f"https://{authority.stand_in.authority}"}


def place(env: dict[str, str]) -> signin.SignInPlace:
    return signin.place_of(LAB_GRAPH, env)


def sign_in(env: dict[str, str], authority: Authority, *, decline: bool = False,
            prompts: list[str] | None = None) -> tuple[signin.SignIn, Path]:
    def prompt(uri: str, code: str, expires: dt.datetime) -> None:
        # The person opens the page and enters the code (or declines).
        if prompts is not None:
            prompts.append(uri)
        assert authority.stand_in.enter_code(code, decline=decline)

    return signin.login(place(env), env, allow_unencrypted=True, prompt=prompt,
                        ca_file=authority.ca.ca_file, timeout=30)


def test_device_code_sign_in_is_recorded_then_tokens_come_silently(home, authority):
    env = environ(home, authority)
    prompts: list[str] = []
    done, path = sign_in(env, authority, prompts=prompts)
    assert prompts == [f"https://{authority.stand_in.authority}/devicelogin"]
    assert done.record.username == "admin@contoso.com"
    assert authority.stand_in.grants == {"urn:ietf:params:oauth:grant-type:device_code": 1}
    # The record names the account, never a token; only its owner can read it.
    assert path.parent == home / ".config" / "mailtrace" / "sign-in"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    assert ACCESS_TOKEN not in text and "refresh" not in text.lower()
    assert json.loads(text)["unencrypted_cache"] is True
    # The cache is azure-identity's persistent cache, a plain file of mode 0600 here.
    cache = signin.cache_file()
    assert cache == home / ".IdentityService" / "mailtrace.nocae"
    assert cache.stat().st_mode & 0o777 == 0o600 and ACCESS_TOKEN in cache.read_text()

    # Later runs: no prompt, no new device code. The first may refresh once (the sign-in
    # named the tenant by domain, the record by id, and MSAL caches per tenant id); the
    # next takes the cached token and asks nothing at all.
    scope = graph_target(LAB_GRAPH).scope
    for _ in range(2):
        credential = signin.signed_in(place(env), env, authority.ca.ca_file)
        assert credential.get_token(scope).token == ACCESS_TOKEN
        credential.close()
    grants = dict(authority.stand_in.grants)
    credential = signin.signed_in(place(env), env, authority.ca.ca_file)
    assert credential.get_token(scope).token == ACCESS_TOKEN
    assert dict(authority.stand_in.grants) == grants
    assert grants["urn:ietf:params:oauth:grant-type:device_code"] == 1
    assert len(authority.stand_in.codes) == 1


def test_an_expiring_token_is_refreshed_without_a_person(home, short_lived):
    env = environ(home, short_lived)
    sign_in(env, short_lived)
    credential = signin.signed_in(place(env), env, short_lived.ca.ca_file)
    assert credential.get_token(graph_target(LAB_GRAPH).scope).token == ACCESS_TOKEN
    assert short_lived.stand_in.grants["refresh_token"] >= 1
    assert len(short_lived.stand_in.codes) == 1  # still the one sign-in


def test_a_revoked_sign_in_says_to_sign_in_again_and_never_prompts(home, short_lived):
    env = environ(home, short_lived)
    sign_in(env, short_lived)
    short_lived.stand_in.revoke()
    credential = signin.signed_in(place(env), env, short_lived.ca.ca_file)
    with pytest.raises(signin.SignInExpired, match="mailtrace login"):
        credential.get_token(graph_target(LAB_GRAPH).scope)
    assert len(short_lived.stand_in.codes) == 1  # no device code was asked for


def test_a_declined_sign_in_fails_and_records_nothing(home, authority):
    from azure.core.exceptions import ClientAuthenticationError

    env = environ(home, authority)
    with pytest.raises(ClientAuthenticationError):
        sign_in(env, authority, decline=True)
    assert not signin.record_path(place(env), env).exists()
    with pytest.raises(signin.NotSignedIn, match="mailtrace login"):
        signin.signed_in(place(env), env)


def test_logout_takes_the_tokens_out_of_the_cache_and_the_record_away(home, authority):
    env = environ(home, authority)
    sign_in(env, authority)
    gone = signin.logout(place(env), env)
    assert gone is not None and gone.record.username == "admin@contoso.com"
    cache = json.loads(signin.cache_file().read_text())
    assert cache["RefreshToken"] == {} and cache["AccessToken"] == {}
    assert ACCESS_TOKEN not in signin.cache_file().read_text()
    assert not signin.record_path(place(env), env).exists()
    assert signin.logout(place(env), env) is None


def test_without_a_keyring_a_plain_file_cache_needs_consent(home, authority):
    if signin.keyring_problem() is None:
        pytest.skip("this machine has an OS keyring: the cache is encrypted")
    env = environ(home, authority)
    with pytest.raises(signin.KeyringUnavailable, match="plain file"):
        signin.login(place(env), env, allow_unencrypted=False,
                     prompt=lambda *a: pytest.fail("prompted before refusing"),
                     ca_file=authority.ca.ca_file)
    assert not signin.cache_file().exists()


def test_a_lab_graph_never_signs_in_at_a_real_authority():
    with pytest.raises(GraphConfigError, match="loopback authority"):
        signin.place_of(LAB_GRAPH, {})
    with pytest.raises(GraphConfigError, match="loopback authority"):
        signin.place_of(LAB_GRAPH, {signin.AUTHORITY_ENV: "https://login.microsoftonline.com"})
    real = GraphSettings(url="https://graph.microsoft.com/v1.0", auth="device-code",
                         tenant="contoso.onmicrosoft.com")
    assert signin.place_of(real, {}) == (
        signin.SignInPlace("login.microsoftonline.com", "contoso.onmicrosoft.com",
                           signin.DEFAULT_CLIENT_ID, "https://graph.microsoft.com/.default",
                           "graph.microsoft.com"))
