"""Each preset's request against the required fields of its system's documented REST API, sent to a local
receiver that answers in that system's documented shape.

- Jira Service Management, "Create customer request": POST /rest/servicedeskapi/request with ``serviceDeskId``,
  ``requestTypeId`` and ``requestFieldValues`` (``summary`` is required by every request type, 255 characters at
  most; ``description``); the answer has ``issueKey`` and ``_links.web``.
- ServiceNow Table API, "Create a record": POST /api/now/table/incident, a JSON object of field values
  (``short_description``, 160 characters; ``description``; ``urgency`` 1-3); the answer is ``{"result": {...}}``
  with ``number`` and ``sys_id``.
- Zendesk, "Create Ticket": POST /api/v2/tickets.json with ``{"ticket": {...}}``, ``comment`` required (its
  ``body``), ``subject``, ``priority`` one of urgent/high/normal/low; the answer is ``{"ticket": {"id": ...}}``;
  the ``Idempotency-Key`` header makes a repeated create return the first ticket.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from tests.tickets.conftest import PASSWORD, open_escalation
from tickets import deliver_due
from tickets.presets import PresetConfig, preset_sink

TOKEN = "api-token-unique-9f8e7d"


def _answers(name: str, base: str):
    if name == "jira":
        return lambda key, n: {"issueId": str(10000 + n), "issueKey": f"HELP-{n}",
                               "_links": {"web": f"{base}/servicedesk/customer/portal/1/HELP-{n}"}}
    if name == "servicenow":
        return lambda key, n: {"result": {"number": f"INC00100{n:02d}", "sys_id": f"9d385017c611228701d22104cc95c37{n}",
                                          "short_description": "..."}}
    return lambda key, n: {"ticket": {"id": 35436 + n, "url": f"{base}/api/v2/tickets/{35436 + n}.json"}}


@pytest.mark.parametrize(("name", "path", "user", "expected"), [
    ("jira", "/rest/servicedeskapi/request", "agent@example.com", ("HELP-1", "/servicedesk/customer/portal/1/HELP-1")),
    ("servicenow", "/api/now/table/incident", "itbot", (
        "INC0010001", "/nav_to.do?uri=incident.do?sys_id=9d385017c611228701d22104cc95c371")),
    ("zendesk", "/api/v2/tickets.json", "agent@example.com", ("#35437", "/agent/tickets/35437")),
])
def test_each_preset_sends_its_documented_required_fields_and_reads_its_documented_answer(
        sessions, receiver, name, path, user, expected):
    receiver.answer = _answers(name, receiver.url)
    open_escalation(sessions, urgency="critical")
    config = PresetConfig(base_url=receiver.url + "/", user=user, token=SecretStr(TOKEN), service_desk_id="1",
                          request_type_id="25", timeout_s=5)
    (outcome,) = deliver_due(sessions, preset_sink(name, config))
    assert outcome.state.status == "created"
    assert (outcome.state.id, outcome.state.url) == (expected[0], receiver.url + expected[1])
    (request,) = [r for r in receiver.requests if r.body]  # ServiceNow's look-up before it is a GET
    assert request.path == path
    login = f"{user}/token:{TOKEN}" if name == "zendesk" else f"{user}:{TOKEN}"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(login.encode()).decode()
    assert request.headers["Idempotency-Key"].startswith("itbot-escalation-1-")
    assert request.headers["Content-Type"] == "application/json" and request.headers["Accept"] == "application/json"
    body = request.json
    if name == "jira":
        assert set(body) >= {"serviceDeskId", "requestTypeId", "requestFieldValues"}
        assert (body["serviceDeskId"], body["requestTypeId"]) == ("1", "25")
        fields = body["requestFieldValues"]
        summary, description = fields["summary"], fields["description"]
        assert 0 < len(summary) <= 255
    elif name == "servicenow":
        summary, description = body["short_description"], body["description"]
        assert 0 < len(summary) <= 160 and body["urgency"] == "1"
    else:
        ticket = body["ticket"]
        summary, description = ticket["subject"], ticket["comment"]["body"]
        assert ticket["priority"] == "urgent"
    assert summary.startswith("[itbot] Escalation #1: my vpn refuses my password")
    assert "User: my vpn refuses my password" in description and "Bot: Try reconnecting." in description
    assert PASSWORD not in request.body.decode() and TOKEN not in request.body.decode()


def test_a_long_question_is_cut_to_the_shortest_documented_summary(sessions):
    from tickets import Ticket
    from tickets.presets import jira_payload, servicenow_payload, zendesk_payload

    ticket = Ticket(escalation_id=7, idempotency_key="k", subject="[itbot] Escalation #7: " + "x" * 400,
                    transcript="User: ...", urgency="low", requester="U1")
    assert len(servicenow_payload(ticket)["short_description"]) == 160
    assert servicenow_payload(ticket)["urgency"] == "3"
    assert len(jira_payload(ticket, service_desk_id="1", request_type_id="2")["requestFieldValues"]["summary"]) <= 255
    assert zendesk_payload(ticket)["ticket"]["priority"] == "low"


def test_a_preset_answer_without_the_ticket_fails_for_good_with_the_missing_field(sessions, receiver):
    receiver.answer = lambda key, n: {"result": {}}
    open_escalation(sessions)
    config = PresetConfig(base_url=receiver.url, user="itbot", token=SecretStr(TOKEN))
    (outcome,) = deliver_due(sessions, preset_sink("servicenow", config))
    assert (outcome.state.status, outcome.state.error) == ("failed", "the answer has no result.number")


def test_the_api_token_never_reaches_logs_reprs_or_the_database(sessions, receiver, caplog, tmp_path):
    caplog.set_level("DEBUG")
    receiver.enqueue(401)
    open_escalation(sessions)
    sink = preset_sink("zendesk", PresetConfig(base_url=receiver.url, user="a@example.com", token=SecretStr(TOKEN)))
    (outcome,) = deliver_due(sessions, sink)
    assert (outcome.state.status, outcome.state.error) == ("failed", "HTTP 401")
    assert TOKEN not in repr(sink) and TOKEN not in caplog.text
    encoded = base64.b64encode(f"a@example.com/token:{TOKEN}".encode()).decode()
    assert encoded not in repr(sink) and encoded not in caplog.text
    database = (tmp_path / "itbot.db").read_bytes().decode("utf-8", "replace")
    assert TOKEN not in database and encoded not in database


def test_a_servicenow_retry_after_a_lost_answer_finds_the_incident_instead_of_opening_a_second(sessions, receiver):
    """ServiceNow has no idempotency key: the bot looks the incident up by its correlation_id before creating."""
    from tests.tickets.test_ticket_webhook import NOW_RETRY

    receiver.honours_key = False  # as ServiceNow: a second create would open a second incident
    receiver.answer = _answers("servicenow", receiver.url)
    open_escalation(sessions)
    receiver.enqueue(201, delay_s=1.0)  # the incident is created, its answer comes too late
    config = PresetConfig(base_url=receiver.url, user="itbot", token=SecretStr(TOKEN), timeout_s=0.3)
    (first,) = deliver_due(sessions, preset_sink("servicenow", config), backoff=NOW_RETRY)
    assert (first.state.status, first.state.error) == ("pending", "timed out") and len(receiver.tickets) == 1
    config = PresetConfig(base_url=receiver.url, user="itbot", token=SecretStr(TOKEN), timeout_s=5)
    (second,) = deliver_due(sessions, preset_sink("servicenow", config), backoff=NOW_RETRY)
    assert (second.state.status, second.state.id) == ("created", "INC0010001")
    assert len(receiver.tickets) == 1  # found, not opened again
    lookups = [r for r in receiver.requests if not r.body]
    assert len(lookups) == 2 and "correlation_id%3Ditbot-escalation-1-" in lookups[1].path
    assert lookups[1].headers["Authorization"].startswith("Basic ")


def test_a_servicenow_login_that_may_not_read_incidents_still_opens_the_ticket(sessions, receiver, caplog):
    receiver.lookup_status = 403  # the integration user can create incidents but not list them
    receiver.answer = _answers("servicenow", receiver.url)
    open_escalation(sessions)
    config = PresetConfig(base_url=receiver.url, user="itbot", token=SecretStr(TOKEN), timeout_s=5)
    (outcome,) = deliver_due(sessions, preset_sink("servicenow", config))
    assert (outcome.state.status, outcome.state.id) == ("created", "INC0010001")
    assert "look-up before creating a ticket was refused (HTTP 403)" in caplog.text


def test_a_jira_retry_after_a_lost_answer_finds_the_request_by_its_reference(sessions, receiver):
    """Jira has no idempotency key: the request's description ends with it, and a retry searches for it first."""
    from tests.tickets.test_ticket_webhook import NOW_RETRY

    receiver.honours_key = False
    receiver.answer = _answers("jira", receiver.url)
    open_escalation(sessions)
    receiver.enqueue(201, delay_s=1.0)
    config = dict(base_url=receiver.url, user="agent@example.com", token=SecretStr(TOKEN), service_desk_id="1",
                  request_type_id="25")
    (first,) = deliver_due(sessions, preset_sink("jira", PresetConfig(**config, timeout_s=0.3)), backoff=NOW_RETRY)
    assert first.state.status == "pending" and len(receiver.tickets) == 1
    (second,) = deliver_due(sessions, preset_sink("jira", PresetConfig(**config, timeout_s=5)), backoff=NOW_RETRY)
    assert (second.state.status, second.state.id, second.state.url) == ("created", "HELP-1",
                                                                        receiver.url + "/browse/HELP-1")
    assert len(receiver.tickets) == 1
    create = next(r for r in receiver.requests if r.body)
    key = create.headers["Idempotency-Key"]
    assert create.json["requestFieldValues"]["description"].endswith(f"itbot reference: {key}")
    search = [r for r in receiver.requests if not r.body][-1]
    assert search.path.startswith("/rest/api/3/search/jql?") and key in unquote(search.path)
