"""The nightly digest's figures: tonight's evaluation against the previous one, and the last 24 hours.

Pure functions from plain data (an evaluation report, stored metrics,
:class:`~storage.stats.OperationsStats`) to a :class:`Digest`; rendering lives
in :mod:`bot.digest_blocks`, the scheduled job in :mod:`bot.nightly`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from storage.stats import OperationsStats

__all__ = ["MetricSpec", "METRICS", "MetricLine", "RunInfo", "Digest", "run_metrics", "compare", "build_digest",
           "percent", "duration"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One tracked figure, and when a change in it deserves a warning."""

    key: str
    label: str
    higher_is_better: bool
    # A score that falls by more than ``tolerance`` (absolute), or a latency that rises by more than
    # ``tolerance`` (relative) *and* by at least ``floor`` ms, is flagged. Latency on a shared machine is
    # noisy, so a few milliseconds never warn.
    tolerance: float
    floor: float = 0.0
    unit: str = ""

    def format(self, value: float) -> str:
        return f"{value:,.0f} {self.unit}".strip() if self.unit else f"{value:.3f}"

    def format_delta(self, delta: float) -> str:
        arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
        number = f"{abs(delta):,.0f} {self.unit}".strip() if self.unit else f"{abs(delta):.3f}"
        sign = "+" if delta > 0 else "−" if delta < 0 else ""
        return f"{arrow} {sign}{number}"

    def dropped(self, previous: float, current: float) -> bool:
        if self.higher_is_better:
            return previous - current > self.tolerance
        return current - previous >= self.floor and current > previous * (1 + self.tolerance)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("intent_accuracy", "Intent accuracy", True, tolerance=0.02),
    MetricSpec("oos_f1", "Out-of-scope F1", True, tolerance=0.02),
    MetricSpec("action_accuracy", "Action accuracy", True, tolerance=0.02),
    MetricSpec("rouge_l", "Answer quality (ROUGE-L)", True, tolerance=0.03),
    MetricSpec("latency_p50_ms", "Latency p50", False, tolerance=0.5, floor=100.0, unit="ms"),
    MetricSpec("latency_p95_ms", "Latency p95", False, tolerance=0.5, floor=100.0, unit="ms"),
)


def run_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The figures an evaluation run stores, flattened from :func:`answers.evaluation.compute_report`.

    ROUGE-L against the reference answers is kept only for model modes: in kb
    mode the references are the engine's own answers, so it would always be 1.
    """
    metrics: dict[str, float] = {
        "latency_p50_ms": float(report["latency_ms"]["p50"]),
        "latency_p95_ms": float(report["latency_ms"]["p95"]),
    }
    for key in ("intent_accuracy", "intent_macro_f1", "action_accuracy"):
        if key in report:
            metrics[key] = float(report[key])
    if "out_of_scope" in report:
        metrics["oos_f1"] = float(report["out_of_scope"]["f1"])
    if "rouge_l" in report and report.get("mode", "kb") != "kb":
        metrics["rouge_l"] = float(report["rouge_l"])
    return metrics


@dataclass(frozen=True, slots=True)
class MetricLine:
    """One figure of tonight's run, with its change since the previous run."""

    spec: MetricSpec
    value: float
    previous: float | None

    @property
    def delta(self) -> float | None:
        return None if self.previous is None else self.value - self.previous

    @property
    def dropped(self) -> bool:
        return self.previous is not None and self.spec.dropped(self.previous, self.value)

    @property
    def change(self) -> str:
        """``▲ +0.012``, ``▼ −0.031``, ``= 0.000`` or ``first run``."""
        return "first run" if self.delta is None else self.spec.format_delta(self.delta)

    @property
    def warning(self) -> str | None:
        if not self.dropped:
            return None
        assert self.previous is not None
        verb = "fell" if self.spec.higher_is_better else "rose"
        return (f"{self.spec.label} {verb} from {self.spec.format(self.previous)} to {self.spec.format(self.value)} "
                "since the previous run")


def compare(current: dict[str, float], previous: dict[str, float] | None,
            specs: tuple[MetricSpec, ...] = METRICS) -> list[MetricLine]:
    """A line per tracked figure present tonight, in the order of ``specs``."""
    previous = previous or {}
    return [MetricLine(spec, float(current[spec.key]),
                       float(previous[spec.key]) if spec.key in previous else None)
            for spec in specs if spec.key in current]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What was evaluated."""

    mode: str
    model: str
    adapter: str | None
    n: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one digest shows."""

    day: date
    ops: OperationsStats
    run: RunInfo | None = None
    lines: list[MetricLine] = field(default_factory=list)
    error: str | None = None

    @property
    def warnings(self) -> list[str]:
        return [line.warning for line in self.lines if line.warning]


def build_digest(*, day: date, ops: OperationsStats, run: RunInfo | None = None,
                 metrics: dict[str, float] | None = None, previous: dict[str, float] | None = None,
                 error: str | None = None) -> Digest:
    """Assemble a digest; with ``error`` (the evaluation failed) it carries the operations figures only.

    Args:
        day: The local date the digest is for.
        ops: The last 24 hours of operations.
        run: What tonight's evaluation measured (absent when it failed).
        metrics: Tonight's figures (see :func:`run_metrics`).
        previous: The previous run's figures, for the changes and the warnings.
        error: A one-line description of why the evaluation failed.
    """
    if error is not None or metrics is None:
        return Digest(day=day, ops=ops, error=error or "the evaluation produced no figures")
    return Digest(day=day, ops=ops, run=run, lines=compare(metrics, previous))


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3.5 h`` or ``n/a``."""
    if seconds is None:
        return "n/a"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

