"""Could torch compute a cold prompt's pass faster than ONNX Runtime, for a torch prefill and an ONNX decode?

The first token of a 600-token prompt with nothing cached takes about 0.33 s on the int8 ONNX export
(docs/llm-runtime.md), 41-45% of it in attention, whose CPU kernel computes the masked half of the square too.
Torch's scaled-dot-product attention skips it when told the mask is causal, so a torch pass that hands its KV cache
to the ONNX decoder could be quicker. This script times the prompt's pass in torch alone (the embedded SmolLM2's
base weights: timing does not depend on their values; ``attn_implementation="sdpa"``, KV cache returned, logits of
the last token only) in float32, bfloat16 and with int8 dynamically quantized linear layers::

    .venv/bin/python bench/prefill_torch.py --output bench/results/prefill_torch.json

The ONNX export's own first token (the bot's int8 export, nothing cached) is timed in the same run as the baseline.
If no torch pass is under it, the hybrid cannot reach the target. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _time(model, ids, repeats: int) -> dict:
    import torch

    times = []
    with torch.inference_mode():
        model(input_ids=ids, use_cache=True, logits_to_keep=1)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            model(input_ids=ids, use_cache=True, logits_to_keep=1)
            times.append(time.perf_counter() - started)
    return {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=579, help="prompt length (the engine's prompt: 579)")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    try:
        import torch
        from transformers import AutoModelForCausalLM

        from bot.settings import Settings
        from llm.model_files import embedded_model_dir, is_checkpoint
    except ImportError as error:
        print(f"error: {error.name} is not installed: run make setup", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = embedded_model_dir(Settings(_env_file=None).cache_dir)
    if not is_checkpoint(path):
        print(f"error: no embedded model in {path}: run itbot model fetch", file=sys.stderr)
        return 2
    ids = torch.randint(100, 40000, (1, args.tokens))
    results = {}
    # the baseline, in the same run: the bot's int8 ONNX export, first token of the same length with nothing cached
    from bench.prefill_profile import chunked_first_token, export_folder

    cache_dir = Settings(_env_file=None).cache_dir
    onnx = chunked_first_token(export_folder(cache_dir, "int8"), args.tokens, 1, args.repeats, args.threads)
    results["onnx_int8_first_token"] = {"best_s": onnx["best_s"], "median_s": onnx["median_s"]}
    print(f"onnx int8 first token: best {onnx['best_s']:.3f} s, median {onnx['median_s']:.3f} s", flush=True)
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16), ("int8_dynamic", torch.float32)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").eval()
        if name == "int8_dynamic":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        results[name] = _time(model, ids, args.repeats)
        print(f"{name}: best {results[name]['best_s']:.3f} s, median {results[name]['median_s']:.3f} s", flush=True)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
                         f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.1f}",
              "tokens": args.tokens, "repeats": args.repeats, "prompt_pass": results}
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
