"""Base model vs LoRA adapter, side by side, on the same held-out questions.

Usage::

    .venv/bin/python bench/adapter_compare.py --adapter runs/smollm2/adapter             # embedded SmolLM2
    .venv/bin/python bench/adapter_compare.py --model mistralai/Mistral-7B-Instruct-v0.2 \\
        --quantization 4bit --adapter runs/mistral/adapter --limit 0                     # on a GPU, every question

For each of the base model and base + adapter, and for each mode (``llm``: the
model writes every answer; ``hybrid``: only where retrieval is weak), the
engine answers ``--limit`` evenly spread questions of the SFT test split (the
held-out questions with reference answers) and the script reports ROUGE-L
against the references, intent and action accuracy, how many answers the model
wrote (the rest fell back to the curated steps), the grounding guard's pass rate
(the share of those answers whose every checkable detail is in the articles or
the question; the guard only reports here, so ROUGE-L measures what the model
wrote, not the curated steps shown in its place), and latency, as a table and
as JSON (``--output``). The questions, prompts and decoding are identical for
both; only the adapter differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def evaluate(engine, rows: list[dict], mode: str) -> dict:
    from answers.evaluation import compute_report

    results, written, grounded = [], 0, 0
    started = time.perf_counter()
    for number, row in enumerate(rows, start=1):
        answer = engine.answer(row["text"], mode=mode)
        written += answer.generated_by != "kb"
        grounded += answer.generated_by != "kb" and not answer.ungrounded  # the bot would show it
        results.append(answer.public())
        print(f"\r  {mode}: {number}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    report = compute_report(rows, results)
    return {"questions": len(rows), "model_wrote": written, "guard_passed": grounded,
            "guard_pass_rate": round(grounded / written, 4) if written else None,
            "rouge_l": report.get("rouge_l"),
            "intent_accuracy": report["intent_accuracy"], "action_accuracy": report["action_accuracy"],
            "latency_ms": report["latency_ms"], "wall_s": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    from llm.model_files import EMBEDDED_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="LoRA adapter folder (from itbot train)")
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="base model: hub id or folder (default: embedded SmolLM2)")
    parser.add_argument("--quantization", default="none", choices=["none", "4bit", "8bit"])
    parser.add_argument("--limit", type=int, default=30, help="evenly spread questions (0: all of the test split)")
    parser.add_argument("--modes", default="llm,hybrid", help="comma-separated answer modes")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "adapter_compare.json")
    args = parser.parse_args(argv)
    if not (Path(args.adapter) / "adapter_config.json").is_file():
        parser.error(f"no LoRA adapter at {args.adapter} (expected adapter_config.json); train one with itbot train")

    from bot.nightly import held_out_questions
    from bot.settings import Settings
    from answers.engine import build_engine
    from llm.model_files import resolve_model
    from llm.service import load_generator

    settings = Settings(_env_file=None)
    rows = held_out_questions("llm", limit=args.limit)
    model = resolve_model(args.model, cache_dir=settings.cache_dir)
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "python": platform.python_version()},
                     "model": args.model, "adapter": str(args.adapter), "quantization": args.quantization,
                     "max_new_tokens": args.max_new_tokens, "questions": len(rows), "runs": {}}
    for name, adapter in (("base", None), ("adapter", args.adapter)):
        print(f"{name}: {args.model}" + (f" + {adapter}" if adapter else ""), file=sys.stderr)
        generator = load_generator(model, adapter=adapter, quantization=args.quantization, cache_dir=settings.cache_dir,
                                   max_new_tokens=args.max_new_tokens, timeout_s=120.0)
        try:
            engine = build_engine(dataclasses.replace(settings.engine_config(), answer_mode="llm"), generator=generator,
                                  withhold_ungrounded=False)
            results["runs"][name] = {mode: evaluate(engine, rows, mode) for mode in args.modes.split(",")}
        finally:
            generator.close()

    print(f"\n{'':<10}{'mode':<8}{'ROUGE-L':>9}{'intent':>8}{'action':>8}{'model wrote':>13}{'guard':>8}{'p50 ms':>9}")
    for name, runs in results["runs"].items():
        for mode, r in runs.items():
            rouge = f"{r['rouge_l']:.3f}" if r["rouge_l"] is not None else "-"
            guard = f"{r['guard_pass_rate']:.0%}" if r["guard_pass_rate"] is not None else "-"
            print(f"{name:<10}{mode:<8}{rouge:>9}{r['intent_accuracy']:>8.3f}{r['action_accuracy']:>8.3f}"
                  f"{r['model_wrote']:>8}/{r['questions']:<4}{guard:>8}{r['latency_ms']['p50']:>9.0f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
