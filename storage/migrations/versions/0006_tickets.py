"""Tickets: each escalation's ticket in the helpdesk's ticket system (see ``tickets/``).

Escalations opened before this revision have no ticket status (None): they are never sent to a ticket system.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("ticket_status", "ticket_id", "ticket_url", "ticket_attempts", "ticket_next_attempt_at", "ticket_error")


def upgrade() -> None:
    op.add_column("escalations", sa.Column("ticket_status", sa.String(16), nullable=True))
    op.add_column("escalations", sa.Column("ticket_id", sa.String(200), nullable=True))
    op.add_column("escalations", sa.Column("ticket_url", sa.Text(), nullable=True))
    op.add_column("escalations", sa.Column("ticket_attempts", sa.Integer(), nullable=False,
                                           server_default=sa.text("0")))
    op.add_column("escalations", sa.Column("ticket_next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("escalations", sa.Column("ticket_error", sa.String(200), nullable=True))
    op.create_index(op.f("ix_escalations_ticket_status"), "escalations", ["ticket_status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_escalations_ticket_status"), table_name="escalations")
    for column in reversed(COLUMNS):  # a plain DROP COLUMN (SQLite 3.35+): no table rebuild
        op.drop_column("escalations", column)
