"""The web chat: conversations from the web (source ``web``) and a rate limit the replicas share.

``conversations.source`` accepts ``web``; ``rate_limit_windows`` counts each web client's requests per window
(see ``storage/ratelimit.py``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_SOURCES = "source IN ('dm', 'slash', 'mention', 'console')"
NEW_SOURCES = "source IN ('dm', 'slash', 'mention', 'console', 'web')"


def _sources(condition: str) -> None:
    with op.batch_alter_table("conversations", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_conversations_source"), type_="check")
        batch.create_check_constraint("source", condition)


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window", name=op.f("pk_rate_limit_windows")),
    )
    op.create_index(op.f("ix_rate_limit_windows_expires_at"), "rate_limit_windows", ["expires_at"])
    _sources(NEW_SOURCES)


def downgrade() -> None:
    op.execute("DELETE FROM conversations WHERE source = 'web'")
    _sources(OLD_SOURCES)
    op.drop_index(op.f("ix_rate_limit_windows_expires_at"), table_name="rate_limit_windows")
    op.drop_table("rate_limit_windows")
