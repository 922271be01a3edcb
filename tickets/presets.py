"""The webhook shaped for three ticket systems, from their documented REST APIs.

=====================  ======================================  =========================================
System                 Request                                 Reference in the answer
=====================  ======================================  =========================================
Jira Service Mgmt      POST /rest/servicedeskapi/request        ``issueKey``, link ``_links.web``
                       serviceDeskId, requestTypeId,
                       requestFieldValues.summary/description
ServiceNow             POST /api/now/table/incident             ``result.number``, link built from
                       short_description, description, urgency  ``result.sys_id``
Zendesk                POST /api/v2/tickets.json                ``ticket.id``, link /agent/tickets/<id>
                       ticket.subject, ticket.comment.body,
                       ticket.priority
=====================  ======================================  =========================================

Each uses HTTP basic authentication with an API token (Jira: ``email:token``; ServiceNow: ``user:password``;
Zendesk: ``email/token:token``). Every request still carries the ``Idempotency-Key`` (Zendesk honours it). ServiceNow
stores it as the incident's ``correlation_id``, and the bot first looks for an incident with it
(``GET /api/now/table/incident?sysparm_query=correlation_id=<key>``), so a retry after a lost answer finds the
incident it opened instead of opening a second. Jira has neither: the request's description ends with the key
("itbot reference: <key>") and the bot first searches for it (``GET /rest/api/3/search/jql``, ``text ~ "<key>"``),
which finds the request once Jira has indexed it (in practice well before the first retry, 30 s later).
"""

from __future__ import annotations

import base64
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import SecretStr

from tickets.errors import TicketRejected
from tickets.ticket import Ticket, TicketRef
from tickets.webhook import WebhookSink

__all__ = ["PresetConfig", "PRESETS", "preset_sink", "jira_payload", "servicenow_payload", "zendesk_payload",
           "SUMMARY_LIMIT"]

SUMMARY_LIMIT = 160  # ServiceNow's short_description holds 160 characters; Jira's summary 255
# ServiceNow's urgency: 1 high, 2 medium, 3 low; Zendesk's priority: urgent, high, normal, low
_SERVICENOW_URGENCY = {"critical": "1", "high": "1", "normal": "2", "low": "3"}
_ZENDESK_PRIORITY = {"critical": "urgent", "high": "high", "normal": "normal", "low": "low"}


@dataclass(frozen=True, slots=True)
class PresetConfig:
    """What a preset needs: the instance, a login, and the system's own ids (Jira's desk and request type)."""

    base_url: str  # https://acme.atlassian.net, https://acme.service-now.com, https://acme.zendesk.com
    user: str  # the account's email (Jira, Zendesk) or user name (ServiceNow)
    token: SecretStr  # the API token (Jira, Zendesk) or password (ServiceNow)
    service_desk_id: str | None = None  # Jira only
    request_type_id: str | None = None  # Jira only
    timeout_s: float = 10.0


def _subject(ticket: Ticket) -> str:
    return ticket.subject if len(ticket.subject) <= SUMMARY_LIMIT else ticket.subject[:SUMMARY_LIMIT - 1] + "…"


def jira_payload(ticket: Ticket, *, service_desk_id: str, request_type_id: str) -> dict[str, Any]:
    """A Jira Service Management customer request (``POST /rest/servicedeskapi/request``)."""
    # The reference line lets a retry find the request by a text search (Jira has no idempotency key)
    description = f"{ticket.transcript}\n\nitbot reference: {ticket.idempotency_key}"
    return {"serviceDeskId": service_desk_id, "requestTypeId": request_type_id,
            "requestFieldValues": {"summary": _subject(ticket), "description": description}}


def servicenow_payload(ticket: Ticket) -> dict[str, Any]:
    """A ServiceNow incident (``POST /api/now/table/incident``)."""
    return {"short_description": _subject(ticket), "description": ticket.transcript,
            "urgency": _SERVICENOW_URGENCY.get(ticket.urgency, "2"), "contact_type": "chat",
            "correlation_id": ticket.idempotency_key}


def zendesk_payload(ticket: Ticket) -> dict[str, Any]:
    """A Zendesk ticket (``POST /api/v2/tickets.json``); the requester is the API user unless set otherwise."""
    return {"ticket": {"subject": _subject(ticket), "comment": {"body": ticket.transcript, "public": False},
                       "priority": _ZENDESK_PRIORITY.get(ticket.urgency, "normal"),
                       "external_id": ticket.idempotency_key, "tags": ["itbot"]}}


def _need(answer: Any, *path: str) -> Any:
    value = answer
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, ""):
        raise TicketRejected(f"the answer has no {'.'.join(path)}")
    return value


def _jira_reference(base_url: str) -> Callable[[Any], TicketRef]:
    def read(answer: Any) -> TicketRef:
        key = str(_need(answer, "issueKey"))
        web = (answer.get("_links") or {}).get("web") if isinstance(answer.get("_links"), dict) else None
        return TicketRef(id=key, url=web or f"{base_url}/browse/{key}")

    return read


def _search(url: str, query: dict[str, str], headers: dict[str, str]) -> urllib.request.Request:
    """A GET of the system's search API with the preset's login: the look-up before a create."""
    return urllib.request.Request(f"{url}?{urllib.parse.urlencode(query)}", method="GET",
                                  headers={"Accept": "application/json", "User-Agent": "itbot", **headers})


def _jira_lookup(base_url: str, headers: dict[str, str]) -> Callable[[Ticket], urllib.request.Request]:
    def request(ticket: Ticket) -> urllib.request.Request:
        return _search(f"{base_url}/rest/api/3/search/jql", {
            "jql": f'text ~ "\\"{ticket.idempotency_key}\\""', "fields": "key", "maxResults": "1"}, headers)

    return request


def _jira_found(base_url: str) -> Callable[[Any], TicketRef | None]:
    def found(answer: Any) -> TicketRef | None:
        issues = answer.get("issues") if isinstance(answer, dict) else None
        key = issues[0].get("key") if isinstance(issues, list) and issues and isinstance(issues[0], dict) else None
        return TicketRef(id=str(key), url=f"{base_url}/browse/{key}") if key else None

    return found


def _servicenow_lookup(base_url: str, headers: dict[str, str]) -> Callable[[Ticket], urllib.request.Request]:
    def request(ticket: Ticket) -> urllib.request.Request:
        return _search(f"{base_url}/api/now/table/incident", {
            "sysparm_query": f"correlation_id={ticket.idempotency_key}", "sysparm_fields": "number,sys_id",
            "sysparm_limit": "1"}, headers)

    return request


def _servicenow_found(base_url: str) -> Callable[[Any], TicketRef | None]:
    read = _servicenow_reference(base_url)

    def found(answer: Any) -> TicketRef | None:
        rows = answer.get("result") if isinstance(answer, dict) else None
        return read({"result": rows[0]}) if isinstance(rows, list) and rows else None

    return found


def _servicenow_reference(base_url: str) -> Callable[[Any], TicketRef]:
    def read(answer: Any) -> TicketRef:
        number, sys_id = str(_need(answer, "result", "number")), str(_need(answer, "result", "sys_id"))
        return TicketRef(id=number, url=f"{base_url}/nav_to.do?uri=incident.do?sys_id={sys_id}")

    return read


def _zendesk_reference(base_url: str) -> Callable[[Any], TicketRef]:
    def read(answer: Any) -> TicketRef:
        ticket_id = str(_need(answer, "ticket", "id"))
        return TicketRef(id=f"#{ticket_id}", url=f"{base_url}/agent/tickets/{ticket_id}")

    return read


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def preset_sink(name: str, config: PresetConfig) -> WebhookSink:
    """The webhook sink of preset ``name`` (``jira``, ``servicenow`` or ``zendesk``)."""
    base, token = config.base_url.rstrip("/"), config.token.get_secret_value()
    if name == "jira":
        assert config.service_desk_id and config.request_type_id
        desk, kind = config.service_desk_id, config.request_type_id
        login = {"Authorization": _basic(config.user, token)}
        return WebhookSink(url=f"{base}/rest/servicedeskapi/request", name=name, timeout_s=config.timeout_s,
                           payload=lambda ticket: jira_payload(ticket, service_desk_id=desk, request_type_id=kind),
                           reference=_jira_reference(base), headers=login,
                           lookup=_jira_lookup(base, login), found=_jira_found(base))
    if name == "servicenow":
        login = {"Authorization": _basic(config.user, token)}
        return WebhookSink(url=f"{base}/api/now/table/incident", name=name, timeout_s=config.timeout_s,
                           payload=servicenow_payload, reference=_servicenow_reference(base), headers=login,
                           lookup=_servicenow_lookup(base, login), found=_servicenow_found(base))
    if name == "zendesk":
        return WebhookSink(url=f"{base}/api/v2/tickets.json", name=name, timeout_s=config.timeout_s,
                           payload=zendesk_payload, reference=_zendesk_reference(base),
                           headers={"Authorization": _basic(f"{config.user}/token", token)})
    raise ValueError(f"no ticket preset {name!r} (one of {', '.join(PRESETS)})")


PRESETS = ("jira", "servicenow", "zendesk")
