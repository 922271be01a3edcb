"""The storage API in one import: ``from storage import repository as repo``.

Every function takes the caller's ``session`` first and never commits; the
use case owns the transaction::

    with session_factory.begin() as session:
        if not repo.mark_event_processed(session, event_id):
            return
        conversation = repo.get_or_create_conversation(session, team_id=..., channel_id=..., thread_ts=...,
                                                       user_id=..., source="dm")
        repo.append_message(session, conversation_id=conversation.id, role="user", text=text)
"""

from storage.conversations import (append_message, asked_in, find_conversation, get_or_create_conversation,
                                   open_conversation, recent_turns, set_conversation_state)
from storage.escalations import (active_escalation, add_escalation_detail, cancel_escalation, claim_escalation,
                                 due_tickets, find_escalation_by_message, lease_ticket, list_escalations_for_user,
                                 list_open_escalations_for_user, list_open_queue, open_escalation, rate_escalation,
                                 record_ticket, record_ticket_failure, resolve_escalation, set_escalation_message)
from storage.evaluations import add_evaluation_run, last_evaluation_runs
from storage.feedback import record_feedback
from storage.greetings import forget_greeting, mark_greeted, most_asked_intents
from storage.idempotency import acquire_job_lock, mark_event_processed
from storage.kb_drafts import create_kb_draft, list_kb_drafts, mark_kb_draft_exported
from storage.known_issues import active_known_issues, add_known_issue, clear_known_issues
from storage.privacy import PurgeCounts, export_user, purge_older_than
from storage.stats import OperationsStats, operations_stats

__all__ = [
    "find_conversation", "get_or_create_conversation", "open_conversation", "append_message", "recent_turns",
    "set_conversation_state", "asked_in",
    "open_escalation", "set_escalation_message", "claim_escalation", "resolve_escalation", "cancel_escalation",
    "rate_escalation", "active_escalation", "find_escalation_by_message", "list_open_escalations_for_user",
    "list_escalations_for_user", "list_open_queue", "add_escalation_detail",
    "record_feedback", "mark_greeted", "forget_greeting", "most_asked_intents", "mark_event_processed", "acquire_job_lock",
    "due_tickets", "lease_ticket", "record_ticket", "record_ticket_failure",
    "add_evaluation_run", "last_evaluation_runs",
    "create_kb_draft", "list_kb_drafts", "mark_kb_draft_exported", "PurgeCounts", "purge_older_than", "export_user",
    "OperationsStats", "operations_stats", "add_known_issue", "active_known_issues", "clear_known_issues",
]
