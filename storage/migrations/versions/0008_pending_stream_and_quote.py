"""Nothing lost mid-stream or mid-shortcut: two nullable columns on ``pending_questions``.

``streamed_ts`` is the message an answer began streaming into (``chat.startStream`` takes no metadata, so a
later attempt could not find a half-written answer otherwise); ``quote`` is the DM post a message shortcut's
question still has to open its thread with (the question is stored before Slack is acknowledged, the post
comes after).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_questions") as batch:
        batch.add_column(sa.Column("streamed_ts", sa.String(32), nullable=True))
        batch.add_column(sa.Column("quote", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_questions") as batch:
        batch.drop_column("quote")
        batch.drop_column("streamed_ts")
