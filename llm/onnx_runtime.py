"""Greedy decoding on ONNX Runtime GenAI, with the KV cache of recent prompts kept for reuse (prefix caching).

:class:`OnnxModel` stands where the torch model stands in :class:`~llm.service.ModelService`: the service encodes the
prompt with the same tokenizer and chat template, then calls :meth:`OnnxModel.greedy_decode` with the same limits,
end-of-turn tokens, repetition penalty, ``on_token`` and ``should_stop`` as :func:`llm.decoding.greedy_decode`.

Prefix caching: the engine's prompt is ``system (rules + the retrieved article) · question``, so two questions about the
same article share all but their last few dozen tokens. Each ONNX generator holds the KV cache of the last sequence it
decoded; a new prompt goes to the cached generator sharing its longest prefix, which is rewound to that prefix
(``rewind_to``) and fed only the rest. The first question about an article pays the whole prompt (cold), the next
ones only their own tokens (warm). A small LRU (``prefix_cache`` generators, each a KV buffer of its maximum length)
bounds the memory.

onnxruntime_genai is imported inside :func:`load_onnx_model`, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from llm.errors import ModelError

__all__ = ["OnnxModel", "load_onnx", "load_onnx_model", "common_prefix"]

log = logging.getLogger(__name__)

MIN_SHARED = 16  # a shorter common prefix is not worth a cached generator: start a fresh one
WARM_ROOM = 1024  # KV room a prefilled prefix keeps for an article, a question and the answer (about 50 MB)
_HEADROOM = 256  # KV room beyond prompt + max_new_tokens, so a later longer question can reuse the generator


def common_prefix(a: list[int], b: list[int]) -> int:
    """The length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass
class _Entry:
    generator: Any
    tokens: list[int]  # what its KV cache holds
    max_length: int
    penalty: float


class OnnxModel:
    """An ONNX Runtime GenAI model with the attributes :class:`~llm.service.ModelService` reads of a torch model."""

    device = "cpu"

    def __init__(self, model: Any, *, folder: Path, context_length: int, eos_token_id: Any, prefix_cache: int = 4,
                 og: Any = None) -> None:
        self._og = og
        self._model = model
        self.folder = folder
        self.config = SimpleNamespace(max_position_embeddings=context_length)
        self.generation_config = SimpleNamespace(eos_token_id=eos_token_id)
        self.prefix_cache = max(0, prefix_cache)
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_id = 0
        self.last_reused_tokens = 0

    def _fresh(self, *, max_length: int, penalty: float) -> _Entry:
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(do_sample=False, max_length=max_length, repetition_penalty=penalty)
        return _Entry(self._og.Generator(self._model, params), [], max_length, penalty)

    def _checkout(self, ids: list[int], *, max_new_tokens: int, penalty: float) -> tuple[_Entry, int]:
        """The cached generator sharing the longest prefix with ``ids`` (rewound to it), or a fresh one."""
        needed = len(ids) + max_new_tokens
        best, shared = None, 0
        for key, entry in self._entries.items():
            if entry.penalty != penalty or entry.max_length < needed:
                continue
            length = min(common_prefix(entry.tokens, ids), len(ids) - 1)  # at least one token to feed
            if length > shared:  # strictly longer: among equal prefixes (the rules only) the oldest is reused
                best, shared = key, length
        if best is not None and shared >= MIN_SHARED:
            entry = self._entries.pop(best)
            entry.generator.rewind_to(shared)
            entry.tokens = entry.tokens[:shared]
            return entry, shared
        limit = int(self.config.max_position_embeddings)
        return self._fresh(max_length=min(limit, needed + _HEADROOM), penalty=penalty), 0

    def _checkin(self, entry: _Entry) -> None:
        if self.prefix_cache == 0:
            return
        self._entries[self._next_id] = entry
        self._next_id += 1
        while len(self._entries) > self.prefix_cache:
            self._entries.popitem(last=False)

    def prefill(self, input_ids: list[int], *, repetition_penalty: float = 1.0, room: int = WARM_ROOM) -> None:
        """Compute and keep the KV cache of ``input_ids`` without decoding: a prompt that starts the same way (the
        engine's rules) is then decoded warm. ``room`` is the KV space left for the rest of such prompts."""
        ids = [int(i) for i in input_ids]
        if not ids or self.prefix_cache == 0:
            return
        entry, shared = self._checkout(ids, max_new_tokens=room, penalty=float(repetition_penalty))
        entry.generator.append_tokens(ids[shared:])
        entry.tokens = ids
        self._checkin(entry)

    def clear_cache(self) -> None:
        """Forget every cached prefix (frees their KV buffers)."""
        self._entries.clear()

    def greedy_decode(self, input_ids: list[int], *, max_new_tokens: int, eos_ids: set[int],
                      repetition_penalty: float = 1.0, on_token: Callable[[int], None] | None = None,
                      should_stop: Callable[[], bool] = lambda: False) -> list[int]:
        """Generate up to ``max_new_tokens`` token ids after ``input_ids``, greedily (see
        :func:`llm.decoding.greedy_decode`, whose contract this follows).

        Returns:
            The new token ids, without the end-of-turn token.
        """
        ids = [int(i) for i in input_ids]
        if not ids:
            raise ModelError("an empty prompt cannot be decoded")
        entry, shared = self._checkout(ids, max_new_tokens=max_new_tokens, penalty=float(repetition_penalty))
        self.last_reused_tokens = shared
        generator, new = entry.generator, []
        # an exception leaves the generator in an unknown state: it is simply not cached again
        generator.append_tokens(ids[shared:])
        entry.tokens = list(ids)
        while len(new) < max_new_tokens and not generator.is_done():
            generator.generate_next_token()
            value = int(generator.get_next_tokens()[0])
            entry.tokens.append(value)
            if value in eos_ids:
                break
            new.append(value)
            if on_token is not None:
                on_token(value)
            if should_stop():
                break
        if len(entry.tokens) > len(ids):
            entry.tokens.pop()  # the last chosen token is in the sequence, its keys and values are not computed yet
        self._checkin(entry)
        return new


def load_onnx_model(folder: Path, *, eos_token_id: Any = None, prefix_cache: int = 4,
                    threads: int | None = None) -> OnnxModel:
    """Open an ONNX export (see :func:`llm.onnx_export.export_onnx`) on the CPU with ``threads`` intra-op threads.

    ONNX Runtime's default is one thread per physical core it detects, which on small virtual machines can be one:
    the machine's CPU count is given explicitly (prefill is twice as fast on 2 cores).
    """
    try:
        import onnxruntime_genai as og
    except ImportError:
        from llm.onnx_export import MISSING_RUNTIME

        raise ModelError(MISSING_RUNTIME) from None
    threads = threads or os.cpu_count() or 1
    try:
        config = og.Config(str(folder))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        model = og.Model(config)
        context = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))["model"]["context_length"]
    except Exception as error:  # noqa: BLE001 - ORT raises RuntimeError with long texts for corrupt files
        log.debug("ONNX model load failed", exc_info=True)
        raise ModelError(f"could not load the ONNX export in {folder} ({error.__class__.__name__}): delete the "
                         "folder to rebuild it, or set ITBOT_LLM_RUNTIME=torch") from None
    return OnnxModel(model, folder=folder, context_length=int(context), eos_token_id=eos_token_id,
                     prefix_cache=prefix_cache, og=og)


def load_onnx(model_path: str | Path, *, cache_dir: Path, adapter: str | Path | None = None, precision: str = "int8",
              prefix_cache: int = 4) -> "tuple[OnnxModel, Any]":
    """Model and tokenizer for the ONNX runtime: the export of ``model_path`` + ``adapter`` (built once, see
    :func:`llm.onnx_export.export_onnx`) and the checkpoint's own tokenizer and end-of-turn tokens.

    Raises:
        ModelError: The runtime is missing, or the export cannot be built or loaded.
    """
    from llm.loading import load_tokenizer
    from llm.onnx_export import export_onnx

    folder = export_onnx(model_path, cache_dir=cache_dir, adapter=adapter, precision=precision)
    tokenizer = load_tokenizer(str(model_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = None
    generation = Path(model_path) / "generation_config.json"
    if generation.is_file():
        try:
            eos = json.loads(generation.read_text(encoding="utf-8")).get("eos_token_id")
        except ValueError:
            log.warning("%s is not valid JSON: only the tokenizer's end-of-turn token ends an answer", generation)
    model = load_onnx_model(folder, eos_token_id=eos, prefix_cache=prefix_cache)
    log.info("loaded the ONNX export %s (adapter %s merged)", folder.name, adapter or "none")
    return model, tokenizer
