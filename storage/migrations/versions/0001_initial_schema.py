"""Initial schema: conversations, messages, escalations, feedback, processed events,
evaluation runs, knowledge-base drafts and job locks.

Revision ID: 0001
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ACTIVE_ESCALATION = "status IN ('open', 'claimed')"


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _choice(table: str, column: str, values: tuple[str, ...]) -> tuple[sa.Column, sa.CheckConstraint]:
    allowed = ", ".join(f"'{value}'" for value in values)
    return (sa.Column(column, sa.String(32), nullable=False),
            sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}")))


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        *_choice("conversations", "source", ("dm", "slash", "mention", "console")),
        *_choice("conversations", "state", ("open", "handed_to_human", "closed")),
        _utc("created_at"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("team_id", "channel_id", "thread_ts",
                            name=op.f("uq_conversations_team_id_channel_id_thread_ts")),
    )
    op.create_index(op.f("ix_conversations_updated_at"), "conversations", ["updated_at"])
    op.create_index(op.f("ix_conversations_user_id"), "conversations", ["user_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        *_choice("messages", "role", ("user", "assistant", "agent")),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("adapter", sa.Text(), nullable=True),
        _utc("created_at"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_messages_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_conversation_id"), "messages", ["conversation_id"])
    op.create_index(op.f("ix_messages_created_at"), "messages", ["created_at"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        *_choice("escalations", "status", ("open", "claimed", "resolved", "cancelled")),
        *_choice("escalations", "urgency", ("low", "normal", "high", "critical")),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.String(32), nullable=True),
        sa.Column("channel_message_ts", sa.String(32), nullable=True),
        sa.Column("claimed_by", sa.String(32), nullable=True),
        _utc("claimed_at", nullable=True),
        sa.Column("resolved_by", sa.String(32), nullable=True),
        _utc("resolved_at", nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        _utc("created_at"),
        sa.CheckConstraint("satisfaction BETWEEN 1 AND 5", name=op.f("ck_escalations_satisfaction_1_to_5")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_escalations_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_conversation_id"), "escalations", ["conversation_id"])
    op.create_index(op.f("ix_escalations_created_at"), "escalations", ["created_at"])
    op.create_index(op.f("ix_escalations_status"), "escalations", ["status"])
    op.create_index("uq_escalations_active_conversation", "escalations", ["conversation_id"], unique=True,
                    sqlite_where=sa.text(ACTIVE_ESCALATION), postgresql_where=sa.text(ACTIVE_ESCALATION))

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        *_choice("feedback", "kind", ("solved", "helpful", "not_helpful")),
        _utc("created_at"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name=op.f("fk_feedback_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("message_id", "user_id", name=op.f("uq_feedback_message_id_user_id")),
    )
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(128), nullable=False),
        _utc("received_at"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(op.f("ix_processed_events_received_at"), "processed_events", ["received_at"])

    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("started_at"),
        _utc("finished_at"),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("adapter", sa.Text(), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_runs")),
    )
    op.create_index(op.f("ix_evaluation_runs_started_at"), "evaluation_runs", ["started_at"])

    op.create_table(
        "kb_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        _utc("created_at"),
        sa.Column("exported", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="SET NULL",
                                name=op.f("fk_kb_drafts_escalation_id_escalations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_drafts")),
    )
    op.create_index(op.f("ix_kb_drafts_escalation_id"), "kb_drafts", ["escalation_id"])

    op.create_table(
        "job_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("period_key", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        _utc("acquired_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_locks")),
        sa.UniqueConstraint("name", "period_key", name=op.f("uq_job_locks_name_period_key")),
    )


def downgrade() -> None:
    for table in ("job_locks", "kb_drafts", "evaluation_runs", "processed_events", "feedback", "escalations",
                  "messages", "conversations"):
        op.drop_table(table)
