"""Where a cold prompt's time goes on the ONNX runtime, and whether feeding it in chunks helps.

The first token of a 600-token prompt with nothing cached is about 10% over the 0.3 s target (docs/llm-runtime.md).
This script measures the two things that decide it, on the bot's own export (the embedded SmolLM2 with the shipped
adapter merged, ``ITBOT_ONNX_PRECISION``'s default int8)::

    .venv/bin/python bench/prefill_profile.py --output bench/results/prefill_profile.json

* ``ops``: ONNX Runtime's profiler on one cold prompt pass (plain onnxruntime, the export's own graph): time per
  operator type, with 1 thread and with all of them. Attention's share grows with the square of the prompt; the
  quantized matrix products' with its length.
* ``chunks``: the first token through ONNX Runtime GenAI, as the bot decodes, with the prompt appended in 1, 2, 3
  or 4 pieces (each piece attends to the ones before through the KV cache, so the masked half of the attention
  square is partly skipped): best and median of ``--repeats`` fresh generators.

The prompt is ``--tokens`` random token ids: timing does not depend on which. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def export_folder(cache_dir: Path, precision: str) -> Path:
    """The bot's ONNX export of the embedded model with the shipped adapter (built once, as the bot builds it)."""
    from llm.model_files import EMBEDDED_MODEL, embedded_model_dir, fetch_embedded_model, is_checkpoint, \
        resolve_adapter
    from llm.onnx_export import export_onnx

    model = embedded_model_dir(cache_dir)
    if not is_checkpoint(model):
        fetch_embedded_model(cache_dir)
    return export_onnx(model, cache_dir=cache_dir, adapter=resolve_adapter(None, model=EMBEDDED_MODEL),
                       precision=precision)


def op_profile(folder: Path, tokens: int, threads: int, repeats: int = 3) -> dict:
    """Milliseconds per operator type for one cold pass of ``tokens`` tokens (mean of ``repeats`` after a warm-up)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="itbot-prefill-")) / "profile")
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(100, 40000, (1, tokens)).astype(np.int64)
    decoder = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))["model"]["decoder"]
    feeds = {}
    for item in session.get_inputs():
        if item.name == "input_ids":
            feeds[item.name] = ids
        elif item.name == "attention_mask":
            feeds[item.name] = np.ones((1, tokens), np.int64)
        else:  # past keys and values: empty (batch, kv heads, 0, head size)
            feeds[item.name] = np.zeros((1, decoder["num_key_value_heads"], 0, decoder["head_size"]), np.float32)
    session.run(None, feeds)
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feeds)
        walls.append(time.perf_counter() - started)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    per_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    runs = repeats + 1  # the warm-up pass is profiled too
    total = sum(per_op.values())
    return {"threads": threads, "wall_s_median": round(statistics.median(walls), 4),
            "ops_ms": {op: round(us / runs / 1000, 1) for op, us in per_op.most_common()},
            "ops_share": {op: round(us / total, 3) for op, us in per_op.most_common(6)}}


def chunked_first_token(folder: Path, tokens: int, pieces: int, repeats: int, threads: int) -> dict:
    """First-token time through ONNX Runtime GenAI with the prompt appended in ``pieces`` parts."""
    from llm.onnx_runtime import load_onnx_model

    model = load_onnx_model(folder, prefix_cache=0, threads=threads)
    og = model._og  # noqa: SLF001 - the bench drives the runtime directly, as OnnxModel does
    rng = random.Random(0)
    ids = [rng.randrange(100, 40000) for _ in range(tokens)]
    bounds = [round(i * tokens / pieces) for i in range(pieces + 1)]
    times = []
    for _ in range(repeats + 1):
        params = og.GeneratorParams(model._model)  # noqa: SLF001
        params.set_search_options(do_sample=False, max_length=tokens + 384)
        generator = og.Generator(model._model, params)  # noqa: SLF001
        started = time.perf_counter()
        for start, end in zip(bounds, bounds[1:]):
            generator.append_tokens(ids[start:end])
        generator.generate_next_token()
        times.append(time.perf_counter() - started)
    times = times[1:]  # the first builds the session's buffers
    return {"pieces": pieces, "best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("ITBOT_CACHE_DIR", "~/.cache/itbot")))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    from bench.engine_bench import machine

    threads = os.cpu_count() or 1
    folder = export_folder(args.cache_dir.expanduser(), args.precision)
    result = {"machine": machine(), "load_before": list(os.getloadavg()), "tokens": args.tokens,
              "export": folder.name, "ops": [], "chunks": []}
    for count in sorted({1, threads}):
        result["ops"].append(profile := op_profile(folder, args.tokens, count))
        print(f"{count} thread(s): pass {profile['wall_s_median']:.3f} s; shares {profile['ops_share']}")
    for pieces in (1, 2, 3, 4):
        result["chunks"].append(row := chunked_first_token(folder, args.tokens, pieces, args.repeats, threads))
        print(f"prompt in {pieces} piece(s): first token best {row['best_s']:.3f} s, median {row['median_s']:.3f} s")
    result["load_after"] = list(os.getloadavg())
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
