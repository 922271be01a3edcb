"""The local model behind the answer engine: one instance, one worker, a bounded queue.

:class:`ModelService` implements :class:`answers.engine.Generator`. Callers (the
engine, on the bot's worker threads) enqueue a request and wait; a single
worker thread owns the model and generates one answer at a time, so the one
model instance is never used by two threads at once.

* Queue full → :class:`~llm.errors.ModelUnavailable` at once (the engine answers
  from the KB and says so).
* Wall-clock timeout per request, counted from enqueueing →
  :class:`~llm.errors.ModelUnavailable`; the worker notices through a stopping
  criterion and abandons that generation at the next token.
* Anything the model raises (out of memory, a bad adapter at load time) →
  logged and raised as :class:`~llm.errors.ModelError`.
* Streaming: ``on_token`` gets text pieces as they are decoded (on the worker
  thread), already cut at stop sequences and with credentials masked; the
  return value is the post-checked final answer (:mod:`llm.postprocess`),
  which the caller should show instead of the streamed preview.

Nothing heavy happens at construction: the model is loaded by the worker on
the first request, or by :meth:`ModelService.load` (health checks, warm-up).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from llm.errors import ModelError, ModelUnavailable
from llm.postprocess import clean_generation
from llm.decoding import greedy_decode
from llm.streaming import SafeEmitter
from llm.chat import fold_system

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["ServiceConfig", "GenerationStats", "ModelService", "load_generator", "DEFAULT_STOP"]

log = logging.getLogger(__name__)

# Text (not token) stop sequences: the start of a turn the model should not write itself.
DEFAULT_STOP = ("\nUser:", "\nuser:", "<|im_start|>", "<|im_end|>", "[INST]", "</s>", "<|eot_id|>")

Loader = Callable[[], "tuple[PreTrainedModel, PreTrainedTokenizerBase]"]
_CLOSE = object()
_SERVICES: dict["ServiceConfig", "ModelService"] = {}
_SERVICES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What the model service needs from the settings."""

    model: str
    adapter: str | None = None
    quantization: str = "none"
    cache_dir: Path | None = None
    merge_adapter: bool = False
    dtype: str | None = None
    max_new_tokens: int = 256
    timeout_s: float = 30.0
    queue_size: int = 8
    stop: tuple[str, ...] = DEFAULT_STOP
    repetition_penalty: float = 1.1
    runtime: str = "torch"  # torch, onnx, or auto (onnx when installed; see llm.onnx_export.pick_runtime)
    onnx_precision: str = "int8"
    prefix_cache: int = 4  # ONNX runtime: prompts whose KV cache is kept for the next question on the same article

    def __post_init__(self) -> None:
        from llm.onnx_export import PRECISIONS, RUNTIMES

        if self.runtime not in RUNTIMES:
            raise ModelError(f"unknown LLM runtime {self.runtime!r}: use one of {', '.join(RUNTIMES)}")
        if self.onnx_precision not in PRECISIONS:
            raise ModelError(f"unknown ONNX precision {self.onnx_precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.max_new_tokens < 1:
            raise ModelError("max_new_tokens must be at least 1")
        if self.timeout_s <= 0:
            raise ModelError("the generation timeout must be positive")
        if self.queue_size < 1:
            raise ModelError("the model queue size must be at least 1")


@dataclass(slots=True)
class GenerationStats:
    """Figures of one generation (for logs and benchmarks)."""

    prompt_tokens: int = 0
    new_tokens: int = 0
    queued_s: float = 0.0
    ttft_s: float | None = None  # enqueue-independent: from the start of generate() to the first token
    total_s: float = 0.0
    stopped_by: str = ""  # eos, stop, limit, timeout
    reused_prompt_tokens: int = 0  # ONNX runtime: prompt tokens whose KV cache came from an earlier prompt
    runtime: str = "torch"

    @property
    def decode_tokens_per_s(self) -> float | None:
        if self.ttft_s is None or self.new_tokens < 2 or self.total_s <= self.ttft_s:
            return None
        return (self.new_tokens - 1) / (self.total_s - self.ttft_s)


@dataclass(slots=True)
class _Request:
    messages: list[dict[str, str]]
    on_token: Callable[[str], None] | None
    deadline: float
    enqueued: float
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    result: str | None = None
    error: ModelError | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)
    prefill: bool = False  # compute and keep the prompt's KV cache only (see ModelService.warm)


class ModelService:
    """A thread-safe, lazily loaded local model implementing the engine's ``Generator``."""

    def __init__(self, config: ServiceConfig, *, loader: Loader | None = None) -> None:
        """Create the service; nothing is loaded and no thread starts until it is needed.

        Args:
            config: Model, adapter, quantization and generation limits.
            loader: Returns ``(model, tokenizer)``; defaults to resolving ``config.model``
                and :func:`llm.loading.load_model`. Tests pass their own.
        """
        self.config = config
        self.name = Path(config.model).name + (f"+{Path(config.adapter).name}" if config.adapter else "")
        self._loader = loader or self._default_loader
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.queue_size)
        self._load_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_error: ModelError | None = None
        self._worker: threading.Thread | None = None
        self._closed = False
        self.runtime: str | None = None  # torch or onnx, once loaded
        self.last_stats: GenerationStats | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the model is loaded (for health checks)."""
        return self._model is not None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def pending(self) -> int:
        """Requests waiting in the queue (not counting the one being generated)."""
        return self._queue.qsize()

    def load(self) -> None:
        """Load the model now if it is not loaded yet (idempotent, thread-safe).

        Raises:
            ModelError: The model or adapter cannot be loaded. The error is kept:
                later requests fail fast with it instead of retrying a slow load.
        """
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            if self._load_error is not None:
                raise self._load_error
            started = time.perf_counter()
            try:
                model, tokenizer = self._loader()
            except ModelError as error:
                self._load_error = error
                log.error("model unavailable: %s", error)
                raise
            except Exception as error:  # noqa: BLE001 - a loader can fail in many ways
                log.exception("model failed to load")
                self._load_error = ModelError(f"the model failed to load ({error.__class__.__name__})")
                raise self._load_error from None
            self._model, self._tokenizer = model, tokenizer
            self.runtime = "onnx" if hasattr(model, "greedy_decode") else "torch"
            log.info("model %s ready in %.1f s (%s runtime)", self.name, time.perf_counter() - started, self.runtime)

    def close(self, *, timeout: float | None = 5.0) -> None:
        """Stop the worker after the request it is generating; queued requests fail."""
        self._closed = True
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(request, _Request):
                self._finish(request, error=ModelUnavailable("the model service is shutting down"))
        worker = self._worker
        if worker is not None and worker.is_alive():
            try:
                self._queue.put(_CLOSE, timeout=timeout)
            except queue.Full:
                return
            worker.join(timeout)

    def warm(self, messages: list[dict[str, str]]) -> None:
        """Keep the KV cache of ``messages`` ready, decoding nothing, so that prompts starting the same way (the
        engine's rules) are decoded warm: the ONNX runtime's prefix cache; the torch path keeps none.

        Runs on the worker like a question, after the model has loaded (it waits for room in the queue, which a
        question never does). Raises what :meth:`generate` raises.
        """
        self._run(messages, on_token=None, prefill=True)

    # -- the Generator protocol -------------------------------------------------------------

    def generate(self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None = None) -> str:
        """Generate the assistant reply to ``messages`` (see :func:`answers.prompts.build_messages`).

        Args:
            messages: Chat messages (system, earlier turns, the user's question).
            on_token: Called on the worker thread with each new piece of text.

        Returns:
            The post-checked reply.

        Raises:
            ModelUnavailable: The queue is full or the request timed out.
            ModelError: The model failed to load or to generate, or the reply was refused
                (it looked like it contained a credential).
        """
        request = self._run(messages, on_token=on_token)
        assert request.result is not None
        return request.result

    def _run(self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None,
             prefill: bool = False) -> _Request:
        """Queue a request for the worker and wait for it until its deadline; the done request, or its error."""
        if self._closed:
            raise ModelUnavailable("the model service is shut down")
        self._ensure_worker()
        now = time.monotonic()
        request = _Request(messages=messages, on_token=on_token, deadline=now + self.config.timeout_s, enqueued=now,
                           prefill=prefill)
        try:
            if prefill:  # the warm-up may wait for room: nobody is waiting on it
                self._queue.put(request, timeout=self.config.timeout_s)
            else:
                self._queue.put_nowait(request)
        except queue.Full:
            raise ModelUnavailable(f"the model is busy ({self.config.queue_size} questions waiting)") from None
        if not request.done.wait(timeout=max(0.0, request.deadline - time.monotonic())):
            request.cancelled.set()
            raise ModelUnavailable(f"the model did not {'warm up' if prefill else 'answer'} within "
                                   f"{self.config.timeout_s:g} s")
        if request.error is not None:
            raise request.error
        return request

    # -- worker ----------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="itbot-model", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            request = self._queue.get()
            if request is _CLOSE:
                return
            if request.cancelled.is_set():  # the caller gave up while it waited
                continue
            try:
                self.load()
                request.stats.queued_s = time.monotonic() - request.enqueued
                result = self._generate(request)
            except ModelError as error:
                self._finish(request, error=error)
            except Exception as error:  # noqa: BLE001 - out of memory, CUDA errors, template errors …
                log.exception("generation failed")
                self._finish(request, error=ModelError(f"generation failed ({error.__class__.__name__})"))
            else:
                self._finish(request, result=result)

    @staticmethod
    def _finish(request: _Request, *, result: str | None = None, error: ModelError | None = None) -> None:
        request.result, request.error = result, error
        request.done.set()

    def _generate(self, request: _Request) -> str:
        model, tokenizer, config = self._model, self._tokenizer, self.config
        inputs = _encode(tokenizer, request.messages).to(model.device)
        if request.prefill:
            if self.runtime == "onnx":
                model.prefill(inputs["input_ids"][0].tolist(), repetition_penalty=config.repetition_penalty)
            return ""
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and prompt_tokens + config.max_new_tokens > limit:
            raise ModelError(f"the prompt is too long for the model ({prompt_tokens} tokens, limit {limit})")
        streamer = _Streamer(tokenizer, request, stop=config.stop)
        eos = _eos_ids(model, tokenizer)

        def halt() -> bool:
            return streamer.stopped or request.cancelled.is_set() or time.monotonic() >= request.deadline

        started = time.perf_counter()
        streamer.started = started
        if self.runtime == "onnx":  # an llm.onnx_runtime.OnnxModel: the same contract, its own loop
            new_ids = model.greedy_decode(inputs["input_ids"][0].tolist(), max_new_tokens=config.max_new_tokens,
                                          eos_ids=eos, repetition_penalty=config.repetition_penalty,
                                          on_token=streamer.add, should_stop=halt)
        else:
            new_ids = greedy_decode(model, inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                    max_new_tokens=config.max_new_tokens, eos_ids=eos,
                                    repetition_penalty=config.repetition_penalty, on_token=streamer.add,
                                    should_stop=halt)
        streamer.end()
        stats = request.stats
        stats.runtime = self.runtime or "torch"
        stats.reused_prompt_tokens = getattr(model, "last_reused_tokens", 0) if self.runtime == "onnx" else 0
        stats.prompt_tokens, stats.new_tokens = prompt_tokens, len(new_ids)
        stats.ttft_s, stats.total_s = streamer.first_token_s, time.perf_counter() - started
        hit_limit = len(new_ids) >= config.max_new_tokens
        if request.cancelled.is_set() or time.monotonic() >= request.deadline:
            stats.stopped_by = "timeout"
        elif streamer.stopped:
            stats.stopped_by = "stop"
        elif hit_limit:
            stats.stopped_by = "limit"
        else:
            stats.stopped_by = "eos"
        self.last_stats = stats
        log.info("generated %d tokens in %.2f s (prompt %d tokens, %d reused, first token %.2f s, queued %.2f s, %s)",
                 stats.new_tokens, stats.total_s, prompt_tokens, stats.reused_prompt_tokens, stats.ttft_s or 0.0,
                 stats.queued_s, stats.stopped_by)
        if stats.stopped_by == "timeout":
            raise ModelUnavailable(f"the model did not answer within {config.timeout_s:g} s")
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        cleaned = clean_generation(text, stop=config.stop, hit_limit=stats.stopped_by == "limit")
        if cleaned is None:
            raise ModelError("the generated answer was empty or looked like it contained a credential")
        return cleaned

    def _default_loader(self) -> "tuple[PreTrainedModel, PreTrainedTokenizerBase]":
        from llm.loading import load_model
        from llm.model_files import resolve_model

        from llm.onnx_export import pick_runtime

        config = self.config
        path = resolve_model(config.model, cache_dir=config.cache_dir)
        runtime = pick_runtime(config.runtime, quantization=config.quantization)
        if runtime == "onnx":
            from llm.onnx_runtime import load_onnx

            cache_dir = config.cache_dir or Path.home() / ".cache" / "itbot"
            try:
                return load_onnx(path, cache_dir=cache_dir, adapter=config.adapter, precision=config.onnx_precision,
                                 prefix_cache=config.prefix_cache)
            except ModelError as error:
                if config.runtime == "onnx":
                    raise
                log.warning("the ONNX runtime is unavailable (%s): decoding with torch", error)
        return load_model(path, quantization=config.quantization, adapter=config.adapter,
                          merge=config.merge_adapter, dtype=config.dtype)


def _encode(tokenizer: Any, messages: list[dict[str, str]]) -> Any:
    """Apply the model's chat template; fold the system prompt into the first user turn if the template refuses it."""
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                             return_dict=True)
    except Exception:  # noqa: BLE001 - jinja's TemplateError ("roles must alternate", "system not supported")
        if not messages or messages[0]["role"] != "system":
            raise
    rest = fold_system(messages)
    log.debug("the chat template has no system role: the system prompt goes into the first user turn")
    return tokenizer.apply_chat_template(rest, add_generation_prompt=True, return_tensors="pt", return_dict=True)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


class _Streamer:
    """Decodes new tokens as they come and hands the text so far to a :class:`~llm.streaming.SafeEmitter`.

    It re-decodes all generated ids at each step (cheap for a few hundred tokens), which keeps multi-byte characters
    and stop sequences that span tokens correct.
    """

    def __init__(self, tokenizer: Any, request: _Request, *, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.started = 0.0
        self.first_token_s: float | None = None
        self.emitter = SafeEmitter(request.on_token, stop=stop, cancelled=request.cancelled.is_set)

    @property
    def stopped(self) -> bool:
        return self.emitter.stopped

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)

    def add(self, token_id: int) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started
        self.ids.append(token_id)
        self.emitter.update(self.text)

    def end(self) -> None:
        self.emitter.finish(self.text)


def load_generator(
    model: str,
    *,
    adapter: str | None = None,
    quantization: str = "none",
    cache_dir: Path | None = None,
    merge_adapter: bool = False,
    dtype: str | None = None,
    max_new_tokens: int = 256,
    timeout_s: float = 30.0,
    queue_size: int = 8,
    stop: tuple[str, ...] = DEFAULT_STOP,
    runtime: str = "auto",
    onnx_precision: str = "int8",
    prefix_cache: int = 4,
) -> ModelService:
    """The process's model service for these settings; lazy: nothing loads until the first request or ``load()``.

    Calling it again with the same settings returns the same service, so the
    CLI, the bot and the evaluation share one model instance per process. ``runtime`` (``ITBOT_LLM_RUNTIME``):
    ``auto`` decodes with ONNX Runtime when it is installed (see :mod:`llm.onnx_runtime`), ``torch`` or ``onnx``.
    """
    config = ServiceConfig(
        model=model, adapter=adapter, quantization=quantization, cache_dir=cache_dir, merge_adapter=merge_adapter,
        dtype=dtype, max_new_tokens=max_new_tokens, timeout_s=timeout_s, queue_size=queue_size, stop=tuple(stop),
        runtime=runtime, onnx_precision=onnx_precision, prefix_cache=prefix_cache,
    )
    with _SERVICES_LOCK:
        service = _SERVICES.get(config)
        if service is None or service.closed:
            service = _SERVICES[config] = ModelService(config)
        return service
