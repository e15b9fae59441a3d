"""The Graph v1.0 answers the Exchange Online probes read, as small pydantic models.

Only the fields a probe uses are declared — the requests' ``$select`` already names them —
and anything else in an answer is ignored, so a field Graph adds tomorrow changes nothing.
Every field may be missing or ``null`` (Graph leaves out what it does not know). Field
names are msgraph-sdk's (the JSON names in snake_case), so the probes read an answer as
they would read the SDK's model; msgraph-sdk's own model classes are not used for answers:
reading one entity with them imports the whole model graph reachable from it, thousands of
modules (msgraph-sdk-python issues #584 and #904).

Enumerations are read as msgraph-sdk reads them: a documented value, in any case, becomes
its documented spelling; an unknown one becomes ``None`` (graph-exo reference §6,
"Errors": unknown enum strings parse to None). Entities and their fields: graph-exo
reference §1-§5 and the Graph v1.0 resource pages (user, group, orgContact, domain,
domainDnsRecord, mailboxSettings, mailTips, messageRule, serviceHealthIssue,
exchangeMessageTrace, exchangeMessageTraceDetail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class Wire(BaseModel):
    """A Graph JSON object: camelCase on the wire, read-only once read."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="ignore", frozen=True, defer_build=True)


def _one_of(*values: str) -> Callable[[Any], str | None]:
    known = {v.lower(): v for v in values}

    def read(raw: Any) -> str | None:
        return known.get(raw.lower()) if isinstance(raw, str) else None

    return read


#: mailboxSettings.userPurpose (reference §3).
UserPurpose = Annotated[str | None, BeforeValidator(_one_of(
    "user", "linked", "shared", "room", "equipment", "others", "unknownFutureValue"))]
#: serviceHealthIssue.classification and .status (reference §4).
HealthClassification = Annotated[str | None, BeforeValidator(_one_of(
    "advisory", "incident", "unknownFutureValue"))]
HealthStatus = Annotated[str | None, BeforeValidator(_one_of(
    "serviceOperational", "investigating", "restoringService", "verifyingService",
    "serviceRestored", "postIncidentReviewPublished", "serviceDegradation",
    "serviceInterruption", "extendedRecovery", "falsePositive", "investigationSuspended",
    "resolved", "mitigatedExternal", "mitigated", "resolvedExternal", "confirmed", "reported",
    "unknownFutureValue"))]
#: exchangeMessageTrace.status (reference §5).
TraceStatus = Annotated[str | None, BeforeValidator(_one_of(
    "gettingStatus", "pending", "failed", "delivered", "expanded", "quarantined",
    "filteredAsSpam", "recalled", "unknownFutureValue"))]


class Page(Wire, Generic[T]):
    """A collection answer: one page of ``value`` and the link to the next one."""

    value: list[T] | None = None
    next_link: str | None = Field(default=None, alias="@odata.nextLink")


# --- directory: users, groups, org contacts (reference §2) --------------------------------

class AssignedPlan(Wire):
    service: str | None = None
    capability_status: str | None = None
    service_plan_id: str | None = None


class ProvisionedPlan(Wire):
    service: str | None = None
    capability_status: str | None = None
    provisioning_status: str | None = None


class DirectoryEntry(Wire):
    """A user, group or org contact: the fields of the three that the lookup selects."""

    id: str | None = None
    display_name: str | None = None
    mail: str | None = None
    proxy_addresses: list[str] | None = None
    # user
    user_principal_name: str | None = None
    account_enabled: bool | None = None
    user_type: str | None = None
    assigned_plans: list[AssignedPlan] | None = None
    provisioned_plans: list[ProvisionedPlan] | None = None
    on_premises_sync_enabled: bool | None = None  # Exchange hybrid: synced from on-premises
    # group
    mail_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: list[str] | None = None


class MailboxSettings(Wire):
    user_purpose: UserPurpose = None


# --- domains (reference §1) ---------------------------------------------------------------

class Domain(Wire):
    id: str | None = None
    is_verified: bool | None = None
    supported_services: list[str] | None = None
    authentication_type: str | None = None


class DomainDnsRecord(Wire):
    """A ``domainDnsRecord``; the fields of its MX, TXT and CNAME kinds side by side (the
    ``@odata.type`` of each item says which one it is; only one of them is set)."""

    record_type: str | None = None
    label: str | None = None
    supported_service: str | None = None
    mail_exchange: str | None = None  # domainDnsMxRecord
    preference: int | None = None
    text: str | None = None  # domainDnsTxtRecord
    canonical_name: str | None = None  # domainDnsCnameRecord
    ttl: int | None = None


# --- the mailbox: MailTips, inbox rules (reference §2, §3) ---------------------------------

class EmailAddress(Wire):
    address: str | None = None
    name: str | None = None


class Recipient(Wire):
    email_address: EmailAddress | None = None


class MailTipsError(Wire):
    code: str | None = None
    message: str | None = None


class MailTips(Wire):
    email_address: EmailAddress | None = None
    mailbox_full: bool | None = None
    delivery_restricted: bool | None = None
    is_moderated: bool | None = None
    max_message_size: int | None = None
    error: MailTipsError | None = None


class MessageRuleActions(Wire):
    delete: bool | None = None
    permanent_delete: bool | None = None
    move_to_folder: str | None = None
    forward_to: list[Recipient] | None = None
    forward_as_attachment_to: list[Recipient] | None = None
    redirect_to: list[Recipient] | None = None
    stop_processing_rules: bool | None = None


class MessageRule(Wire):
    id: str | None = None
    display_name: str | None = None
    sequence: int | None = None
    is_enabled: bool | None = None
    #: ``messageRulePredicates`` as Graph sent them (camelCase names): every condition a
    #: rule has is shown, including kinds added after this was written.
    conditions: dict[str, Any] | None = None
    exceptions: dict[str, Any] | None = None
    actions: MessageRuleActions | None = None


# --- service health (reference §4) ---------------------------------------------------------

class ServiceHealthIssue(Wire):
    id: str | None = None
    title: str | None = None
    service: str | None = None
    feature: str | None = None
    feature_group: str | None = None
    classification: HealthClassification = None
    status: HealthStatus = None
    is_resolved: bool | None = None
    start_date_time: dt.datetime | None = None


# --- message trace (reference §5) ----------------------------------------------------------

class MessageTrace(Wire):
    id: str | None = None
    sender_address: str | None = None
    recipient_address: str | None = None
    subject: str | None = None
    received_date_time: dt.datetime | None = None
    status: TraceStatus = None
    message_id: str | None = None  # the Message-ID header: the join key across tiers


class MessageTraceDetail(Wire):
    date_time: dt.datetime | None = None
    event: str | None = None
    action: str | None = None
    description: str | None = None
    data: str | None = None  # the event's XML detail (e.g. the spam verdict, SCL)


def build() -> None:
    """Build the validators of the answers the probes read now (they are built on first
    use otherwise): the client calls it with the SDK's imports, off the event loop."""
    for model in (Domain, MailboxSettings, Page[DirectoryEntry], Page[DomainDnsRecord],
                  Page[MailTips], Page[MessageRule], Page[ServiceHealthIssue],
                  Page[MessageTrace], Page[MessageTraceDetail]):
        model.model_rebuild()
