"""The trend chart of the last evaluation runs (PNG), posted with the digest and written by ``itbot eval --plot``.

Drawn on a bare matplotlib ``Figure`` (no pyplot state), so it is safe on the
scheduler's thread and needs no display.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

__all__ = ["TrendPoint", "trend_chart", "CHART_RUNS"]

CHART_RUNS = 14
TARGET = 0.95  # the quality target of the answer-engine issue, drawn as a dashed line
_SCORES = (("intent_accuracy", "intent accuracy"), ("oos_f1", "out-of-scope F1"),
           ("action_accuracy", "action accuracy"), ("rouge_l", "ROUGE-L"))
_LATENCIES = (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"))


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One evaluation run as the chart needs it."""

    at: datetime
    metrics: dict[str, float]
    mode: str = "kb"


def trend_chart(points: Sequence[TrendPoint], *, title: str = "Answer quality, last runs") -> bytes:
    """A two-panel PNG: scores (0-1) above, latency (ms) below, one x position per run, oldest left.

    Raises:
        ValueError: No points to draw.
    """
    if not points:
        raise ValueError("no evaluation runs to chart")
    from matplotlib.figure import Figure

    points = list(points)[-CHART_RUNS:]
    xs = list(range(len(points)))
    labels = [point.at.strftime("%d %b") for point in points]
    figure = Figure(figsize=(9, 5.5), dpi=110, layout="constrained")
    scores, latency = figure.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    for key, label in _SCORES:
        series = [(x, p.metrics[key]) for x, p in zip(xs, points) if key in p.metrics]
        if series:
            scores.plot(*zip(*series), marker="o", linewidth=2, label=label)
    scores.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"target {TARGET:.2f}")
    values = [p.metrics[key] for p in points for key, _ in _SCORES if key in p.metrics]
    low = min(values, default=0.0)
    scores.set_ylim(max(0.0, min(low - 0.05, 0.9)), 1.005)
    scores.set_ylabel("score")
    scores.grid(alpha=0.3)
    scores.legend(loc="lower left", fontsize=8, ncols=2)
    scores.set_title(title)
    for key, label in _LATENCIES:
        series = [(x, p.metrics[key]) for x, p in zip(xs, points) if key in p.metrics]
        if series:
            latency.plot(*zip(*series), marker=".", linewidth=1.5, label=label)
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.grid(alpha=0.3)
    latency.legend(loc="upper left", fontsize=8)
    latency.set_xticks(xs, labels, rotation=0 if len(xs) < 8 else 45, fontsize=8)
    latency.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
