"""``ndr --triage`` follows the message that bounced, with the keys it can send safely."""

from __future__ import annotations

from datetime import timedelta

from mailtrace.intake.dsn import OriginalMessage
from mailtrace.topology import load_topology
from mailtrace.usecases.ndr import bounced_target
from tests.support.paths import ROOT

TOPOLOGY = load_topology(ROOT / "topologies" / "contoso-proofpoint-exo.yaml")
SINCE = timedelta(hours=6)


def test_the_message_id_and_sender_are_followed():
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE, OriginalMessage(
        "<a1@fabrikam.example>", "carol@fabrikam.example", "Invoice"))
    assert (target.recipient, target.message_id, target.sender, target.subject,
            target.since) == ("alice@contoso.com", "<a1@fabrikam.example>",
                              "carol@fabrikam.example", None, SINCE)
    assert target.asks_message


def test_without_a_message_id_the_subject_narrows_the_sender():
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE,
                            OriginalMessage(None, "carol@fabrikam.example", "Invoice"))
    assert (target.message_id, target.sender, target.subject) == (
        None, "carol@fabrikam.example", "Invoice")


def test_a_key_that_cannot_be_sent_is_left_out_not_fatal():
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE,
                            OriginalMessage("<a1@fabrikam.example>", "carol@fabrikam.example",
                                            "Invoice"))
    assert target.subject is None and target.message_id == "<a1@fabrikam.example>"
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE,
                            OriginalMessage("<a1\x7f@x>", "carol@fabrikam.example", None))
    assert (target.message_id, target.sender) == (None, "carol@fabrikam.example")
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE,
                            OriginalMessage(None, "carol@fabrikam.example", "a\x00b"))
    assert (target.sender, target.subject) == ("carol@fabrikam.example", None)


def test_no_returned_message_is_the_recipient_alone():
    target = bounced_target(TOPOLOGY, "alice@contoso.com", SINCE, None)
    assert not target.asks_message and target.recipient == "alice@contoso.com"
