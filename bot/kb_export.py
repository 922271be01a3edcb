"""Export draft articles (saved from resolved escalations) as Markdown for the IT team to review."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from answers.taxonomy import IT_INTENTS
from storage import repository as repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["export_drafts", "draft_markdown"]


def draft_markdown(*, draft_id: int, title: str, intent: str, body: str) -> str:
    """A KB article file marked ``draft: true`` (the engine skips drafts until someone removes the flag)."""
    front = {"id": f"draft-{draft_id}", "title": title, "topic": intent, "platforms": ["all"], "keywords": [],
             "examples": [title], "draft": True}
    safe_body = re.sub(r"[{}]", "", body)  # braces are reserved for organisation placeholders
    return f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{safe_body.strip()}\n"


def export_drafts(sessions: "sessionmaker[Session]", kb_dir: Path) -> list[Path]:
    """Write every not-yet-exported draft to ``kb_dir/<intent>/draft-<id>.md`` and mark it exported."""
    written = []
    with sessions.begin() as session:
        for draft in repo.list_kb_drafts(session, exported=False):
            intent = draft.intent if draft.intent in IT_INTENTS else "general"
            path = kb_dir / intent / f"draft-{draft.id}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(draft_markdown(draft_id=draft.id, title=draft.title, intent=intent, body=draft.body),
                            encoding="utf-8")
            repo.mark_kb_draft_exported(session, draft.id)
            written.append(path)
    return written
