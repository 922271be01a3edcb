"""Router benchmark: train on the train split only, measure on the validation split.

Usage::

    .venv/bin/python bench/router_bench.py              # summary -> bench/results/router.json
    .venv/bin/python bench/router_bench.py --errors     # and every validation question the engine gets wrong

The shipped engine trains on train + validation and is measured on the test
split (``bench/engine_bench.py``). This script holds the validation split out
instead, so data and model changes can be judged without ever looking at test:
accuracy of each router stage (fast TF-IDF, full with MiniLM, the cascade),
calibration (expected calibration error of the cascade's confidence), share of
questions that need the full stage, and the whole engine's intent/action/
out-of-scope figures with its errors listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def calibration_error(confidences: list[float], correct: list[bool], bins: int = 10) -> float:
    """Expected calibration error: mean |accuracy - confidence| over equal-width confidence bins, weighted."""
    total = len(confidences)
    error = 0.0
    for b in range(bins):
        members = [i for i, c in enumerate(confidences) if b / bins < c <= (b + 1) / bins or (b == 0 and c == 0)]
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            confidence = sum(confidences[i] for i in members) / len(members)
            error += len(members) / total * abs(accuracy - confidence)
    return error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list the validation questions the engine gets wrong")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "router.json")
    args = parser.parse_args(argv)

    from bot.settings import Settings
    from data import SPLITS_DIR
    from data.utterances import read_jsonl
    from answers.engine import build_engine
    from answers.evaluation import evaluate_engine

    cache = Path(tempfile.gettempdir()) / "itbot-router-bench"
    config = dataclasses.replace(Settings(_env_file=None, cache_dir=cache).engine_config(),
                                 train_files=(SPLITS_DIR / "train.jsonl",))
    engine = build_engine(config)
    rows = read_jsonl(SPLITS_DIR / "validation.jsonl")
    texts = [row["text"] for row in rows]
    gold = [row["intent"] for row in rows]

    stages = {}
    for stage in ("fast", "full", "auto"):
        routes = engine.router.route_many(texts, stage=stage)
        correct = [r.intent == g for r, g in zip(routes, gold)]
        stages[stage] = {"intent_accuracy": round(sum(correct) / len(rows), 4),
                         "calibration_error": round(calibration_error([r.confidence for r in routes], correct), 4)}
        if stage == "auto":
            stages[stage]["full_stage_share"] = round(sum(r.stage == "full" for r in routes) / len(rows), 4)

    report, results = evaluate_engine(engine, rows)
    summary = {"trained_on": "train", "measured_on": "validation", "n": len(rows), "router": stages,
               "engine": {key: report[key] for key in ("intent_accuracy", "intent_macro_f1", "action_accuracy",
                                                        "out_of_scope", "latency_ms")}}
    for stage, figures in stages.items():
        print(f"router {stage:>4}: intent {figures['intent_accuracy']:.3f}  ECE {figures['calibration_error']:.3f}"
              + (f"  full stage on {figures['full_stage_share']:.0%}" if "full_stage_share" in figures else ""))
    print(f"engine: intent {report['intent_accuracy']:.3f}  action {report['action_accuracy']:.3f}  "
          f"out-of-scope F1 {report['out_of_scope']['f1']:.3f}  p95 {report['latency_ms']['p95']:.1f} ms")
    if args.errors:
        for row, result in zip(rows, results):
            if result["intent"] != row["intent"] or result["action"] != row["action"]:
                print(f"  {row['intent']}/{row['action']} -> {result['intent']}/{result['action']} "
                      f"({result['confidence']:.2f}): {row['text']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
