"""The RFC 7208 conformance suite (openspf.org 2014.04, 203 cases), every case evaluated
by check_host() asking over real DNS the lab's servers, which serve the scenario's zone
data (tests/spfsuite.py)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.support import spfsuite

CASES = list(spfsuite.cases())


def test_the_whole_suite_is_here():
    assert len(CASES) == 203
    assert len({c.scenario for c in CASES}) == 16


def test_the_repository_copy_is_the_shared_suite():
    """CI runs on a clean clone, so the suite lives in tests/data/; it must stay the
    published file (compared with the shared data folder when that exists)."""
    if spfsuite.SHARED is None:
        pytest.skip("no ../shared/data/rfc7208 beside the project (a clean clone)")
    shared = spfsuite.SHARED / "rfc7208-tests.yml"
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (shared, spfsuite.COPY)]
    assert digest[0] == digest[1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rfc7208_case(case: spfsuite.Case):
    result = asyncio.run(spfsuite.run_case(case))
    assert result.result in case.results, result.problem
    if case.explanation == "DEFAULT":
        assert result.explanation is None
    elif case.explanation is not None:
        # Only the case of the %{i} nibbles differs from the suite's text: RFC 7208 §7.4's
        # own example spells them in lowercase, as DNS names are compared.
        assert (result.explanation or "").lower() == case.explanation.lower()
