"""Knowledge-base drafts saved from resolved escalations, for the IT team to review and export."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from answers.redact import redact
from storage.models import KbDraft

__all__ = ["create_kb_draft", "list_kb_drafts", "mark_kb_draft_exported"]

TITLE_MAX = 200


def create_kb_draft(session: Session, *, escalation_id: int | None, title: str, body: str,
                    intent: str | None = None) -> KbDraft:
    """Save an agent's answer as a draft article; title and body are redacted first.

    Args:
        session: The caller's session.
        escalation_id: The escalation it came from (None for a draft written by hand).
        title: The article title; cut to 200 characters.
        body: The article text (Markdown).
        intent: The intent it answers, if known.

    Returns:
        The stored draft, flushed.
    """
    draft = KbDraft(escalation_id=escalation_id, title=redact(title).text[:TITLE_MAX], body=redact(body).text,
                    intent=intent)
    session.add(draft)
    session.flush()
    return draft


def list_kb_drafts(session: Session, *, exported: bool | None = None) -> list[KbDraft]:
    """Drafts oldest first; ``exported=False`` gives those still to export, None gives all."""
    query = select(KbDraft).order_by(KbDraft.created_at, KbDraft.id)
    if exported is not None:
        query = query.where(KbDraft.exported.is_(exported))
    return list(session.scalars(query))


def mark_kb_draft_exported(session: Session, draft_id: int) -> bool:
    """Flag a draft as written to ``data/kb/``.

    Returns:
        True if it existed and was not exported before.
    """
    result = session.execute(update(KbDraft).where(KbDraft.id == draft_id, KbDraft.exported.is_(False))
                             .values(exported=True))
    return result.rowcount == 1
