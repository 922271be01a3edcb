"""Evaluation runs of the answer engine, for the nightly digest and its trend chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import EvaluationRun

__all__ = ["add_evaluation_run", "last_evaluation_runs"]


def add_evaluation_run(session: Session, *, started_at: datetime, finished_at: datetime, model: str, mode: str,
                       metrics: dict[str, Any], n: int, adapter: str | None = None) -> EvaluationRun:
    """Store one evaluation run.

    Args:
        session: The caller's session.
        started_at: When it started (aware).
        finished_at: When it finished (aware); the duration is derived from both.
        model: The model evaluated (the embedded model's name in ``kb`` mode too).
        mode: The answer mode, ``kb``, ``llm`` or ``hybrid``.
        metrics: Plain JSON values only (convert numpy floats first), e.g. ``{"intent_accuracy": 0.93}``.
        n: Number of test examples.
        adapter: The LoRA adapter, if any.

    Returns:
        The stored run, flushed.
    """
    run = EvaluationRun(started_at=started_at, finished_at=finished_at, model=model, adapter=adapter, mode=mode,
                        metrics=metrics, n=n, duration_s=(finished_at - started_at).total_seconds())
    session.add(run)
    session.flush()
    return run


def last_evaluation_runs(session: Session, n: int = 14) -> list[EvaluationRun]:
    """The ``n`` latest runs, oldest first: ``runs[-1]`` is the latest, ``runs[-2]`` the one to compare with."""
    newest_first = session.scalars(
        select(EvaluationRun).order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc()).limit(n)
    ).all()
    return list(reversed(newest_first))
