"""The Graph client: msgraph-sdk's request path over real HTTP against the lab's Graph
stand-in.

No SDK internals are patched: the stand-in answers on loopback, the SDK's builders and
adapter make and send each request, the client reads the answer into its models and maps
what goes wrong to its small error tree.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from mailtrace.clients.msgraph.client import (
    GraphBadResponse,
    GraphClient,
    GraphDenied,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
    connect,
    retry_after,
)
from mailtrace.clients.msgraph.credentials import (
    GraphConfigError,
    SharedToken,
    StaticToken,
    graph_target,
    make_credential,
)
from mailtrace.clients.msgraph.models import (
    DirectoryEntry,
    Domain,
    DomainDnsRecord,
    MailboxSettings,
    MessageRule,
)
from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.lab.graph_api import USER_ID, GraphStandIn, LabTenant, TenantFaults, Throttle
from mailtrace.lab.http_server import Response

TOKEN = "lab-token-7f3c9a"
ALICE = "alice@contoso.com"


def _tenant(**faults: Any) -> LabTenant:
    return LabTenant(["contoso.com"], "contoso-com.mail.protection.outlook.com", ALICE,
                     "contoso.onmicrosoft.com", TenantFaults(**faults))


def run(body: Any, *, token: str = TOKEN, delay: float = 0.0, **faults: Any) -> Any:
    """Run ``body(client, stand_in)`` against a fresh stand-in."""
    async def main() -> Any:
        stand_in = GraphStandIn(_tenant(**faults), TOKEN, delay=delay)
        await stand_in.start()
        graph = connect(GraphSettings(url=stand_in.url, auth="token-env", token_env="T"),
                        {"T": token})
        try:
            return await body(graph, stand_in)
        finally:
            await graph.aclose()
            await stand_in.stop()

    return asyncio.run(main())


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def _domain(graph: GraphClient, _: GraphStandIn) -> Any:
    return await graph.ask("get domain", lambda sdk: sdk.domains.by_domain_id(
        "contoso.com").to_get_request_information(), Domain, soon())


def test_answers_are_read_into_the_fields_the_probes_use():
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        domain, exchange = await _domain(graph, stand_in)
        records, _ = await graph.ask_all("records", lambda sdk: sdk.domains.by_domain_id(
            "contoso.com").service_configuration_records.to_get_request_information(),
            DomainDnsRecord, soon())
        return domain, exchange, records, stand_in.requests

    domain, exchange, records, requests = run(body)
    assert (domain.is_verified, domain.supported_services) == (
        True, ["Email", "OfficeCommunicationsOnline"])
    mx, txt, cname = records.items
    assert (mx.record_type, mx.mail_exchange, mx.preference) == (
        "Mx", "contoso-com.mail.protection.outlook.com", 0)
    assert txt.text is not None and txt.text.startswith("v=spf1")
    assert (cname.canonical_name, records.complete, records.pages) == (
        "autodiscover.outlook.com", True, 1)
    assert (exchange.method, exchange.url, exchange.status) == (
        "GET", "/v1.0/domains/contoso.com", 200)
    assert requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_no_model_of_the_sdk_is_loaded_to_read_an_answer():
    """Reading one entity with msgraph-sdk's models imports thousands of modules (issues
    #584, #904): the answers are read by the client's own small models."""
    import sys

    before = {m for m in sys.modules if m.startswith("msgraph.generated.models")}

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        await _domain(graph, stand_in)
        await graph.ask_all("users", lambda sdk: sdk.users.to_get_request_information(),
                            DirectoryEntry, soon())

    run(body)
    loaded = {m for m in sys.modules if m.startswith("msgraph.generated.models")} - before
    # the OData error (the adapter's error mapping) and its package; no entity model
    assert all(m.startswith("msgraph.generated.models.o_data_errors")
               or m == "msgraph.generated.models" for m in loaded), sorted(loaded)[:5]


def test_the_consistency_header_of_one_query_does_not_leak_into_others():
    """Reference §6, the shared-headers pitfall: only the advanced query carries it."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    from mailtrace.clients.msgraph.client import headers

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq '{ALICE}'", count=True)
        config = RequestConfiguration(query_parameters=params,
                                      headers=headers(ConsistencyLevel="eventual"))
        users, _ = await graph.ask_all("users", lambda sdk: sdk.users.to_get_request_information(
            config), DirectoryEntry, soon())
        await _domain(graph, stand_in)
        await graph.ask_all("rules", lambda sdk: sdk.users.by_user_id(USER_ID).mail_folders
                            .by_mail_folder_id("inbox").message_rules
                            .to_get_request_information(RequestConfiguration()),
                            MessageRule, soon())
        return users, stand_in.requests

    users, requests = run(body)
    assert [u.id for u in users.items] == [USER_ID]
    assert [r.headers.get("consistencylevel") for r in requests] == ["eventual", None, None]


@pytest.mark.parametrize(("faults", "error", "code"), [
    (dict(deny=frozenset({"domain"})), GraphDenied, "Authorization_RequestDenied"),
    (dict(raw={"domain": Response.json({"error": {"code": "Request_ResourceNotFound",
                                                  "message": "gone"}}, 404)}),
     GraphNotFound, "Request_ResourceNotFound"),
])
def test_error_statuses_are_mapped_with_their_code(faults, error, code):
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(error) as info:
            await _domain(graph, stand_in)
        return info.value

    exc = run(body, **faults)
    assert exc.code == code
    assert exc.exchange.evidence()["status"] in (403, 404)


def test_a_wrong_token_is_a_401_denial():
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(GraphDenied) as info:
            await _domain(graph, stand_in)
        return info.value

    assert run(body, token="not-the-lab-token").code == "InvalidAuthenticationToken"


def test_retry_after_is_honoured_when_it_fits_the_deadline():
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        started = time.monotonic()
        _, exchange = await _domain(graph, stand_in)
        return exchange, time.monotonic() - started

    exchange, elapsed = run(body, throttle={"domain": Throttle(1, times=1)})
    assert (exchange.status, exchange.attempts) == (200, 2)
    assert 1.0 <= elapsed < 3


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_past_the_deadline_gives_up_at_once(status):
    answer = Response.json({"error": {"code": "TooManyRequests", "message": "slow down"}},
                           status, headers={"Retry-After": "120"})

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        started = time.monotonic()
        with pytest.raises(GraphThrottled) as info:
            await _domain(graph, stand_in)
        return info.value, time.monotonic() - started

    exc, elapsed = run(body, raw={"domain": answer})
    assert (exc.retry_after, exc.exchange.status) == (120, status)
    assert elapsed < 1


@pytest.mark.parametrize(("answer", "excerpt"), [
    (Response(200, b"<html><body>Proxy login</body></html>", {"Content-Type": "text/html"}),
     "<html>"),
    (Response(200, b'{"id": "contoso.com", "isVerified": tru',
              {"Content-Type": "application/json"}), None),
    (Response(200, b"", {"Content-Type": "application/json"}), None),
    (Response(502, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}), "<html>"),
])
def test_unreadable_answers_are_bad_responses_with_evidence(answer, excerpt):
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(GraphBadResponse) as info:
            await _domain(graph, stand_in)
        return info.value

    exc = run(body, raw={"domain": answer})
    ev = exc.exchange.evidence()
    assert ev["status"] == answer.status
    if excerpt:
        assert excerpt in ev["body_excerpt"]


def test_missing_fields_and_unknown_enum_values_parse_to_none():
    body_json = {"id": "contoso.com", "supportedServices": ["Email", "SomethingNew"]}
    settings = {"userPurpose": "aNewKindOfMailbox"}

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        domain, _ = await _domain(graph, stand_in)
        mailbox, _ = await graph.ask("settings", lambda sdk: sdk.users.by_user_id(
            USER_ID).mailbox_settings.to_get_request_information(), MailboxSettings, soon())
        return domain, mailbox

    domain, mailbox = run(body, raw={"domain": Response.json(body_json),
                                     "mailboxSettings": Response.json(settings)})
    assert (domain.is_verified, domain.supported_services) == (None, ["Email", "SomethingNew"])
    assert mailbox.user_purpose is None


def test_no_answer_in_time_and_no_server_are_unavailable():
    async def slow(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(GraphUnavailable, match="in time"):
            await graph.ask("d", lambda sdk: sdk.domains.by_domain_id(
                "contoso.com").to_get_request_information(), Domain, soon(0.2))

    run(slow, delay=1.0)

    async def closed() -> None:
        graph = connect(GraphSettings(url="http://127.0.0.1:9/v1.0", auth="token-env",
                                      token_env="T"), {"T": TOKEN})
        try:
            with pytest.raises(GraphUnavailable, match="cannot reach"):
                await _domain(graph, None)  # type: ignore[arg-type]
        finally:
            await graph.aclose()

    asyncio.run(closed())


def test_a_body_past_the_cap_is_not_read_further(monkeypatch: pytest.MonkeyPatch):
    from mailtrace.clients.msgraph import transport

    monkeypatch.setattr(transport, "MAX_BODY", 64)

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(GraphBadResponse, match="larger than 64 bytes"):
            await _domain(graph, stand_in)

    run(body)


# --- paging (@odata.nextLink) ---------------------------------------------------------------

async def _records(graph: GraphClient, deadline: float) -> Any:
    return await graph.ask_all("records", lambda sdk: sdk.domains.by_domain_id(
        "contoso.com").service_configuration_records.to_get_request_information(),
        DomainDnsRecord, deadline)


def test_a_collection_is_read_page_after_page():
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        listing, exchange = await _records(graph, soon())
        return listing, exchange, stand_in.requests

    listing, exchange, requests = run(body, page_size=1)
    assert [r.record_type for r in listing.items] == ["Mx", "Txt", "CName"]
    assert (listing.pages, listing.complete) == (3, True)
    assert [r.arg("$skiptoken") for r in requests] == [None, "1", "2"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)
    ev = exchange.evidence()
    assert (ev["pages"], ev["status"]) == (3, 200)
    assert ev["request"] == "GET /v1.0/domains/contoso.com/serviceConfigurationRecords"


def test_paging_stops_when_the_next_page_cannot_come_in_time():
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        listing, exchange = await _records(graph, soon(0.5))
        return listing, exchange

    listing, exchange = run(body, page_size=1, delay=0.3)
    assert (len(listing.items), listing.complete) == (1, False)
    assert "deadline" in exchange.evidence()["incomplete"]


def test_a_next_link_to_another_host_is_not_followed():
    page = {"value": [{"id": USER_ID}],
            "@odata.nextLink": "https://graph.example.net/v1.0/users?$skiptoken=1"}

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        listing, exchange = await graph.ask_all(
            "users", lambda sdk: sdk.users.to_get_request_information(), DirectoryEntry,
            soon())
        return listing, exchange, stand_in.requests

    listing, exchange, requests = run(body, raw={"users": Response.json(page)})
    assert ([u.id for u in listing.items], listing.complete, len(requests)) == (
        [USER_ID], False, 1)
    assert "leaves the tier's Graph host" in exchange.evidence()["incomplete"]


# --- HTTPS: --ca-file and --connect-to ---------------------------------------------------------

def _over_https(body: Any, *, names: tuple[str, ...] = ("graph.microsoft.com",),
                trust: bool = True) -> Any:
    """Run ``body(client, stand_in)`` against a stand-in on HTTPS (a lab CA certificate for
    ``names``), reached as https://graph.microsoft.com through a --connect-to rule."""
    from mailtrace.core.network import ConnectTo, Redirects
    from mailtrace.lab.ca import LabCA

    async def main() -> Any:
        ca = LabCA()
        stand_in = GraphStandIn(_tenant(), TOKEN, tls=ca.issue(*names).server_context())
        await stand_in.start()
        rule = ConnectTo("graph.microsoft.com", 443, "127.0.0.1", stand_in.port)
        graph = connect(GraphSettings(auth="token-env", token_env="T",
                                      ca_file=ca.ca_file if trust else None,
                                      redirects=Redirects((rule,))), {"T": TOKEN})
        try:
            return await body(graph, stand_in)
        finally:
            await graph.aclose()
            await stand_in.stop()
            ca.close()

    return asyncio.run(main())


def test_graph_over_https_follows_connect_to_and_trusts_the_ca_file(
        monkeypatch: pytest.MonkeyPatch):
    # a proxy the environment names is not used for a host --connect-to sends elsewhere
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")

    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        domain, exchange = await _domain(graph, stand_in)
        return domain, exchange, stand_in.requests

    domain, exchange, requests = _over_https(body)
    assert (domain.id, exchange.status) == ("contoso.com", 200)
    assert requests[0].headers["host"] == "graph.microsoft.com"


@pytest.mark.parametrize(("names", "trust"), [
    (("graph.microsoft.com",), False),  # the lab CA is not trusted without --ca-file
    (("graph.example.net",), True),  # a certificate for another name
])
def test_a_certificate_that_cannot_be_trusted_is_unavailable(names, trust):
    async def body(graph: GraphClient, stand_in: GraphStandIn) -> Any:
        with pytest.raises(GraphUnavailable, match="cannot reach Graph") as info:
            await _domain(graph, stand_in)
        return info.value, stand_in.requests

    exc, requests = _over_https(body, names=names, trust=trust)
    assert exc.exchange.status is None and requests == []


# --- clouds and credentials --------------------------------------------------------------

@pytest.mark.parametrize(("url", "scope", "authority", "trace"), [
    ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default",
     "login.microsoftonline.com", True),
    ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default",
     "login.microsoftonline.us", False),
    ("https://dod-graph.microsoft.us/v1.0", "https://dod-graph.microsoft.us/.default",
     "login.microsoftonline.us", False),
    ("https://microsoftgraph.chinacloudapi.cn/v1.0",
     "https://microsoftgraph.chinacloudapi.cn/.default", "login.chinacloudapi.cn", False),
    ("http://127.0.0.1:8080/v1.0", "http://127.0.0.1/.default", None, True),
])
def test_the_cloud_follows_the_graph_url(url, scope, authority, trace):
    target = graph_target(GraphSettings(url=url, auth="token-env", token_env="T"))
    assert (target.scope, target.cloud.authority, target.cloud.message_trace) == (
        scope, authority, trace)
    assert target.base_url == url


def test_an_unknown_graph_host_is_refused():
    with pytest.raises(GraphConfigError, match=r"unknown Graph host graph\.example\.com"):
        graph_target(GraphSettings(url="https://graph.example.com/v1.0", auth="azure-cli"))


def _access(**kw: Any) -> GraphSettings:
    return GraphSettings(**kw)


def test_credentials_come_from_the_environment_mapping_and_are_never_echoed():
    secret = "s3cr3t-value-do-not-print"
    national = graph_target(_access(url="https://graph.microsoft.us/v1.0", auth="azure-cli"))
    access = _access(url="https://graph.microsoft.us/v1.0", auth="client-secret",
                     tenant_id="contoso.onmicrosoft.com", client_id="c1", secret_env="S")
    credential = make_credential(access, national, {"S": secret})
    assert type(credential).__name__ == "ClientSecretCredential"
    assert secret not in repr(credential)
    with pytest.raises(GraphConfigError, match=r"S .* is not set") as info:
        make_credential(access, national, {})
    assert secret not in str(info.value)
    token = make_credential(_access(auth="token-env", token_env="T"), national, {"T": secret})
    assert isinstance(token, StaticToken) and secret not in repr(token)
    assert token.get_token("x").token == secret


@pytest.mark.parametrize(("access", "message"), [
    (dict(auth="client-certificate", client_id="c", certificate_path="/nonexistent.pem",
          tenant_id="t"), "certificate file /nonexistent.pem not found"),
    (dict(auth="client-secret", client_id="c", secret_env="S"), "needs tenant_id"),
])
def test_unusable_credentials_are_config_errors(access, message):
    target = graph_target(_access(auth="azure-cli"))
    with pytest.raises(GraphConfigError, match=message):
        make_credential(_access(**access), target, {"S": "x"})


def test_a_loopback_graph_never_signs_in_to_a_real_authority():
    target = graph_target(_access(url="http://127.0.0.1:1/v1.0", auth="token-env",
                                  token_env="T"))
    with pytest.raises(GraphConfigError, match="loopback Graph URL takes auth token-env"):
        make_credential(_access(url="http://127.0.0.1:1/v1.0", auth="client-secret",
                                client_id="c", secret_env="S", tenant_id="t"), target, {"S": "x"})


def test_one_token_is_fetched_for_every_concurrent_call():
    class Counting(StaticToken):
        calls = 0

        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            Counting.calls += 1
            time.sleep(0.05)
            return super().get_token(*scopes)

    async def main() -> set[str]:
        shared = SharedToken(Counting("t"))
        tokens = await asyncio.gather(*(shared.get_token("s") for _ in range(6)))
        return {t.token for t in tokens}

    assert asyncio.run(main()) == {"t"} and Counting.calls == 1


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "Sun, 29 Nov 2026 00:00:30 GMT"}, 30.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
])
def test_retry_after_forms(headers, seconds):
    import email.utils

    now = email.utils.parsedate_to_datetime("Sun, 29 Nov 2026 00:00:00 GMT").timestamp()
    assert retry_after(headers, now) == seconds


def test_the_token_never_reaches_a_log(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "kiota_http", "azure", "msgraph", "msgraph_core"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    run(_domain)
    assert caplog.records, "the loggers were not at DEBUG"
    assert TOKEN not in caplog.text


def _app_certificate(path: Any) -> None:
    """An app registration's certificate, as an admin keeps it: RSA key and cert in a PEM."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailtrace-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
                     + cert.public_bytes(serialization.Encoding.PEM))


def test_certificate_and_device_code_sign_in_at_the_clouds_authority(tmp_path):
    """Built, not used: constructing a credential sends nothing."""
    pem = tmp_path / "app.pem"
    _app_certificate(pem)
    for url, authority in (("https://graph.microsoft.us/v1.0", "login.microsoftonline.us"),
                           ("https://microsoftgraph.chinacloudapi.cn/v1.0",
                            "login.chinacloudapi.cn")):
        access = _access(url=url, auth="client-certificate", client_id="c",
                         certificate_path=str(pem))
        credential = make_credential(access, graph_target(access), {}, "contoso.onmicrosoft.com")
        assert type(credential).__name__ == "CertificateCredential"
        assert authority in credential._authority  # type: ignore[attr-defined]
        # A person's sign-in is made once by `mailtrace login`, at the cloud's authority;
        # a run never builds a credential that would prompt, it asks for the sign-in.
        from mailtrace.clients.msgraph.signin import place_of

        device = _access(url=url, auth="device-code", tenant_id="t")
        assert place_of(device, {}).authority == authority
        with pytest.raises(GraphConfigError, match="mailtrace login"):
            make_credential(device, graph_target(device), {})
