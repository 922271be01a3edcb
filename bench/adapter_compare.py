"""Base model vs LoRA adapter, side by side, on the same held-out questions.

Usage::

    .venv/bin/python bench/adapter_compare.py                          # embedded SmolLM2, the shipped adapter
    .venv/bin/python bench/adapter_compare.py --adapter runs/smollm2-135m-lora/adapter --limit 60
    .venv/bin/python bench/adapter_compare.py --model mistralai/Mistral-7B-Instruct-v0.2 \\
        --quantization 4bit --adapter runs/mistral/adapter --limit 0   # on a GPU, every question

The engine answers ``--limit`` evenly spread held-out questions whose reference action is ``answer`` (the SFT test
split: questions no training example saw, with the condensed reference replies of ``training/sft_data.py``) in
``llm`` mode, once with the base model and once with base + adapter: the same questions, retrieval, prompts and greedy
decoding; only the adapter differs. The grounding guard only reports here, so every figure is about what the model
wrote, not the curated steps the bot would show instead. For each model:

* guard pass rate: the share of the model's answers whose every checkable detail (URL, address, phone number,
  product, menu path, command) is in the prompt's article or the question, i.e. that the bot would show;
* ROUGE-L F1 against the reference reply;
* steps covered: the share of the reference's steps whose words (at least 60% of those of four letters or more)
  the answer contains;
* latency per answer (p50, p95) and decoding speed.

The same figures for ``--unseen`` questions about five organisations' own articles (the KBs of
``bench/public_bench.py``, which no training example contains), answered from the built-in KB plus those articles:
whether the adapter learnt to condense any article it is given, or only the 72 it was trained on.

Targets of the LLM issue: the adapter passes the guard on at least 90% of its answers, and its ROUGE-L is at least
0.15 above the base model's. Results go to ``bench/results/adapter_compare.json`` with the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_STEP = re.compile(r"^\s*\d+[.)]\s+(.+)$", re.M)
_CONTENT = re.compile(r"[a-z0-9][a-z0-9'-]{3,}")
GUARD_TARGET = 0.90
ROUGE_GAIN_TARGET = 0.15


def steps_covered(answer: str, reference: str) -> float:
    """The share of the reference's numbered steps whose content words mostly appear in ``answer``."""
    words = set(_CONTENT.findall(answer.lower()))
    steps = [set(_CONTENT.findall(step.lower())) for step in _STEP.findall(reference)]
    steps = [step for step in steps if step]
    if not steps:
        return 0.0
    return sum(len(step & words) >= 0.6 * len(step) for step in steps) / len(steps)


def evaluate(engine, generator, rows: list[dict]) -> dict:
    from answers.evaluation import percentile, rouge_l

    written, passed, rouge, covered, latency, speed, same_article = 0, 0, [], [], [], [], 0
    samples = []
    started = time.perf_counter()
    for number, row in enumerate(rows, start=1):
        answer = engine.answer(row["text"], mode="llm")
        latency.append(answer.latency_ms)
        same_article += answer.article in row["sources"]
        if answer.generated_by != "kb":
            written += 1
            passed += not answer.ungrounded
            stats = generator.last_stats
            if stats is not None and stats.decode_tokens_per_s:
                speed.append(stats.decode_tokens_per_s)
        rouge.append(rouge_l(answer.answer, row["reference"]))
        covered.append(steps_covered(answer.answer, row["reference"]))
        if number <= 3:
            samples.append({"question": row["text"], "answer": answer.answer, "ungrounded": list(answer.ungrounded)})
        print(f"\r  {number}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {
        "questions": len(rows), "model_wrote": written, "guard_passed": passed,
        "guard_pass_rate": round(passed / written, 4) if written else None,
        "rouge_l": round(statistics.fmean(rouge), 4), "steps_covered": round(statistics.fmean(covered), 4),
        "answered_from_the_reference_article": round(same_article / len(rows), 4),
        "latency_ms": {"p50": round(percentile(latency, 50)), "p95": round(percentile(latency, 95))},
        "decode_tokens_per_s": round(statistics.median(speed), 1) if speed else None,
        "wall_s": round(time.perf_counter() - started, 1), "samples": samples,
    }


def unseen_articles_rows(limit: int) -> tuple[Path, list[dict]]:
    """A KB with five organisations' own articles (``bench/public_bench.ORG_SETS``: 58 articles, never in any training
    example) and questions about them, evenly spread over the five, each with the condensed reply of the article it is
    about as the reference."""
    import shutil
    import tempfile

    from answers.kb import load_kb
    from answers.org import OrgProfile
    from bench.public_bench import ORG_SETS
    from data.utterances import read_jsonl
    from training.sft_data import condensed_reply

    folder = Path(tempfile.mkdtemp(prefix="itbot-unseen-kb-"))
    shutil.copytree(REPO / "data" / "kb", folder / "builtin")
    every = []
    for name, (articles, questions, _uncovered) in ORG_SETS.items():
        shutil.copytree(articles, folder / name)
        every += read_jsonl(questions)
    kb = load_kb(folder)
    limit = limit if 0 < limit < len(every) else len(every)
    rows = [every[i * len(every) // limit] for i in range(limit)]
    return folder, [{"text": row["text"], "sources": [row["article"]],
                     "reference": condensed_reply(kb.get(row["article"]), OrgProfile())} for row in rows]


def main(argv: list[str] | None = None) -> int:
    from llm.model_files import EMBEDDED_ADAPTER, EMBEDDED_MODEL
    from llm.onnx_export import PRECISIONS, RUNTIMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default=str(EMBEDDED_ADAPTER), help="LoRA adapter folder (default: the shipped one)")
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="base model: hub id or folder (default: embedded SmolLM2)")
    parser.add_argument("--quantization", default="none", choices=["none", "4bit", "8bit"])
    parser.add_argument("--dtype", default=None, help="weights dtype (default: the service's)")
    parser.add_argument("--limit", type=int, default=40, help="evenly spread questions (0: every answer question)")
    parser.add_argument("--unseen", type=int, default=20,
                        help="questions about five organisations' own articles, which no training example saw (0: none)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--runtime", default=None, choices=RUNTIMES,
                        help="decoding runtime (default: the service's, ITBOT_LLM_RUNTIME)")
    parser.add_argument("--onnx-precision", default=None, choices=PRECISIONS,
                        help="ONNX weights (default: the service's, ITBOT_ONNX_PRECISION)")
    parser.add_argument("--adapter-only", action="store_true",
                        help="skip the base model (a runtime or precision compared on the adapter alone; no targets)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "adapter_compare.json")
    args = parser.parse_args(argv)
    if not (Path(args.adapter) / "adapter_config.json").is_file():
        parser.error(f"no LoRA adapter at {args.adapter} (expected adapter_config.json); train one with itbot train")

    from bot.settings import Settings
    from answers.engine import build_engine
    from data import SFT_DIR
    from data.utterances import read_jsonl
    from llm.model_files import resolve_model
    from llm.onnx_export import pick_runtime
    from llm.service import load_generator

    settings = Settings(_env_file=None)
    runtime = args.runtime or settings.llm_runtime
    precision = args.onnx_precision or settings.onnx_precision
    resolved = pick_runtime(runtime, quantization=args.quantization)
    every = [row for row in read_jsonl(SFT_DIR / "test.jsonl.gz") if row["action"] == "answer"]
    limit = args.limit if 0 < args.limit < len(every) else len(every)
    rows = [every[i * len(every) // limit] for i in range(limit)]  # evenly spread: the split is grouped by intent
    model = resolve_model(args.model, cache_dir=settings.cache_dir)
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "python": platform.python_version(), "processor": platform.processor()},
                     "model": args.model, "adapter": os.path.relpath(args.adapter, REPO), "mode": "llm",
                     "quantization": args.quantization, "runtime": resolved,
                     "onnx_precision": precision if resolved == "onnx" else None, "max_new_tokens": args.max_new_tokens,
                     "questions": len(rows), "runs": {}}
    unseen_kb, unseen = unseen_articles_rows(args.unseen) if args.unseen else (None, [])
    results["unseen_questions"] = len(unseen)
    models = (("adapter", args.adapter),) if args.adapter_only else (("base", None), ("adapter", args.adapter))
    for name, adapter in models:
        print(f"{name}: {args.model}" + (f" + {adapter}" if adapter else ""), file=sys.stderr)
        generator = load_generator(model, adapter=adapter, quantization=args.quantization, cache_dir=settings.cache_dir,
                                   dtype=args.dtype, max_new_tokens=args.max_new_tokens, timeout_s=300.0,
                                   merge_adapter=True, runtime=runtime, onnx_precision=precision)
        try:
            config = dataclasses.replace(settings.engine_config(), answer_mode="llm")
            engine = build_engine(config, generator=generator, withhold_ungrounded=False)
            results["runs"][name] = evaluate(engine, generator, rows)
            if unseen:
                engine = build_engine(dataclasses.replace(config, kb_dir=unseen_kb), generator=generator,
                                      withhold_ungrounded=False)
                results["runs"][name + " (unseen articles)"] = evaluate(engine, generator, unseen)
        finally:
            generator.close()

    tuned = results["runs"]["adapter"]
    if not args.adapter_only:
        base = results["runs"]["base"]
        results["targets"] = {
            "adapter_guard_pass_rate_at_least_0.90": (tuned["guard_pass_rate"] or 0) >= GUARD_TARGET,
            "rouge_l_gain": round(tuned["rouge_l"] - base["rouge_l"], 4),
            "rouge_l_gain_at_least_0.15": tuned["rouge_l"] - base["rouge_l"] >= ROUGE_GAIN_TARGET,
        }
    print(f"\n{'':<27}{'guard':>7}{'ROUGE-L':>9}{'steps':>7}{'wrote':>9}{'p50 ms':>9}{'p95 ms':>9}{'tok/s':>7}")
    for name, r in results["runs"].items():
        guard = f"{r['guard_pass_rate']:.0%}" if r["guard_pass_rate"] is not None else "-"
        speed = f"{r['decode_tokens_per_s']:.0f}" if r["decode_tokens_per_s"] else "-"
        print(f"{name:<27}{guard:>7}{r['rouge_l']:>9.3f}{r['steps_covered']:>7.0%}{r['model_wrote']:>5}/{r['questions']:<3}"
              f"{r['latency_ms']['p50']:>9}{r['latency_ms']['p95']:>9}{speed:>7}")
    if "targets" in results:
        print(f"targets: {json.dumps(results['targets'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
