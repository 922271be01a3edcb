"""Known issues: outage notices agents post for a topic, shown above the answers on it (``storage/known_issues.py``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_issues")),
    )
    op.create_index(op.f("ix_known_issues_topic"), "known_issues", ["topic"])
    op.create_index(op.f("ix_known_issues_expires_at"), "known_issues", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_known_issues_expires_at"), table_name="known_issues")
    op.drop_index(op.f("ix_known_issues_topic"), table_name="known_issues")
    op.drop_table("known_issues")
