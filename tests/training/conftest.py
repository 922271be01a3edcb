"""Fixtures for the fine-tuning tests: a tiny real Llama, a tiny slice of the SFT data, configs that run in seconds.

The model is the random-weight Llama of ``tests/llm/tiny_models.py`` (hidden size
64, 2 layers, byte-level BPE with a ChatML template). The data are the first
examples of the committed SFT splits with their messages shortened, so an
example is about 250 tokens and a training step takes a fraction of a second on CPU.

There is no ``__init__.py`` here on purpose (it would shadow the real ``training`` package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from data import SFT_DIR
from data.utterances import read_jsonl, write_jsonl
from tests.llm.tiny_models import save_tiny_model
from training.config import TrainConfig, load_config


def shorten(row: dict, *, system_chars: int = 400, reply_chars: int = 160) -> dict:
    """An SFT row with its system message (rules + articles) and reply cut short."""
    messages = [dict(message) for message in row["messages"]]
    messages[0]["content"] = messages[0]["content"][:system_chars]
    messages[-1]["content"] = messages[-1]["content"][:reply_chars]
    return {**row, "messages": messages}


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train (4 examples) and validation (2 examples) splits, from the committed SFT files, shortened."""
    folder = tmp_path_factory.mktemp("sft")
    write_jsonl(folder / "train.jsonl.gz", [shorten(row) for row in read_jsonl(SFT_DIR / "train.jsonl.gz")[:4]])
    write_jsonl(folder / "validation.jsonl.gz",
                [shorten(row) for row in read_jsonl(SFT_DIR / "validation.jsonl.gz")[:2]])
    return folder


TINY_SETTINGS: dict[str, Any] = dict(
    max_seq_length=256, lora_r=8, lora_alpha=16, lora_dropout=0.0, learning_rate=1e-2, lr_scheduler_type="constant",
    warmup_ratio=0.0, per_device_train_batch_size=4, per_device_eval_batch_size=2, gradient_accumulation_steps=1,
    logging_steps=1, eval_steps=0, save_steps=50, max_steps=3,
)


@pytest.fixture
def tiny_config(tiny_llama: Path, tiny_data: Path, tmp_path: Path) -> Callable[..., TrainConfig]:
    """A config for the tiny Llama and data, writing into ``tmp_path/run`` unless told otherwise."""

    def make(**overrides: Any) -> TrainConfig:
        values = {**TINY_SETTINGS, "base_model": str(tiny_llama), "data_dir": str(tiny_data),
                  "output_dir": str(tmp_path / "run"), **overrides}
        return load_config(None, values)

    return make
