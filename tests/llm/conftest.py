"""Fixtures for the model tests: tiny real checkpoints (see ``tiny_models``), services, the engine in llm mode.

The tiny Llama and Mistral checkpoints (random weights, hidden size 64, 2 layers,
a byte-level BPE tokenizer trained on knowledge-base sentences) are saved once
per run and loaded through the real :func:`llm.loading.load_model`.

There is no ``__init__.py`` here on purpose (it would shadow the real ``llm``
package). ``ITBOT_TEST_MODEL_CACHE`` (read at import, before the root
conftest scrubs ``ITBOT_*``) keeps the embedded model between runs of the
``model`` tests; otherwise it is fetched into a temporary folder once per run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from llm.service import ModelService, ServiceConfig
from tiny_models import MISTRAL_TEMPLATE, save_tiny_adapter, save_tiny_model

MODEL_CACHE = os.environ.get("ITBOT_TEST_MODEL_CACHE")


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def mistral_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-mistral"), arch="mistral", template=MISTRAL_TEMPLATE)


@pytest.fixture(scope="session")
def adapter_dir(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_adapter(llama_dir, tmp_path_factory.mktemp("tiny-adapter"))


class RecordingService(ModelService):
    """The real service that also records the messages of every request it is given."""

    def __init__(self, config: ServiceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.history: list[list[dict[str, str]]] = []

    def generate(self, messages, *, on_token=None):  # type: ignore[override]
        self.history.append(messages)
        return super().generate(messages, on_token=on_token)


@pytest.fixture
def make_service(llama_dir: Path) -> Iterator[Callable[..., RecordingService]]:
    """Build services on the tiny Llama (or another model folder); all are closed after the test."""
    made: list[ModelService] = []

    def make(model: Path | str = llama_dir, *, loader: Any = None, **options: Any) -> RecordingService:
        options.setdefault("max_new_tokens", 24)
        options.setdefault("timeout_s", 20.0)
        service = RecordingService(ServiceConfig(model=str(model), **options), loader=loader)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close(timeout=10)


@pytest.fixture
def llm_engine(engine: Any) -> Callable[[ModelService], Any]:
    """The real answer engine in llm mode, on the shared KB and router, with the given generator."""
    from answers.engine import AnswerEngine

    def make(generator: ModelService | None, *, withhold_ungrounded: bool = True) -> AnswerEngine:
        return AnswerEngine(kb=engine.kb, router=engine.router, org=engine.org, answer_mode="llm",
                            generator=generator, clarify_threshold=engine.clarify_threshold,
                            hybrid_min_retrieval=engine.hybrid_min_retrieval, withhold_ungrounded=withhold_ungrounded)

    return make


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the embedded model is fetched for the ``model`` tests."""
    return Path(MODEL_CACHE).expanduser() if MODEL_CACHE else tmp_path_factory.mktemp("model-cache")
