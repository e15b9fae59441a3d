"""The catalog is closed: every emitted tag is declared and described, every declared
tag is emitted by some probe and exercised by a test, and no remediation suggests a
retired command."""

from __future__ import annotations

import re
import string

import pytest
import yaml

from mailtrace.core import catalog
from mailtrace.core.findings import Finding, Level
from mailtrace.intake import codes, headers
from mailtrace.probes.registry import ALL
from mailtrace.usecases import precheck

ENGINE_TAGS = {"ENGINE_PROBE_ERROR", "ENGINE_PROBE_TIMEOUT"}
EVIDENCE_TAGS = codes.TAGS | headers.TAGS  # emitted by `mailtrace ndr` and `headers`
PRECHECK_TAGS = precheck.TAGS  # the MX cutover's TTL, judged by precheck itself

# Retired or deprecated ways of doing things that an admin must not be sent to.
RETIRED = [
    (re.compile(r"\b\w+-Msol\w*", re.I), "MSOnline module (retired)"),
    (re.compile(r"\b\w+-AzureAD\w*", re.I), "AzureAD module (retired)"),
    (re.compile(r"\bGet-MessageTrace(Detail)?\b(?!V2)", re.I), "use Get-MessageTraceV2"),
    (re.compile(r"powershell-liveid|New-PSSession", re.I), "remote PowerShell sessions"),
    (re.compile(r"reports\.office365\.com", re.I), "Reporting Web Service message trace"),
    (re.compile(r"\bConnect-EXOPSSession\b", re.I), "EXO V1 module (remote PowerShell)"),
    (re.compile(r"\b(Search-AdminAuditLog|Search-MailboxAuditLog|New-AdminAuditLogSearch|"
                r"New-MailboxAuditLogSearch)\b", re.I), "retired: use Search-UnifiedAuditLog"),
]


def test_every_probe_tag_is_declared_and_described():
    declared = catalog.load()
    for probe in ALL:
        for tag in probe.tags:
            assert tag in declared, f"{probe.id} emits undeclared {tag}"
            assert declared[tag].description.strip()


def test_every_declared_tag_is_emitted_by_a_probe_or_the_engine():
    emitted = (set().union(*(p.tags for p in ALL)) | ENGINE_TAGS | EVIDENCE_TAGS
               | PRECHECK_TAGS)
    assert set(catalog.load()) == emitted


def test_the_fast_and_the_pure_yaml_parsers_read_the_same_catalog():
    """The catalog is read with libyaml when PyYAML has it; the pure-Python parser, the
    fallback, must read exactly the same entries."""
    if yaml.__with_libyaml__:
        assert catalog.LOADER is yaml.CSafeLoader
    assert catalog.parse(catalog.sources(), yaml.SafeLoader) == catalog.load()


def test_emitted_tags_are_recorded_for_the_closed_catalog_check():
    """tests/support/closed_catalog.py hears every Finding; after a full run it fails the
    session if a declared tag was never emitted or a message names an argument never
    passed."""
    from tests.support import closed_catalog

    Finding("DNS_MX_OK", {"domain": "contoso.com", "mx": "10 mx0a"})
    assert {"domain", "mx"} <= closed_catalog.EMITTED["DNS_MX_OK"]
    assert not any("DNS_MX_OK" in p for p in closed_catalog.problems(closed_catalog.EMITTED))


@pytest.mark.parametrize("tag", sorted(catalog.load()))
def test_entry_is_complete(tag):
    info = catalog.info(tag)
    fields = [f for _, f, _, _ in string.Formatter().parse(info.message) if f]
    assert all(f.isidentifier() for f in fields)
    if (info.level.rank >= Level.ERROR.rank or info.contradicts) and \
            not tag.startswith("ENGINE_"):
        rem = info.remediation
        assert rem is not None, f"{tag}: a failing or contradicting tag needs a remediation"
        assert rem.commands and rem.docs and rem.checked, tag
        assert all(d.startswith("https://") for d in rem.docs)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rem.checked)


#: Findings that say a record contradicts a value the topology declares: verify makes the
#: record differs, precheck the change unsafe, whatever their level.
CONTRADICTING = {
    "SPF_EXPECTED_TERM_MISSING", "SPF_ALL_DIFFERS", "SPF_SENDER_FAILS",
    "DKIM_SELECTOR_MISSING", "DKIM_CNAME_UNEXPECTED",
    "DMARC_POLICY_DIFFERS", "DMARC_SENDER_NOT_ALIGNED",
    "MTASTS_MISSING", "MTASTS_MODE_DIFFERS",
    "DNS_MX_BYPASSES_GATEWAY", "DNS_MX_BACKUP_BYPASSES_GATEWAY", "DNS_MX_UNEXPECTED_HOST",
    "DNS_MX_EXPECTED_HOST_MISSING",
}


def test_verify_and_precheck_tags_say_whether_they_contradict_the_topology():
    """Stated, not defaulted, on every tag verify and precheck judge records by."""
    entries = {tag: entry for name, text in catalog.sources()
               for tag, entry in yaml.safe_load(text).items()
               if name == "auth.yaml" or tag.startswith("DNS_MX_")}
    assert len(entries) > 50
    unstated = [tag for tag, entry in entries.items() if "contradicts" not in entry]
    assert unstated == []
    assert {t for t, i in catalog.load().items() if i.contradicts} == CONTRADICTING


def test_contradicts_must_be_a_boolean(monkeypatch: pytest.MonkeyPatch):
    entry = "X_TAG:\n  level: info\n  contradicts: maybe\n  message: m\n  description: d\n"
    monkeypatch.setattr(catalog, "sources", lambda: [("a.yaml", entry)])
    catalog.load.cache_clear()
    try:
        with pytest.raises(catalog.CatalogError, match="contradicts must be true or false"):
            catalog.load()
    finally:
        monkeypatch.undo()
        catalog.load.cache_clear()


def test_no_retired_command_anywhere_in_the_catalog():
    lines = [line for _, text in catalog.sources() for line in text.splitlines()]
    raw = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    raw += "\n".join(" ".join(i.remediation.commands) for i in catalog.load().values()
                     if i.remediation)
    for pattern, why in RETIRED:
        assert not pattern.search(raw), f"{pattern.pattern}: {why}"


def test_retired_patterns_do_catch_what_they_should():
    samples = ["Get-MsolUser", "Set-AzureADUser", "Get-MessageTrace -RecipientAddress x",
               "Get-MessageTraceDetail", "New-PSSession -ConnectionUri x",
               "Connect-EXOPSSession -UserPrincipalName a", "Search-MailboxAuditLog -Identity a"]
    for sample in samples:
        assert any(p.search(sample) for p, _ in RETIRED), sample
    for current in ("Get-MessageTraceV2 -RecipientAddress x", "Get-MessageTraceDetailV2 -M x",
                    "Connect-ExchangeOnline", "Search-UnifiedAuditLog"):
        assert not any(p.search(current) for p, _ in RETIRED), current


def test_render_leaves_unknown_fields_visible():
    assert catalog.info("DNS_MX_MISSING").render({}) == "{domain} publishes no MX record"


def test_a_tag_declared_in_two_catalog_files_is_refused(monkeypatch: pytest.MonkeyPatch):
    entry = "X_TAG:\n  level: info\n  message: m\n  description: d\n"
    monkeypatch.setattr(catalog, "sources", lambda: [("a.yaml", entry), ("b.yaml", entry)])
    catalog.load.cache_clear()
    try:
        with pytest.raises(catalog.CatalogError, match="X_TAG is declared twice"):
            catalog.load()
    finally:
        monkeypatch.undo()
        catalog.load.cache_clear()


def test_every_warning_states_what_it_does_to_the_verdict():
    from mailtrace.core.catalog import CatalogError, _parse

    for tag, info in catalog.load().items():
        if info.level is Level.WARNING:
            assert info.effect in ("degrades", "note") and info.because, tag
    with pytest.raises(CatalogError, match="effect"):
        _parse("X", {"level": "warning", "message": "m", "description": "d"})
    with pytest.raises(CatalogError, match="only a warning"):
        _parse("X", {"level": "error", "message": "m", "description": "d", "effect": "note"})
