"""Slack's AI-app surfaces: who was greeted in the Messages tab, and the Slack ts of each question.

``greeted_users`` remembers that a user got the one-time greeting. ``messages.slack_ts`` (user turns) and
``pending_questions.message_ts`` keep the Slack ts of the message that asked, so the bot can react on it
(✅ when the person marks the answer solved).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "greeted_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("greeted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_greeted_users")),
        sa.UniqueConstraint("team_id", "user_id", name=op.f("uq_greeted_users_team_id_user_id")),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("slack_ts", sa.String(32), nullable=True))
    with op.batch_alter_table("pending_questions") as batch:
        batch.add_column(sa.Column("message_ts", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_questions") as batch:
        batch.drop_column("message_ts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("slack_ts")
    op.drop_table("greeted_users")
