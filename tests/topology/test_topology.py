"""Topology files: loading, error locations, the flow graph, the JSON Schema."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.topology import (
    FlowGraph,
    Topology,
    TopologyError,
    load_topology,
    parse_topology,
    topology_json_schema,
)
from mailtrace.topology.loader import MAX_BYTES
from mailtrace.topology.model import (
    TIER_KINDS,
    ExchangeOnlineTier,
    ExchangeOnPremTier,
    MimecastTier,
    ProofpointTier,
)
from tests.support.paths import ROOT

EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))
BAD = ROOT / "tests" / "data" / "topologies"


# -- the examples ---------------------------------------------------------------------------


def test_there_are_three_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "contoso-proofpoint-exo.yaml",
        "fabrikam-essentials-exo.yaml",
        "northwind-exo-direct.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    topology = load_topology(path)
    graph = FlowGraph(topology)
    assert graph.hops()[0] == graph.dns_tier()
    assert graph.paths()
    # Example URLs are real-world https endpoints, and credentials are only referenced.
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text
    for tier in topology.tiers.values():
        api = getattr(tier, "api", None) or getattr(tier, "graph", None)
        if api is not None:
            assert api.url.startswith("https://")


def test_contoso_is_the_design_example() -> None:
    topology = load_topology(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")
    assert topology.topology == "contoso"
    assert topology.domains == ["contoso.com"]
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns"
    assert dns.expect.mx == ["mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com"]
    assert dns.expect.spf is not None
    assert dns.expect.spf.include == ["spf-001234.pphosted.com", "spf.protection.outlook.com"]
    assert dns.expect.spf.all == "-all"
    assert dns.expect.dkim is not None and dns.expect.dkim.selectors == ["selector1", "selector2"]
    assert dns.expect.dmarc is not None and dns.expect.dmarc.policy == "quarantine"
    proofpoint = topology.tiers["proofpoint"]
    assert isinstance(proofpoint, ProofpointTier) and proofpoint.flavour == "pod"
    assert proofpoint.api is not None and proofpoint.api.password_env == "PROOFPOINT_API_PASSWORD"
    exo = topology.tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier)
    assert exo.inbound_host == "contoso-com.mail.protection.outlook.com"
    assert exo.accepts_only_from == "proofpoint"
    assert exo.graph is not None and exo.graph.auth == "client-certificate"
    graph = FlowGraph(topology)
    assert graph.first_hops() == ["proofpoint"]
    assert graph.to_text() == (
        "public-dns (dns) → proofpoint (proofpoint/pod) → exchange-online (exchange-online)\n"
    )


def test_fabrikam_and_northwind() -> None:
    fabrikam = load_topology(ROOT / "topologies" / "fabrikam-essentials-exo.yaml")
    gateway = fabrikam.tiers["proofpoint"]
    assert isinstance(gateway, ProofpointTier) and gateway.flavour == "essentials"
    assert gateway.hosts == ["mx1-us1.ppe-hosted.com", "mx2-us1.ppe-hosted.com"]
    assert fabrikam.inbound_hosts("exchange-online") == ["fabrikam-com.mail.protection.outlook.com"]
    northwind = load_topology(ROOT / "topologies" / "northwind-exo-direct.yaml")
    assert FlowGraph(northwind).paths() == [["public-dns", "exchange-online"]]


# -- bad inputs: where and what --------------------------------------------------------------

# (file, line, column, words the message must contain)
BAD_CASES: list[tuple[str, int | None, int | None, tuple[str, ...]]] = [
    ("syntax-error.yaml", 3, 5, ("flow sequence",)),
    ("tab-indent.yaml", 7, 1, ("tab",)),
    ("empty.yaml", None, None, ("empty",)),
    ("not-a-mapping.yaml", 2, 1, ("mapping", "list")),
    ("two-documents.yaml", 8, 1, ("single",)),
    ("duplicate-tier.yaml", 15, 3, ("duplicate key 'proofpoint'", "line 8")),
    ("unknown-key.yaml", 11, 5, ("'hostz'", "tiers.proofpoint", "hosts")),
    ("wrong-type.yaml", 11, 12, ("tiers.proofpoint.hosts", "list", "number")),
    ("missing-field.yaml", 8, 3, ("tiers.exchange-online", "'inbound_host'")),
    ("unknown-kind.yaml", 9, 11, ("tiers.barracuda.kind", "'barracuda'", "exchange-onprem")),
    ("several-errors.yaml", 2, 24, ("domains[1]", "'not a domain'")),
    ("bad-domain.yaml", 4, 5, ("domains[1]", "'contoso..net'")),
    ("bool-tier-id.yaml", 11, 3, ("'on'", "quote")),
    ("plain-http-url.yaml", 12, 12, ("tiers.exchange-online.graph.url", "http://")),
    ("secret-in-env-name.yaml", 15, 21, ("password_env", "environment variable")),
    ("smtp-sender-injection.yaml", 4, 14, ("smtp.mail_from", "invalid address")),
    ("graph-auth-incomplete.yaml", 11, 5, ("graph", "'client-secret'", "secret_env")),
    ("flow-unknown-tier.yaml", 4, 19, ("'proofpont'", "proofpoint")),
    ("flow-empty-segment.yaml", 4, 20, ("empty",)),
    ("flow-unused-tier.yaml", 8, 3, ("'relay'",)),
    ("flow-cycle.yaml", 5, 5, ("cycle public-dns -> gw-a -> gw-b -> gw-a",)),
    ("flow-no-dns.yaml", 5, 1, ("'dns'",)),
    ("flow-two-dns.yaml", 9, 3, ("internal-dns",)),
    ("flow-dns-not-first.yaml", 5, 5, ("public-dns", "proofpoint")),
    ("flow-no-mailbox.yaml", 3, 1, ("no path from public-dns", "exchange-online")),
    ("flow-sink-not-mailbox.yaml", 5, 5, ("'archive'", "mailbox")),
    ("flow-unreachable.yaml", 5, 5, ("'relay'", "public-dns")),
    ("accepts-only-from-undeclared.yaml", 15, 24, ("accepts_only_from", "'mimecast'")),
    ("accepts-only-from-no-edge.yaml", 18, 24, ("'proofpoint'", "relay")),
]


def test_every_bad_file_has_a_case() -> None:
    assert {p.name for p in BAD.glob("*.yaml")} == {case[0] for case in BAD_CASES}


@pytest.mark.parametrize(("name", "line", "column", "words"), BAD_CASES, ids=lambda c: str(c))
def test_bad_input_is_located(
    name: str, line: int | None, column: int | None, words: tuple[str, ...]
) -> None:
    path = BAD / name
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    err = caught.value
    assert (err.line, err.column) == (line, column), str(err)
    for word in words:
        assert word in err.message, str(err)
    assert err.source == str(path)
    where = f"{path}:{line}:{column}: " if line is not None else f"{path}: "
    assert str(err).splitlines()[0] == where + err.message


def test_missing_file_directory_and_encoding(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such file"
    assert caught.value.line is None and caught.value.column is None

    with pytest.raises(TopologyError) as caught:
        load_topology(tmp_path)
    assert caught.value.line is None and "directory" in caught.value.message

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("topology: café\n".encode("latin-1"))
    with pytest.raises(TopologyError) as caught:
        load_topology(latin1)
    assert caught.value.line is None and "UTF-8" in caught.value.message

    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(TopologyError) as caught:
        load_topology(big)
    assert caught.value.line is None and "1 MiB" in caught.value.message


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 0 does not stop root, so the refusal is simulated where the loader opens.
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    path = tmp_path / "secret.yaml"
    path.write_text("topology: x\n", encoding="utf-8")
    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert caught.value.line is None and "permission" in caught.value.message


def test_utf8_bom_and_crlf_are_fine() -> None:
    text = (ROOT / "topologies" / "northwind-exo-direct.yaml").read_text(encoding="utf-8")
    assert parse_topology("\ufeff" + text.replace("\n", "\r\n")).topology == "northwind"


MINIMAL = """\
topology: t
domains: [Example.COM.]
flow:
  - public-dns -> exchange-online
tiers:
  public-dns: {kind: dns}
  exchange-online: {kind: exchange-online, inbound_host: Example-com.Mail.Protection.Outlook.com.}
"""


def test_names_are_normalized() -> None:
    topology = parse_topology(MINIMAL)
    assert topology.domains == ["example.com"]
    assert topology.inbound_hosts("exchange-online") == ["example-com.mail.protection.outlook.com"]


def test_the_unicode_arrow_is_accepted() -> None:
    text = MINIMAL.replace("public-dns -> exchange-online", "public-dns → exchange-online")
    assert FlowGraph(parse_topology(text)).hops() == ["public-dns", "exchange-online"]


def test_a_quoted_chain_is_located_to_the_tier() -> None:
    text = MINIMAL.replace("public-dns -> exchange-online", "'public-dns → exchange-onlin'")
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "t.yaml")
    assert (caught.value.line, caught.value.column) == (4, 19)
    assert "'exchange-onlin'" in caught.value.message


def test_duplicate_keys_are_caught_in_flow_mappings_too() -> None:
    text = MINIMAL.replace("{kind: dns}", "{kind: dns, kind: dns}")
    with pytest.raises(TopologyError) as caught:
        parse_topology(text)
    assert (caught.value.line, caught.value.column) == (6, 27)
    assert "'kind'" in caught.value.message and "column 16" in caught.value.message


def test_merge_keys_are_not_duplicates() -> None:
    text = MINIMAL.replace("exchange-online\n", "exchange-online -> onprem\n", 1) + (
        "  onprem:\n"
        "    <<: {kind: exchange-onprem, hosts: [a.example.com]}\n"
        "    hosts: [mail.example.com]\n"
    )
    topology = parse_topology(text)
    assert topology.inbound_hosts("onprem") == ["mail.example.com"]


def test_pydantic_errors_are_ordered_by_document_position() -> None:
    text = MINIMAL.replace("topology: t", "topology: 12").replace(
        "[Example.COM.]", "[Example.COM., 'bad domain']"
    )
    with pytest.raises(TopologyError) as caught:
        parse_topology(text)
    assert caught.value.line == 1 and "topology" in caught.value.message
    assert [line for line, _, _ in caught.value.problems] == [1, 2]


def test_non_mapping_tier() -> None:
    text = MINIMAL.replace("{kind: dns}", "dns")
    with pytest.raises(TopologyError) as caught:
        parse_topology(text)
    assert (caught.value.line, caught.value.column) == (6, 15)
    assert "tiers.public-dns" in caught.value.message and "mapping" in caught.value.message


def test_an_empty_value_is_pointed_at_by_its_key() -> None:
    text = MINIMAL.replace("  public-dns: {kind: dns}", "  public-dns:")
    with pytest.raises(TopologyError) as caught:
        parse_topology(text)
    assert (caught.value.line, caught.value.column) == (6, 3)
    assert "tiers.public-dns" in caught.value.message and "null" in caught.value.message


def test_loopback_http_is_accepted_for_the_lab() -> None:
    text = MINIMAL.replace(
        "Outlook.com.}",
        "Outlook.com., graph: {url: 'http://127.0.0.1:8443/v1.0', auth: azure-cli}}",
    )
    exo = parse_topology(text).tiers["exchange-online"]
    assert isinstance(exo, ExchangeOnlineTier) and exo.graph is not None


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology("a: " + "[" * 5000)
    assert caught.value.line is None and "deep" in caught.value.message


def test_self_referencing_alias_is_an_error_not_a_crash() -> None:
    with pytest.raises(TopologyError):
        parse_topology(MINIMAL.replace("flow:\n", "flow: &f\n") + "extra: *f\n")
    with pytest.raises(TopologyError):
        parse_topology("tiers: &t {x: *t}\n")


# -- never another exception ----------------------------------------------------------------

VOCABULARY = [
    "topology",
    "description",
    "domains",
    "flow",
    "tiers",
    "kind",
    "flavour",
    "hosts",
    "api",
    "url",
    "expect",
    "mx",
    "inbound_host",
    "accepts_only_from",
    "graph",
    "auth",
    "public-dns",
    "proofpoint",
    "exchange-online",
    *TIER_KINDS,
]
scalars = st.one_of(
    st.sampled_from([*VOCABULARY, "a -> b", "public-dns -> exchange-online", "contoso.com"]),
    st.text(max_size=12),
    st.integers(),
    st.booleans(),
    st.none(),
)
yamlish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(VOCABULARY) | st.text(max_size=6), children, max_size=5),
    ),
    max_leaves=25,
)


def _parses_or_topology_error(text: str) -> None:
    try:
        result = parse_topology(text, "fuzz.yaml")
    except TopologyError as err:
        lines = len(text.splitlines()) + 2
        assert err.line is None or 1 <= err.line <= lines
        assert err.column is None or err.column >= 1
        assert str(err).startswith("fuzz.yaml:")
    else:
        assert isinstance(result, Topology)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    _parses_or_topology_error(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_arbitrary_yaml_never_raises_anything_else(data: object) -> None:
    _parses_or_topology_error(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["", " ", "-", ":", "\n", "\t", "[", "{", "'", "&a", "*a", "->"]),
        ),
        max_size=4,
    ),
)
def test_mangled_examples_never_raise_anything_else(
    path: Path, edits: list[tuple[int, str]]
) -> None:
    text = path.read_text(encoding="utf-8")
    for position, insert in edits:
        position %= len(text)
        text = text[:position] + insert + text[position + (1 if not insert else 0) :]
    _parses_or_topology_error(text)


def _replace_at(data: object, path: list[int], value: object) -> object:
    """``data`` with the node reached by ``path`` (indexes into children) replaced."""
    if not path:
        return value
    if isinstance(data, dict) and data:
        keys = list(data)
        key = keys[path[0] % len(keys)]
        return {**data, key: _replace_at(data[key], path[1:], value)}
    if isinstance(data, list) and data:
        i = path[0] % len(data)
        return [*data[:i], _replace_at(data[i], path[1:], value), *data[i + 1 :]]
    return value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(EXAMPLES),
    st.lists(st.tuples(st.lists(st.integers(0, 20), max_size=5), yamlish), min_size=1, max_size=3),
)
def test_examples_with_replaced_values_never_raise_anything_else(
    path: Path, replacements: list[tuple[list[int], object]]
) -> None:
    data: object = yaml.safe_load(path.read_text(encoding="utf-8"))
    for where, value in replacements:
        data = _replace_at(data, where, value)
    _parses_or_topology_error(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


# -- the flow graph -------------------------------------------------------------------------

PARALLEL = """\
topology: parallel
domains: [example.com]
flow:
  - dns -> gw1 -> exo
  - dns -> gw2 -> exo
tiers:
  dns: {kind: dns}
  exo: {kind: exchange-online, inbound_host: example-com.mail.protection.outlook.com}
  gw2: {kind: smtp-gateway, hosts: [relay.example.com]}
  gw1: {kind: proofpoint, flavour: essentials, hosts: [mx1-us1.ppe-hosted.com]}
"""


def test_parallel_gateways() -> None:
    graph = FlowGraph(parse_topology(PARALLEL))
    assert graph.dns_tier() == "dns"
    assert graph.hops() == ["dns", "gw1", "gw2", "exo"]
    assert graph.first_hops() == ["gw1", "gw2"]
    assert graph.paths() == [["dns", "gw1", "exo"], ["dns", "gw2", "exo"]]
    assert graph.downstream_of("gw1") == {"exo"}
    assert graph.downstream_of("dns") == {"gw1", "gw2", "exo"}
    assert graph.graph.nodes["gw1"]["kind"] == "proofpoint"
    assert graph.to_text().splitlines() == [
        "dns (dns) → gw1 (proofpoint/essentials) → exo (exchange-online)",
        "dns (dns) → gw2 (smtp-gateway) → exo (exchange-online)",
    ]
    with pytest.raises(KeyError):
        graph.downstream_of("nope")


def test_hops_ties_follow_the_flow_not_the_tiers_mapping() -> None:
    text = PARALLEL.replace(
        "dns -> gw1 -> exo\n  - dns -> gw2", "dns -> gw2 -> exo\n  - dns -> gw1"
    )
    assert FlowGraph(parse_topology(text)).hops() == ["dns", "gw2", "gw1", "exo"]


HYBRID = """\
topology: hybrid
domains: [example.com]
flow:
  - public-dns -> proofpoint -> exchange-online -> onprem
  - public-dns -> onprem
tiers:
  public-dns: {kind: dns}
  proofpoint: {kind: proofpoint, flavour: pod, hosts: [mx0a-001234.pphosted.com]}
  exchange-online: {kind: exchange-online, inbound_host: example-com.mail.protection.outlook.com}
  onprem: {kind: exchange-onprem, hosts: [mail.example.com]}
"""


def test_hybrid_paths_end_at_the_mailbox_sink() -> None:
    graph = FlowGraph(parse_topology(HYBRID))
    assert graph.hops() == ["public-dns", "proofpoint", "exchange-online", "onprem"]
    assert graph.paths() == [
        ["public-dns", "proofpoint", "exchange-online", "onprem"],
        ["public-dns", "onprem"],
    ]
    assert graph.first_hops() == ["proofpoint", "onprem"]


def test_dot_and_svg() -> None:
    graph = FlowGraph(parse_topology(HYBRID))
    dot = graph.to_dot()
    assert dot.startswith('digraph "hybrid" {')
    assert '"public-dns" -> "proofpoint";' in dot
    assert '"proofpoint" [label="proofpoint\\nproofpoint/pod"];' in dot
    svg = graph.to_svg()
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f"{ns}g")) == 4  # one box per tier
    assert len(root.findall(f"{ns}path")) == 4  # one arrow per edge
    texts = {t.text for t in root.iter(f"{ns}text")}
    assert {"public-dns", "onprem", "proofpoint/pod"} <= texts


def test_svg_escapes_names() -> None:
    text = MINIMAL.replace("topology: t", "topology: '<a & b>'")
    svg = FlowGraph(parse_topology(text)).to_svg()
    assert ET.fromstring(svg) is not None


# -- JSON Schema ----------------------------------------------------------------------------


def test_schema_is_json_and_lists_the_tier_kinds() -> None:
    schema = topology_json_schema()
    text = json.dumps(schema)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"]
    for kind in TIER_KINDS:
        assert f'"{kind}"' in text
    assert set(schema["required"]) >= {"topology", "domains", "flow", "tiers"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = topology_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text("utf-8")))


def test_credentials_in_a_url_are_refused_and_never_echoed() -> None:
    text = (ROOT / "topologies" / "contoso-proofpoint-exo.yaml").read_text()
    for url in ("https://admin:hunter2@example.pphosted.com:10000", "ftp://u:hunter2@x"):
        bad = text.replace("https://example.pphosted.com:10000", url)
        with pytest.raises(TopologyError) as raised:
            parse_topology(bad, "t.yaml")
        assert "hunter2" not in str(raised.value)
        assert raised.value.line is not None


@pytest.mark.parametrize("value", ["!!bool abc", "!!int abc", "!!float abc",
                                   "!!timestamp 2001-13-45", "1" * 5000])
def test_unreadable_values_are_topology_errors_with_a_position(value: str) -> None:
    with pytest.raises(TopologyError) as raised:
        parse_topology(f"topology: {value}\n", "t.yaml")
    assert (raised.value.line, raised.value.source) == (1, "t.yaml")


def test_a_trailing_newline_in_a_name_is_not_part_of_the_name() -> None:
    text = (ROOT / "topologies" / "contoso-proofpoint-exo.yaml").read_text()
    block = text.replace("mx: [mx0a-001234.pphosted.com, mx0b-001234.pphosted.com]",
                         "mx:\n        - |\n          mx0a-001234.pphosted.com\n"
                         "        - mx0b-001234.pphosted.com")
    topology = parse_topology(block)
    assert topology.tiers["public-dns"].expect.mx == [  # type: ignore[union-attr]
        "mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com"]
    with pytest.raises(TopologyError):
        parse_topology(text.replace("username_env: PROOFPOINT_API_USER",
                                    'username_env: "PROOFPOINT_API_USER\\n"'))


def test_many_errors_are_located_in_linear_time() -> None:
    import time

    base = (ROOT / "topologies" / "northwind-exo-direct.yaml").read_text()

    def cpu(keys: int) -> float:  # this process's CPU time: other load does not count
        text = base + "".join(f"k{i}: 1\n" for i in range(keys))
        started = time.process_time()
        with pytest.raises(TopologyError, match="unknown key"):
            parse_topology(text)
        return time.process_time() - started

    # Ten times the errors cost about ten times the time (quadratic would be a hundred)
    assert cpu(20000) < 30 * cpu(2000) + 0.5


def test_merge_key_bomb_is_cheap() -> None:
    """With PyYAML >= 6.0.4 repeated merge keys are not multiplied (9**9 pairs before)."""
    import time

    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    started = time.monotonic()
    with pytest.raises(TopologyError):
        parse_topology("\n".join(lines) + "\ntopology: x\n")
    assert time.monotonic() - started < 5


# -- every problem at once, and one string for a list ---------------------------------------


def test_every_problem_of_a_file_is_reported_at_once_in_document_order() -> None:
    path = BAD / "several-errors.yaml"
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    err = caught.value
    assert [(line, column) for line, column, _ in err.problems] == [
        (2, 24), (10, 14), (11, 5), (12, 3)]
    words = ["'not a domain'", "'pdo'", "hosts", "'inbound_host'"]
    for (_, _, message), word in zip(err.problems, words, strict=True):
        assert word in message
    lines = str(err).splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{path}:") for line in lines)


def test_unknown_and_missing_keys_are_both_reported() -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology(BAD / "unknown-key.yaml")
    assert [(line, column) for line, column, _ in caught.value.problems] == [(11, 5), (8, 3)]
    assert "'hosts'" in caught.value.problems[1][2]


def test_a_flood_of_problems_lists_twenty_and_counts_the_rest() -> None:
    tiers = "".join(f"  t{i}: {{kind: smtp-gateway, hosts: [], colour: red}}\n" for i in range(30))
    text = ("topology: many\ndomains: [contoso.com]\nflow: [public-dns -> t0]\n"
            "tiers:\n  public-dns: {kind: dns}\n" + tiers)
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "many.yaml")
    assert len(caught.value.problems) == 60
    lines = str(caught.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "many.yaml: ... and 40 more"
    assert lines[0].startswith("many.yaml:6:")


def test_every_duplicate_key_is_reported() -> None:
    text = MINIMAL + "domains: [x.com]\nflow: []\n"
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "dup.yaml")
    assert [m.split(" (")[0] for _, _, m in caught.value.problems] == [
        "duplicate key 'domains'", "duplicate key 'flow'"]


def test_one_string_where_a_list_is_expected_is_a_list_of_one() -> None:
    topology = parse_topology("""\
topology: t
domains: Contoso.com
flow: public-dns -> gateway -> exchange-online
tiers:
  public-dns:
    kind: dns
    expect:
      mx: mx0a-001234.pphosted.com
      spf: {include: spf.protection.outlook.com, mechanisms: "a:dispatch-us.ppe-hosted.com"}
      dkim: {selectors: selector1}
  gateway: {kind: proofpoint, flavour: pod, hosts: mx0a-001234.pphosted.com}
  exchange-online: {kind: exchange-online, inbound_host: contoso-com.mail.protection.outlook.com}
""")
    assert topology.domains == ["contoso.com"]
    assert topology.flow == ["public-dns -> gateway -> exchange-online"]
    dns = topology.tiers["public-dns"]
    assert dns.kind == "dns" and dns.expect.mx == ["mx0a-001234.pphosted.com"]
    assert dns.expect.spf is not None and dns.expect.spf.include == ["spf.protection.outlook.com"]
    assert dns.expect.spf.mechanisms == ["a:dispatch-us.ppe-hosted.com"]
    assert dns.expect.dkim is not None and dns.expect.dkim.selectors == ["selector1"]
    gateway = topology.tiers["gateway"]
    assert isinstance(gateway, ProofpointTier) and gateway.hosts == ["mx0a-001234.pphosted.com"]


def test_a_bad_single_string_is_still_located_and_a_mapping_is_still_refused() -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(MINIMAL.replace("domains: [Example.COM.]", "domains: contoso..com"), "s")
    assert (caught.value.line, caught.value.column) == (2, 10)
    assert "'contoso..com'" in caught.value.message
    with pytest.raises(TopologyError) as caught:
        parse_topology(MINIMAL.replace("domains: [Example.COM.]", "domains: {a: b}"), "s")
    assert "list" in caught.value.message


# -- the hybrid and Mimecast examples --------------------------------------------------------


def test_mimecast_hosts_follow_the_region_unless_declared() -> None:
    adatum = load_topology(ROOT / "topologies" / "adatum-mimecast-exo.yaml")
    tier = adatum.tiers["mimecast"]
    assert isinstance(tier, MimecastTier)
    assert adatum.inbound_hosts("mimecast") == ["eu-smtp-inbound-1.mimecast.com",
                                                "eu-smtp-inbound-2.mimecast.com"]
    assert tier.spf_include == "eu._netblocks.mimecast.com"
    za = MimecastTier(kind="mimecast", region="za")
    assert za.hosts[0] == "za-smtp-inbound-1.mimecast.co.za"
    assert za.spf_include == "za._netblocks.mimecast.co.za"
    declared = MimecastTier(kind="mimecast", region="us", hosts=["US-SMTP-Inbound-9.mimecast.com."])
    assert declared.hosts == ["us-smtp-inbound-9.mimecast.com"]


def test_an_unknown_mimecast_region_is_located() -> None:
    text = (ROOT / "topologies" / "adatum-mimecast-exo.yaml").read_text(encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        parse_topology(text.replace("region: eu ", "region: mars "), "adatum.yaml")
    assert "tiers.mimecast.region" in str(caught.value) and "'mars'" in str(caught.value)


def test_the_hybrid_example_declares_what_the_connector_expects() -> None:
    litware = load_topology(ROOT / "topologies" / "litware-hybrid.yaml")
    onprem = litware.tiers["onprem"]
    assert isinstance(onprem, ExchangeOnPremTier)
    assert onprem.tls_certificate_name == "mail.litware.com"
    assert onprem.connector and onprem.connector.startswith("Outbound to ")
    graph = FlowGraph(litware)
    assert graph.next_hops("exchange-online") == ["onprem"]
    assert graph.paths() == [["public-dns", "exchange-online", "onprem"]]
