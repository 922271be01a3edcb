"""The ONNX Runtime GenAI export of a checkpoint (with its LoRA adapter folded in), built once and cached.

``ITBOT_LLM_RUNTIME=onnx`` (or ``auto`` with ``onnxruntime-genai`` installed) decodes with ONNX Runtime instead of
torch: one fused graph per token instead of hundreds of small torch ops, and quantized weights: int8 by default
(per channel, activations quantized on the fly: ONNX Runtime's u8s8 GEMM computes a prompt twice as fast as int4's
kernel), or int4 (``ITBOT_ONNX_PRECISION=int4``: the smallest file, the fastest decoding). The export is built from
the very weights the torch path uses: the base checkpoint with the adapter merged, then
``onnxruntime_genai.models.builder`` (and, for int8, ``onnxruntime.quantization.quantize_dynamic``). It lands in
``<cache_dir>/onnx/<model>-<precision>-<hash>/``, where the hash covers the base weights and config, the adapter
files, the precision and the builder version, so new weights or a retrained adapter give a new export and the old one
is removed. A build takes about 10 s for SmolLM2-135M.

onnxruntime-genai, torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from llm.errors import ModelError

__all__ = ["PRECISIONS", "RUNTIMES", "MISSING_RUNTIME", "onnx_available", "pick_runtime", "export_key", "export_dir",
           "export_onnx"]

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")
PRECISIONS = ("int4", "int8", "int8-head", "fp32")
MISSING_RUNTIME = ("ITBOT_LLM_RUNTIME=onnx needs ONNX Runtime GenAI: `pip install onnxruntime-genai onnx onnx-ir` "
                   "(or set ITBOT_LLM_RUNTIME=torch)")
_FORMAT = "2"  # bump when the builder options below change
_CHUNK = 1 << 23


def onnx_available() -> bool:
    """True when onnxruntime-genai and the export's own needs (onnx, onnx-ir) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime_genai", "onnx", "onnx_ir"))


def pick_runtime(runtime: str, *, quantization: str = "none") -> str:
    """``torch`` or ``onnx`` for ``ITBOT_LLM_RUNTIME``.

    ``auto`` is ONNX when it is installed, the weights are not bitsandbytes-quantized (the export quantizes on its own)
    and there is no GPU (the export is built for the CPU); torch otherwise.

    Raises:
        ModelError: An unknown runtime, or ``onnx`` without the package or with bitsandbytes quantization.
    """
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown LLM runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime == "auto":
        return "onnx" if quantization == "none" and onnx_available() and not _has_gpu() else "torch"
    if runtime == "onnx":
        if not onnx_available():
            raise ModelError(MISSING_RUNTIME)
        if quantization != "none":
            raise ModelError(f"ITBOT_LLM_RUNTIME=onnx quantizes the weights itself (ITBOT_ONNX_PRECISION): set "
                             f"ITBOT_QUANTIZATION=none instead of {quantization}, or ITBOT_LLM_RUNTIME=torch")
    return runtime


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _builder_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{version('onnxruntime-genai')}+{version('onnxruntime')}"
    except PackageNotFoundError:  # pragma: no cover - checked by onnx_available first
        return "unknown"


def _digest_files(digest: "hashlib._Hash", folder: Path, names: list[str]) -> None:
    for pattern in names:
        for file in sorted(folder.glob(pattern)):
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)


def export_key(model_path: str | Path, *, adapter: str | Path | None, precision: str) -> str:
    """A content hash of what the export is built from: base weights and config, adapter files, precision, builder."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_FORMAT}|{precision}|{_builder_version()}".encode())
    _digest_files(digest, Path(model_path), ["config.json", "*.safetensors", "pytorch_model*.bin"])
    if adapter:
        digest.update(b"|adapter|")
        _digest_files(digest, Path(adapter), ["adapter_config.json", "adapter_model.*"])
    return digest.hexdigest()


def export_dir(cache_dir: Path, model_path: str | Path, *, adapter: str | Path | None, precision: str) -> Path:
    """Where the export of these weights lives (it may not be built yet)."""
    stem = Path(model_path).name + (f"+{Path(adapter).name}" if adapter else "")
    key = export_key(model_path, adapter=adapter, precision=precision)
    return Path(cache_dir).expanduser() / "onnx" / f"{stem}-{precision}-{key}"


def export_onnx(model_path: str | Path, *, cache_dir: Path, adapter: str | Path | None = None,
                precision: str = "int8") -> Path:
    """Build the ONNX export of ``model_path`` (+ ``adapter``, merged) unless the cache already holds it.

    Args:
        model_path: A local Hugging Face checkpoint folder (Llama-family architectures).
        cache_dir: The bot's cache folder.
        adapter: A peft LoRA adapter folder, folded into the weights before export.
        precision: ``int8`` (default: int8 weights per channel, activations quantized on the fly: the fastest
            prompt pass), ``int4`` (block-wise k-quant weights, int8 compute: the smallest, fastest decoding) or
            ``fp32`` (the same tokens as torch).

    Returns:
        The folder with ``genai_config.json`` and ``model.onnx``.

    Raises:
        ModelError: The runtime is not installed, the folder is not a local checkpoint, or the build failed.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown ONNX precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if not onnx_available():
        raise ModelError(MISSING_RUNTIME)
    if not (Path(model_path) / "config.json").is_file():
        raise ModelError(f"the ONNX runtime needs a local model folder, not {model_path}: "
                         "download it and set ITBOT_MODEL to the folder, or set ITBOT_LLM_RUNTIME=torch")
    target = export_dir(cache_dir, model_path, adapter=adapter, precision=precision)
    if (target / "genai_config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the ONNX export of %s (%s) in %s, once", model_path, precision, target)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as scratch:
        source = Path(model_path)
        if adapter:
            source = Path(scratch) / "merged"
            _save_merged(model_path, adapter, source)
        staging = Path(scratch) / "onnx"
        _build(source, staging, precision=precision, scratch=Path(scratch))
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "genai_config.json").is_file():  # not a concurrent build that won the race
                raise ModelError(f"could not move the ONNX export into {target}: remove that folder and retry")
    _remove_stale(target)
    return target


def _save_merged(model_path: str | Path, adapter: str | Path, folder: Path) -> None:
    """The base weights with the adapter folded in, in float32: exactly what the torch path decodes with."""
    from llm.loading import load_model

    model, tokenizer = load_model(model_path, adapter=adapter, merge=True, dtype="float32")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _build(source: Path, staging: Path, *, precision: str, scratch: Path) -> None:
    if precision in ("int8", "int8-head"):  # the float32 export, its matrix products then quantized (_quantize_int8)
        float32 = scratch / "fp32"
        _run_builder(source, float32, precision="fp32", scratch=scratch)
        _quantize_int8(float32, staging, keep_head=precision == "int8-head")
        return
    _run_builder(source, staging, precision=precision, scratch=scratch)


def _run_builder(source: Path, staging: Path, *, precision: str, scratch: Path) -> None:
    # prune_lm_head: the prompt's pass computes the logits of its last token only (as torch's logits_to_keep=1).
    # int4: k-quant with the LM head and the most sensitive layers in 8 bits (llama.cpp's "mixed" recipe): on
    # 28 held-out answers the guard passed 28 (plain round-to-nearest int4: 25), decoding as fast.
    options = ["accuracy_level=4", "prune_lm_head=true"]
    options += ["algo_config=k_quant_mixed"] if precision == "int4" else []
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(staging),
               "-p", precision, "-e", "cpu", "-c", str(scratch / "hf-cache"), "--extra_options", *options]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ModelError(f"could not run the ONNX model builder ({error.__class__.__name__})") from None
    if done.returncode != 0 or not (staging / "genai_config.json").is_file():
        lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
        detail = lines[-1][:200] if lines else f"exit status {done.returncode}"
        log.debug("ONNX builder output:\n%s", (done.stderr or "")[-5000:])
        raise ModelError(f"the ONNX export of {source.name} failed ({detail}): set ITBOT_LLM_RUNTIME=torch")


def _quantize_int8(float32: Path, staging: Path, *, keep_head: bool = False) -> None:
    """int8 weights per output channel, activations quantized on the fly: ONNX Runtime's u8s8 GEMM (VNNI).

    On the prompt's pass that kernel is about twice as fast as int4's MatMulNBits on this kind of CPU (a 600-token
    prompt: 0.38 s against 0.75 s in the same run), for a larger file and somewhat slower decoding (memory-bound).
    ``keep_head`` leaves the LM head (the product that picks each next token) in float32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    head = [node.name for node in onnx.load(str(float32 / "model.onnx"), load_external_data=False).graph.node
            if node.op_type == "MatMul" and "lm_head" in node.name] if keep_head else []
    if keep_head and not head:
        raise ModelError("the ONNX export has no LM head MatMul to keep in float32: use ITBOT_ONNX_PRECISION=int8")
    staging.mkdir(parents=True)
    for file in float32.iterdir():
        if not file.name.startswith("model.onnx"):
            shutil.copy2(file, staging / file.name)
    quiet = _DropAdvice()  # the quantizer's advice to pre-process (shape inference) is for vision models
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(float32 / "model.onnx"), str(staging / "model.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"], use_external_data_format=True,
                         nodes_to_exclude=head)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises plain exceptions of many kinds
        raise ModelError(f"the int8 quantization of the ONNX export failed ({error.__class__.__name__}: "
                         f"{str(error)[:160]}): set ITBOT_ONNX_PRECISION=int4 or ITBOT_LLM_RUNTIME=torch") from None
    finally:
        logging.getLogger().removeFilter(quiet)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider")


def _remove_stale(current: Path) -> None:
    """Exports of earlier weights of the same model and precision are never used again."""
    stem = current.name.rsplit("-", 1)[0]  # <model>-<precision>: "int8" must not match "int8-head"
    for other in current.parent.glob(stem + "-*"):
        if other != current and other.name.rsplit("-", 1)[0] == stem and other.is_dir() \
                and (other / "genai_config.json").is_file():
            shutil.rmtree(other, ignore_errors=True)
