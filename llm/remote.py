"""Generation on an OpenAI-compatible server (vLLM, TGI, Ollama, ``transformers serve``) instead of in process.

:class:`RemoteGenerator` implements :class:`answers.engine.Generator` like the local
:class:`~llm.service.ModelService`, with the same contract, so the engine's fallbacks are unchanged:

* the server unreachable, overloaded (HTTP 429, 503), or too slow (the wall-clock ``timeout_s`` counted from the
  request, between streamed pieces too) → :class:`~llm.errors.ModelUnavailable`: the engine answers from the KB and
  says so;
* the server refusing the request (wrong API key, unknown model name, prompt too long) →
  :class:`~llm.errors.ModelError`, with a one-line reason an operator can act on;
* more than ``max_in_flight`` questions already waiting on the server → :class:`~llm.errors.ModelUnavailable` at
  once, so a slow server never ties up every bot worker;
* streaming: ``on_token`` gets safe pieces (:class:`~llm.streaming.SafeEmitter`) as the server sends them; the
  return value is the post-checked reply (:func:`llm.postprocess.clean_generation`).

Many bot replicas share one GPU server this way; vLLM serves a LoRA adapter under its own model name
(``--lora-modules itbot=/adapters/itbot``), which is what ``ITBOT_LLM_MODEL`` names. The API key never reaches a
log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from llm.errors import ModelError, ModelUnavailable
from llm.postprocess import clean_generation
from llm.service import DEFAULT_STOP, GenerationStats
from llm.streaming import SafeEmitter

__all__ = ["RemoteConfig", "RemoteGenerator", "server_address"]

log = logging.getLogger(__name__)

# OpenAI's API accepts at most four stop sequences; the rest are cut here (SafeEmitter, clean_generation).
_SERVER_STOPS = 4


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """Where the model server is and how to ask it."""

    url: str  # the API base, e.g. http://gpu-1:8000/v1
    model: str  # the served model's name (for vLLM with --lora-modules, the adapter's name)
    api_key: str | None = field(default=None, repr=False)
    max_new_tokens: int = 256
    timeout_s: float = 30.0
    max_in_flight: int = 8
    stop: tuple[str, ...] = DEFAULT_STOP
    repetition_penalty: float | None = None  # sent only when set: not every server accepts it

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelError(f"the model server URL must start with http:// or https:// and name a host "
                             f"(got {server_address(self.url)!r})")
        if not self.model.strip():
            raise ModelError("the model server needs the name of the model to ask for")
        if self.timeout_s <= 0:
            raise ModelError("the generation timeout must be positive")
        if self.max_in_flight < 1:
            raise ModelError("the number of questions waiting on the model server must be at least 1")


def server_address(url: str) -> str:
    """The URL without credentials, query or fragment: what logs and errors may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0].split("@")[-1]


class RemoteGenerator:
    """A thread-safe client of an OpenAI-compatible chat-completions server, implementing the engine's Generator."""

    def __init__(self, config: RemoteConfig) -> None:
        from openai import OpenAI

        self.config = config
        self.name = config.model
        self.address = server_address(config.url)
        # The SDK's own retries would hide a slow server behind several time-outs: one try per question, the engine
        # falls back to the curated steps.
        self._client = OpenAI(base_url=config.url.rstrip("/"), api_key=config.api_key or "not-needed",
                              timeout=config.timeout_s, max_retries=0)
        self._slots = threading.BoundedSemaphore(config.max_in_flight)
        self._ready = False
        self._closed = False
        self.last_stats: GenerationStats | None = None

    # -- lifecycle (the same surface as ModelService, for health checks and start-up) ------------

    @property
    def ready(self) -> bool:
        """True once the server has answered (a probe or a question) and until a question finds it unreachable."""
        return self._ready

    @property
    def closed(self) -> bool:
        return self._closed

    def load(self) -> None:
        """Ask the server which models it serves; raise :class:`ModelError` if it is unreachable or lacks ours."""
        import openai

        try:
            served = [m.id for m in self._client.models.list()]
        except openai.AuthenticationError:
            raise ModelError(f"the model server at {self.address} refused the API key (HTTP 401)") from None
        except openai.APIStatusError as error:
            raise ModelError(f"the model server at {self.address} answered HTTP {error.status_code} "
                             "when asked for its models") from None
        except openai.APIError as error:
            raise ModelUnavailable(f"the model server at {self.address} is unreachable "
                                   f"({error.__class__.__name__})") from None
        if served and self.config.model not in served:
            raise ModelError(f"the model server at {self.address} does not serve {self.config.model!r} "
                             f"(it serves: {', '.join(served[:5])})")
        self._ready = True
        log.info("model server %s ready with %s", self.address, self.config.model)

    def close(self, *, timeout: float | None = 5.0) -> None:  # noqa: ARG002 - the same signature as ModelService
        self._closed = True
        self._client.close()

    # -- the Generator protocol -------------------------------------------------------------

    def generate(self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None = None) -> str:
        """The assistant reply to ``messages``, streamed from the server (see the module doc for the errors)."""
        if self._closed:
            raise ModelUnavailable("the model client is shut down")
        if not self._slots.acquire(blocking=False):
            raise ModelUnavailable(f"the model server is busy ({self.config.max_in_flight} questions waiting)")
        try:
            return self._generate(messages, on_token)
        finally:
            self._slots.release()

    def _generate(self, messages: list[dict[str, str]], on_token: Callable[[str], None] | None) -> str:
        import openai

        config = self.config
        started = time.perf_counter()
        deadline = time.monotonic() + config.timeout_s
        stats = GenerationStats()
        emitter = SafeEmitter(on_token, stop=config.stop)
        extra: dict[str, Any] = {}
        if config.repetition_penalty is not None:
            extra["extra_body"] = {"repetition_penalty": config.repetition_penalty}
        text, finish = "", None
        try:
            stream = self._client.chat.completions.create(
                model=config.model, messages=messages, stream=True, max_tokens=config.max_new_tokens,
                temperature=0.0, stop=list(config.stop[:_SERVER_STOPS]) or None, **extra)
            with stream:
                for chunk in stream:
                    if time.monotonic() >= deadline:
                        stats.stopped_by = "timeout"
                        break
                    if getattr(chunk, "usage", None) is not None:
                        stats.prompt_tokens = chunk.usage.prompt_tokens or 0
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    piece = choice.delta.content if choice.delta is not None else None
                    if piece:
                        if stats.ttft_s is None:
                            stats.ttft_s = time.perf_counter() - started
                        stats.new_tokens += 1  # one streamed piece is one token on vLLM and transformers serve
                        text += piece
                        emitter.update(text)
                        if emitter.stopped:
                            stats.stopped_by = "stop"
                            break
                    finish = choice.finish_reason or finish
        except openai.APITimeoutError:
            self._ready = False
            raise ModelUnavailable(f"the model server at {self.address} did not answer within "
                                   f"{config.timeout_s:g} s") from None
        except openai.APIConnectionError as error:
            self._ready = False
            raise ModelUnavailable(f"the model server at {self.address} is unreachable "
                                   f"({error.__class__.__name__})") from None
        except openai.AuthenticationError:
            raise ModelError(f"the model server at {self.address} refused the API key (HTTP 401)") from None
        except openai.NotFoundError:
            raise ModelError(f"the model server at {self.address} does not serve {config.model!r} "
                             "(HTTP 404)") from None
        except (openai.RateLimitError, openai.InternalServerError) as error:
            raise ModelUnavailable(f"the model server at {self.address} is busy or failing "
                                   f"(HTTP {error.status_code})") from None
        except openai.APIStatusError as error:
            raise ModelError(f"the model server at {self.address} refused the request "
                             f"(HTTP {error.status_code})") from None
        self._ready = True
        stats.total_s = time.perf_counter() - started
        stats.stopped_by = stats.stopped_by or {"length": "limit", "stop": "eos"}.get(finish or "", finish or "eos")
        self.last_stats = stats
        log.info("model server %s generated %d pieces in %.2f s (first after %.2f s, %s)", self.address,
                 stats.new_tokens, stats.total_s, stats.ttft_s or 0.0, stats.stopped_by)
        if stats.stopped_by == "timeout":
            raise ModelUnavailable(f"the model server at {self.address} did not finish within {config.timeout_s:g} s")
        emitter.finish(text)
        cleaned = clean_generation(text, stop=config.stop, hit_limit=stats.stopped_by == "limit")
        if cleaned is None:
            raise ModelError("the generated answer was empty or looked like it contained a credential")
        return cleaned
