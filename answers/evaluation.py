"""Measure the answer engine on labelled questions.

Rows need ``text`` and may carry ``intent`` (the topic), ``action``, ``article``
(the id of the article that should answer, or null for "none should") and
``reference`` (a reference answer for ROUGE-L). Metrics: intent accuracy and
macro-F1, per-intent precision/recall/F1, a confusion matrix, out-of-scope
precision/recall/F1 (rejection is the positive class), the share of IT
questions rejected and of non-IT questions answered, action accuracy, article
accuracy, latency percentiles, and ROUGE-L when references are given.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from typing import Iterable

from answers.engine import AnswerEngine
from answers.taxonomy import INTENTS, OTHER_INTENTS

__all__ = ["evaluate_engine", "compute_report", "rouge_l", "percentile", "render_report"]

_WORD = re.compile(r"\w+")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased word tokens."""
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": tp + fn}


def compute_report(rows: list[dict], results: list[dict]) -> dict:
    """Metrics from gold ``rows`` and engine ``results`` (same order)."""
    latencies = [r["latency_ms"] for r in results]
    report: dict = {
        "n": len(rows),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 95, 99)},
    }
    labelled = [(row, res) for row, res in zip(rows, results) if row.get("intent")]
    if labelled:
        gold = [row["intent"] for row, _ in labelled]
        predicted = [res["intent"] for _, res in labelled]
        labels = [label for label in INTENTS if label in set(gold) | set(predicted)]
        labels += sorted((set(gold) | set(predicted)) - set(labels))  # an organisation's own topics
        per_intent = {}
        for label in labels:
            tp = sum(g == p == label for g, p in zip(gold, predicted))
            fp = sum(p == label and g != label for g, p in zip(gold, predicted))
            fn = sum(g == label and p != label for g, p in zip(gold, predicted))
            per_intent[label] = _prf(tp, fp, fn)
        supported = [m["f1"] for label, m in per_intent.items() if m["support"]]
        confusion: dict[str, dict[str, int]] = defaultdict(dict)
        for (g, p), count in Counter(zip(gold, predicted)).items():
            confusion[g][p] = count
        report.update(
            intent_accuracy=round(sum(g == p for g, p in zip(gold, predicted)) / len(gold), 4),
            intent_macro_f1=round(statistics.fmean(supported), 4) if supported else 0.0,
            per_intent=per_intent,
            confusion={g: dict(sorted(row.items())) for g, row in sorted(confusion.items())},
        )
        is_oos = [g == "out_of_scope" for g in gold]
        rejected = [res["action"] == "reject" for _, res in labelled]
        tp = sum(a and b for a, b in zip(is_oos, rejected))
        fp = sum(b and not a for a, b in zip(is_oos, rejected))
        fn = sum(a and not b for a, b in zip(is_oos, rejected))
        report["out_of_scope"] = _prf(tp, fp, fn)
        it = [res for row, res in labelled if row["intent"] not in OTHER_INTENTS]
        not_it = [res for row, res in labelled if row["intent"] == "out_of_scope"]
        if it:
            report["it_rejected_share"] = round(sum(res["action"] == "reject" for res in it) / len(it), 4)
        if not_it:
            report["not_it_answered_share"] = round(sum(res["action"] == "answer" for res in not_it) / len(not_it), 4)
    with_action = [(row, res) for row, res in zip(rows, results) if row.get("action")]
    if with_action:
        report["action_accuracy"] = round(
            sum(row["action"] == res["action"] for row, res in with_action) / len(with_action), 4)
    with_article = [(row, res) for row, res in zip(rows, results) if "article" in row]
    if with_article:
        report["article_accuracy"] = round(
            sum(row["article"] == res.get("article") for row, res in with_article) / len(with_article), 4)
    with_reference = [(row, res) for row, res in zip(rows, results) if row.get("reference")]
    if with_reference:
        report["rouge_l"] = round(statistics.fmean(rouge_l(res["answer"], row["reference"])
                                                   for row, res in with_reference), 4)
    return report


def evaluate_engine(engine: AnswerEngine, rows: list[dict], *, mode: str | None = None,
                    progress: bool = False) -> tuple[dict, list[dict]]:
    """Answer every row (each as a fresh conversation) and compute the report.

    Returns:
        ``(report, results)`` where results hold the fields of ``itbot ask --json`` in input order.
    """
    iterator: Iterable[dict] = rows
    results: list[dict] = []
    if progress:
        from rich.progress import track

        iterator = track(rows, description="Evaluating", transient=True)
    for row in iterator:
        results.append(engine.answer(row["text"], mode=mode).public())
    report = compute_report(rows, results)
    report["mode"] = mode or engine.answer_mode
    return report, results


def render_report(report: dict) -> None:
    """Print the report as readable tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=f"Evaluation on {report['n']} questions ({report.get('mode', 'kb')} mode)")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key in ("intent_accuracy", "intent_macro_f1", "action_accuracy", "article_accuracy", "it_rejected_share",
                "not_it_answered_share", "rouge_l"):
        if key in report:
            summary.add_row(key.replace("_", " "), f"{report[key]:.3f}")
    if "out_of_scope" in report:
        oos = report["out_of_scope"]
        summary.add_row("out-of-scope P / R / F1", f"{oos['precision']:.3f} / {oos['recall']:.3f} / {oos['f1']:.3f}")
    lat = report["latency_ms"]
    summary.add_row("latency p50 / p95 / p99 (ms)", f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f}")
    console.print(summary)
    if "per_intent" in report:
        table = Table(title="Per intent")
        for column in ("intent", "precision", "recall", "F1", "n"):
            table.add_column(column, justify="left" if column == "intent" else "right")
        for intent, m in report["per_intent"].items():
            table.add_row(intent, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"]))
        console.print(table)
        confusions = [(g, p, c) for g, row in report["confusion"].items() for p, c in row.items() if g != p]
        if confusions:
            worst = Table(title="Most frequent confusions (gold -> predicted)")
            for column in ("gold", "predicted", "count"):
                worst.add_column(column)
            for g, p, c in sorted(confusions, key=lambda item: -item[2])[:10]:
                worst.add_row(g, p, str(c))
            console.print(worst)
