"""A person's sign-in to Microsoft Graph: once, interactively (``mailtrace login``), then
silently for every run — the way ``Connect-MgGraph`` and ``Connect-ExchangeOnline`` work
for an admin, and never a prompt inside a probe's deadline.

``login`` runs azure-identity's device code flow (or, with ``browser``, its interactive
browser flow) with a persistent token cache (``TokenCachePersistenceOptions``, named
``mailtrace``: libsecret on Linux, the Keychain on macOS, DPAPI on Windows; kept by
azure-identity under ``~/.IdentityService``) and writes the :class:`AuthenticationRecord`
it returns — the account, tenant and authority, no secret — to the user's config folder
(``$XDG_CONFIG_HOME/mailtrace/sign-in/``, mode 0600). A run builds the same credential
with that record and ``disable_automatic_authentication``: a token comes from the cache
or a refresh, and when neither works the probe is *not tested*, saying to sign in again.

Where no OS keyring can encrypt the cache (a server, an SSH session: libsecret needs a
desktop session), the cache is a plain file only with the admin's explicit consent
(``allow_unencrypted``), created with mode 0600 (reference: azure-identity
"Persistent token caching"; msal-extensions' FilePersistence).

The authority follows the Graph host's cloud; azure-identity's own AZURE_AUTHORITY_HOST
(read from the run's environment) overrides it — the lab's stand-in is reached that way.
A loopback Graph (the lab) signs in only at a loopback authority: a lab topology never
sends a person to a real sign-in page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mailtrace.clients.msgraph.credentials import GraphConfigError, graph_target
from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.core.network import is_loopback

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken
    from azure.identity import AuthenticationRecord, TokenCachePersistenceOptions

#: azure-identity's documented variable for the sign-in authority host.
AUTHORITY_ENV = "AZURE_AUTHORITY_HOST"
#: The persistent cache's name: mailtrace's tokens apart from other tools'.
CACHE_NAME = "mailtrace"
#: The sign-in methods of a person, made with `mailtrace login`.
DELEGATED = frozenset({"device-code"})
#: azure-identity's client for developer sign-in (Azure CLI's public client), used when
#: the tier names none.
DEFAULT_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

Prompt = Callable[[str, str, dt.datetime], None]


class NotSignedIn(GraphConfigError):
    """No sign-in recorded for this tier's Graph: run ``mailtrace login``."""


class SignInExpired(Exception):
    """The recorded sign-in no longer gives a token silently (expired, revoked)."""


class KeyringUnavailable(GraphConfigError):
    """No OS keyring can encrypt the token cache, and a plain file was not allowed."""


@dataclass(frozen=True)
class SignInPlace:
    """Where a person signs in for a tier's Graph, and what for."""

    authority: str  # host[:port] of the identity platform
    tenant: str  # the tenant id or initial domain; "organizations" when unknown
    client_id: str
    scope: str  # the Graph host's .default scope
    graph_host: str

    @property
    def key(self) -> str:
        """A file name: readable, and unique per authority, tenant, client and Graph."""
        digest = hashlib.sha256("|".join((self.authority, self.tenant, self.client_id,
                                          self.graph_host)).encode()).hexdigest()[:12]
        slug = re.sub(r"[^a-z0-9.-]+", "-", self.tenant.lower()).strip("-") or "tenant"
        return f"{slug}-{digest}"


def place_of(settings: GraphSettings, environ: Mapping[str, str]) -> SignInPlace:
    """Where the tier's person signs in: the authority (``AZURE_AUTHORITY_HOST`` wins),
    tenant, app and scope."""
    target = graph_target(settings)
    override = (environ.get(AUTHORITY_ENV) or "").strip()
    authority = urlsplit(override if "//" in override else f"https://{override}").netloc \
        if override else (target.cloud.authority or "")
    if target.loopback and not is_loopback(authority.rpartition(":")[0] or authority):
        raise GraphConfigError(
            f"a loopback Graph URL (the lab) signs in only at a loopback authority: set "
            f"{AUTHORITY_ENV} (a lab file does), never a real sign-in page")
    if not authority:
        raise GraphConfigError(f"no sign-in authority for Graph host {target.host}")
    return SignInPlace(authority, settings.tenant_id or settings.tenant or "organizations",
                       settings.client_id or DEFAULT_CLIENT_ID, target.scope, target.host)


# --- where things are kept ---------------------------------------------------------------


def config_home(environ: Mapping[str, str]) -> Path:
    """The user's mailtrace config folder (XDG Base Directory: $XDG_CONFIG_HOME, else
    ~/.config)."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mailtrace"


def record_path(place: SignInPlace, environ: Mapping[str, str]) -> Path:
    return config_home(environ) / "sign-in" / f"{place.key}.json"


def cache_file() -> Path:
    """Where azure-identity keeps the cache (or, with a keyring, the file whose time says
    it changed): ``~/.IdentityService/<name>.nocae``."""
    return Path(os.path.expanduser(os.path.join("~", ".IdentityService",
                                                f"{CACHE_NAME}.nocae")))


def keyring_problem() -> str | None:
    """Why no OS keyring can encrypt the cache here, or None when one can. The same test
    azure-identity makes (msal-extensions' libsecret trial run) on Linux; macOS and
    Windows always have theirs."""
    if not sys.platform.startswith("linux"):
        return None
    import msal_extensions

    with tempfile.TemporaryDirectory(prefix="mailtrace-keyring-") as folder:
        try:
            msal_extensions.LibsecretPersistence(os.path.join(folder, "probe"),
                                                 "mailtrace.keyring-probe", {"probe": "1"})
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"{type(exc).__name__}: {first}".strip().rstrip(":")
    return None


def cache_options(unencrypted: bool) -> TokenCachePersistenceOptions:
    from azure.identity import TokenCachePersistenceOptions

    return TokenCachePersistenceOptions(name=CACHE_NAME, allow_unencrypted_storage=unencrypted)


@dataclass(frozen=True)
class SignIn:
    """What ``login`` keeps: the record (no secret), how the cache is kept, and when."""

    record: AuthenticationRecord
    unencrypted_cache: bool
    signed_in_at: str

    def dumps(self) -> str:
        return json.dumps({"schema": "mailtrace/sign-in-1",
                           "record": json.loads(self.record.serialize()),
                           "unencrypted_cache": self.unencrypted_cache,
                           "signed_in_at": self.signed_in_at}, indent=2) + "\n"

    @classmethod
    def loads(cls, text: str) -> SignIn:
        from azure.identity import AuthenticationRecord

        data = json.loads(text)
        return cls(AuthenticationRecord.deserialize(json.dumps(data["record"])),
                   bool(data["unencrypted_cache"]), str(data["signed_in_at"]))


def _write_private(path: Path, text: str) -> None:
    """Write a file only this user can read, from its first byte (then renamed over)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def recorded(place: SignInPlace, environ: Mapping[str, str]) -> SignIn | None:
    path = record_path(place, environ)
    try:
        return SignIn.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GraphConfigError(f"the sign-in record {path} cannot be read ({type(exc).__name__});"
                               " run `mailtrace login` again") from None


# --- signing in ----------------------------------------------------------------------------


def _kwargs(place: SignInPlace, ca_file: Path | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"authority": place.authority}
    if place.authority != "login.microsoftonline.com" and not place.authority.endswith(
            (".microsoftonline.us", ".chinacloudapi.cn")):
        # An authority Microsoft's instance discovery does not know (the lab's): ask it
        # directly, as azure-identity documents for a trusted custom authority.
        kwargs["disable_instance_discovery"] = True
    if ca_file is not None:
        kwargs["connection_verify"] = str(ca_file)
    return kwargs


def login(place: SignInPlace, environ: Mapping[str, str], *, allow_unencrypted: bool,
          prompt: Prompt, browser: bool = False, ca_file: Path | None = None,
          timeout: int = 300) -> tuple[SignIn, Path]:
    """Sign in interactively and keep the sign-in; returns it and where its record is."""
    problem = keyring_problem()
    if problem is not None and not allow_unencrypted:
        raise KeyringUnavailable(
            f"no OS keyring can encrypt the token cache here ({problem}); allow a plain "
            f"file readable only by you (mode 0600, {cache_file()}) explicitly")
    from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

    common = {"tenant_id": place.tenant, "client_id": place.client_id,
              "cache_persistence_options": cache_options(allow_unencrypted),
              **_kwargs(place, ca_file)}
    credential: DeviceCodeCredential | InteractiveBrowserCredential
    if browser:
        credential = InteractiveBrowserCredential(timeout=timeout, **common)
    else:
        credential = DeviceCodeCredential(prompt_callback=prompt, timeout=timeout, **common)
    try:
        record = credential.authenticate(scopes=[place.scope])
    finally:
        credential.close()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    sign_in = SignIn(record, problem is not None, now)
    path = record_path(place, environ)
    _write_private(path, sign_in.dumps())
    if sign_in.unencrypted_cache and cache_file().exists():
        os.chmod(cache_file(), 0o600)
    return sign_in, path


class SilentSignIn:
    """A recorded sign-in as a ``TokenCredential`` that never prompts: a cached token, or
    a refreshed one, or :class:`SignInExpired` naming what to do."""

    def __init__(self, place: SignInPlace, sign_in: SignIn, ca_file: Path | None) -> None:
        from azure.identity import DeviceCodeCredential

        self.place = place
        self.username = sign_in.record.username
        kwargs = _kwargs(place, ca_file)
        del kwargs["authority"]  # the record names it (and the client and tenant)
        self._credential = DeviceCodeCredential(
            authentication_record=sign_in.record, disable_automatic_authentication=True,
            cache_persistence_options=cache_options(sign_in.unencrypted_cache), **kwargs)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return self._credential.get_token(*scopes)
        except ClientAuthenticationError:  # AuthenticationRequiredError included
            # azure-identity's message may quote the sign-in service; ours names the fix.
            raise SignInExpired(
                f"the sign-in of {self.username} ({self.place.tenant}) no longer gives a "
                "token without a person (expired or revoked): run `mailtrace login "
                "--topology FILE` again") from None

    def close(self) -> None:
        self._credential.close()

    def __repr__(self) -> str:
        return f"SilentSignIn({self.username})"


def signed_in(place: SignInPlace, environ: Mapping[str, str],
              ca_file: Path | None = None) -> SilentSignIn:
    """The tier's recorded sign-in, used silently (raises :class:`NotSignedIn`)."""
    sign_in = recorded(place, environ)
    if sign_in is None:
        raise NotSignedIn(f"no one has signed in to Microsoft Graph of tenant {place.tenant} "
                          "here: run `mailtrace login --topology FILE` once")
    return SilentSignIn(place, sign_in, ca_file)


def logout(place: SignInPlace, environ: Mapping[str, str]) -> SignIn | None:
    """Forget the sign-in: the account's tokens (refresh, access, ID) and the account
    leave the cache, and the record is removed. Nothing is sent anywhere."""
    sign_in = recorded(place, environ)
    if sign_in is None:
        return None
    # azure-identity has no public call that removes an account from its persistent
    # cache; its own loader opens the very cache a sign-in wrote (same name, same place).
    from azure.identity._persistent_cache import _load_persistent_cache

    cache = _load_persistent_cache(cache_options(sign_in.unencrypted_cache))
    home = {"home_account_id": sign_in.record.home_account_id}
    kinds = cache.CredentialType
    for kind, remove in ((kinds.REFRESH_TOKEN, cache.remove_rt),
                         (kinds.ACCESS_TOKEN, cache.remove_at),
                         (kinds.ID_TOKEN, cache.remove_idt),
                         (kinds.ACCOUNT, cache.remove_account)):
        for item in list(cache.search(kind, query=home)):
            remove(item)
    record_path(place, environ).unlink(missing_ok=True)
    return sign_in
