"""How fast can this CPU compute a prompt at all? The arithmetic floor under the first-token time.

A prompt's pass through SmolLM2-135M is compute-bound: about 212 MFLOP of matrix products per prompt token
(30 layers of q/k/v/o and the MLP; the LM head runs on the last token only) plus causal attention. This script
times the layers' own matrix products at a 600-token prompt, in bfloat16 through torch (oneDNN) and in int8
through ONNX Runtime (the int4 export's MatMulNBits at accuracy level 4, and MLAS's u8s8 GEMM via
DynamicQuantizeMatMul), and reports the prompt time each would give if nothing else cost anything::

    .venv/bin/python bench/prefill_bound.py --output bench/results/prefill_bound.json

The layer shapes are read from the embedded model's config. Run it on a quiet machine: it measures the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def shapes(hidden: int = 576, intermediate: int = 1536, heads: int = 9, kv_heads: int = 3) -> list[tuple[int, int]]:
    """(in, out) of each matrix product of one decoder layer."""
    head = hidden // heads
    return [(hidden, hidden), (hidden, kv_heads * head), (hidden, kv_heads * head), (hidden, hidden),
            (hidden, intermediate), (hidden, intermediate), (intermediate, hidden)]


def _best(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def torch_layer_s(tokens: int, layer: list[tuple[int, int]], threads: int, repeats: int) -> float:
    import torch

    torch.set_num_threads(threads)
    x = {k: torch.randn(tokens, k, dtype=torch.bfloat16) for k, _ in layer}
    w = [torch.randn(k, n, dtype=torch.bfloat16) for k, n in layer]

    def run() -> None:
        with torch.inference_mode():
            for (k, _), weight in zip(layer, w):
                torch.matmul(x[k], weight)
    return _best(run, repeats)


def _ort_layer_session(layer: list[tuple[int, int]], op: str, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    nodes, inits, inputs, outputs = [], [], [], []
    for i, (k, n) in enumerate(layer):
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, ["m", k]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["m", n]))
        rng = np.random.default_rng(i)
        if op == "nbits":
            block = 32
            blocks = k // block
            packed = rng.integers(0, 255, size=(n, blocks, block // 2), dtype=np.uint8)
            scales = rng.random(n * blocks, dtype=np.float32) * 0.01
            inits += [helper.make_tensor(f"w{i}", TensorProto.UINT8, packed.shape, packed.tobytes(), raw=True),
                      helper.make_tensor(f"s{i}", TensorProto.FLOAT, scales.shape, scales.tobytes(), raw=True)]
            nodes.append(helper.make_node("MatMulNBits", [f"x{i}", f"w{i}", f"s{i}"], [f"y{i}"], domain="com.microsoft",
                                          K=k, N=n, bits=4, block_size=block, accuracy_level=4))
        else:
            weight = rng.integers(-127, 127, size=(k, n), dtype=np.int8)
            inits += [helper.make_tensor(f"w{i}", TensorProto.INT8, weight.shape, weight.tobytes(), raw=True),
                      helper.make_tensor(f"s{i}", TensorProto.FLOAT, [], [0.01]),
                      helper.make_tensor(f"z{i}", TensorProto.INT8, [], [0])]
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [f"x{i}", f"w{i}", f"s{i}", f"z{i}"], [f"y{i}"],
                                          domain="com.microsoft"))
    graph = helper.make_graph(nodes, "layer", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_layer_s(tokens: int, layer: list[tuple[int, int]], op: str, threads: int, repeats: int) -> float:
    session = _ort_layer_session(layer, op, threads)
    feed = {f"x{i}": np.random.default_rng(i).standard_normal((tokens, k), dtype=np.float32)
            for i, (k, _) in enumerate(layer)}
    return _best(lambda: session.run(None, feed), repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    layer = shapes()
    flops = 2 * args.tokens * sum(k * n for k, n in layer) * args.layers
    results = {"machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg())}, "tokens": args.tokens,
               "layers": args.layers, "gflop_matrix_products": round(flops / 1e9, 1), "kernels": {}}
    kernels = (("torch bfloat16 (oneDNN)", lambda: torch_layer_s(args.tokens, layer, args.threads, args.repeats)),
               ("ONNX Runtime MatMulNBits int4, int8 compute (the int4 export)",
                lambda: ort_layer_s(args.tokens, layer, "nbits", args.threads, args.repeats)),
               ("ONNX Runtime u8s8 GEMM, DynamicQuantizeMatMul (the int8 export)",
                lambda: ort_layer_s(args.tokens, layer, "dynamic", args.threads, args.repeats)))
    for name, timed in kernels:
        seconds = timed() * args.layers
        results["kernels"][name] = {"prompt_matrix_products_s": round(seconds, 3),
                                    "gflop_per_s": round(flops / seconds / 1e9, 1)}
        print(f"{name}: {seconds:.3f} s for the prompt's matrix products ({flops / seconds / 1e9:.0f} GFLOP/s)")
    results["machine"]["load_average_after"] = list(os.getloadavg())
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
