"""How a ticket's state reads on the helpdesk post and in "My requests" (pure builders)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from bot import blocks, home_tab
from tickets import TicketState

AT = datetime(2026, 12, 5, 14, 5, tzinfo=timezone.utc)


def _post(ticket: TicketState | None) -> str:
    return json.dumps(blocks.escalation_post(escalation_id=12, user_id="U0EMPLOYEE", intent="vpn", urgency="high",
                                             summary="User: vpn", details=None, status="open", ticket=ticket))


def test_the_helpdesk_post_says_where_the_ticket_stands():
    assert "Ticket" not in _post(None)  # tickets off: the post is as it always was
    assert ":hourglass: Ticket pending" in _post(TicketState(status="pending"))
    pending = _post(TicketState(status="pending", attempts=3, error="HTTP 503", next_attempt_at=AT))
    assert "Ticket pending (attempt 3 failed: HTTP 503; next try at <!date^" in pending and "14:05 UTC" in pending
    created = _post(TicketState(status="created", id="INC0010042", url="https://acme.service-now.com/x"))
    assert ":ticket: Ticket <https://acme.service-now.com/x|INC0010042>" in created
    failed = _post(TicketState(status="failed", error="HTTP 400", attempts=1))
    assert ":warning: Ticket failed: HTTP 400" in failed and "not retried" in failed
    assert "Claim" in created and "Resolve" in created  # the channel workflow is unchanged


def test_a_ticket_id_or_link_cannot_break_the_markup():
    assert blocks.ticket_link("A|<b>", "javascript:alert(1)") == "A-&lt;b&gt;"
    assert blocks.ticket_link("#7", "https://x.zendesk.com/agent/tickets/7") == "<https://x.zendesk.com/agent/tickets/7|#7>"


def test_my_requests_lists_the_ticket_of_a_request():
    request = home_tab.Request(id=12, status="open", summary="User: vpn", created_at=AT, user_id="U0EMPLOYEE",
                               ticket_id="HELP-3", ticket_url="https://acme.atlassian.net/browse/HELP-3")
    view = json.dumps(home_tab.home_view(helpdesk_name="IT", topics=(), requests=[request]))
    assert "Ticket <https://acme.atlassian.net/browse/HELP-3|HELP-3>" in view


class PostingClient:
    """Stands in for slack_sdk's WebClient: records each post."""

    def __init__(self) -> None:
        self.posts: list[dict] = []

    def chat_postMessage(self, **params) -> dict:  # noqa: N802 (Slack's name)
        self.posts.append(params)
        return {"ok": True, "channel": params["channel"], "ts": f"1700000001.00000{len(self.posts)}"}


def test_a_door_that_does_not_know_about_tickets_shows_one_only_once_something_happened_to_it(sessions):
    """The web chat posts its escalations without saying whether tickets are on: no 'pending' line then, but a
    ticket the scheduler already opened is shown."""
    from bot.conversation import Escalated
    from bot.helpdesk import post_escalation
    from storage import repository as repo
    from tests.tickets.conftest import open_escalation

    escalation_id = open_escalation(sessions, key="web:0123456789abcdef0123456789ab")
    escalated = Escalated(escalation_id=escalation_id, created=True, urgency="high", summary="User: vpn",
                          details=None, intent="vpn", user_id="web:0123456789abcdef0123456789ab", channel_id="web",
                          key="web:0123456789abcdef0123456789ab")
    client = PostingClient()
    post_escalation(client, sessions, channel="C0HELPDESK", escalated=escalated)
    post_escalation(client, sessions, channel="C0HELPDESK", escalated=escalated, tickets=True)
    with sessions.begin() as session:
        repo.record_ticket(session, escalation_id, ticket_id="T-9", url="https://tickets.example.com/T-9")
    post_escalation(client, sessions, channel="C0HELPDESK", escalated=escalated)
    rendered = [json.dumps(post["blocks"]) for post in client.posts]
    assert "Ticket" not in rendered[0] and "Ticket pending" in rendered[1]
    assert "Ticket <https://tickets.example.com/T-9|T-9>" in rendered[2]
