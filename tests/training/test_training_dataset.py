"""Preparing the SFT data: the model's chat template, loss on the reply only, fitting into max_seq_length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data import SFT_DIR
from data.utterances import read_jsonl, write_jsonl
from llm.loading import FALLBACK_CHAT_TEMPLATE
from llm.service import _encode
from tests.llm.tiny_models import MISTRAL_TEMPLATE, make_tokenizer
from tests.training.conftest import shorten
from training.dataset import (
    IGNORE_INDEX,
    PaddingCollator,
    build_examples,
    encode_example,
    ensure_chat_template,
    load_split,
)
from training.errors import TrainingError
from training.metrics import token_accuracy


@pytest.fixture(scope="module")
def chatml():
    return make_tokenizer()


@pytest.fixture(scope="module")
def mistral():
    return make_tokenizer(template=MISTRAL_TEMPLATE, bos="<s>", eos="</s>")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [shorten(row) for row in read_jsonl(SFT_DIR / "train.jsonl.gz")[:3]]


def _reply_and_prompt(tokenizer, example):
    ids, labels = example["input_ids"], example["labels"]
    learned = [token for token, label in zip(ids, labels) if label != IGNORE_INDEX]
    masked = [token for token, label in zip(ids, labels) if label == IGNORE_INDEX]
    return tokenizer.decode(learned), masked


def test_labels_mask_system_and_user_tokens_and_keep_the_reply(chatml, rows):
    messages = rows[0]["messages"]
    example, truncated = encode_example(chatml, messages, max_seq_length=4096)
    assert example is not None and not truncated
    ids, labels = example["input_ids"], example["labels"]
    first = labels.index(next(label for label in labels if label != IGNORE_INDEX))
    assert all(label == IGNORE_INDEX for label in labels[:first])  # the whole prompt, then only the reply
    assert labels[first:] == ids[first:]
    reply, masked = _reply_and_prompt(chatml, example)
    assert reply == messages[-1]["content"] + "<|im_end|>\n"  # the end-of-turn token is learned too
    prompt = chatml.decode(masked)
    assert messages[0]["content"] in prompt and messages[1]["content"] in prompt and prompt.endswith("assistant\n")
    assert example["attention_mask"] == [1] * len(ids)


@pytest.mark.parametrize("template", ["chatml", "mistral"])
def test_the_masked_prompt_is_exactly_what_the_model_service_sends(request, rows, template):
    """Training and inference must not drift: the prompt ids equal llm.service's, system fold included."""
    tokenizer = request.getfixturevalue(template)
    messages = rows[1]["messages"]
    example, _ = encode_example(tokenizer, messages, max_seq_length=4096)
    _reply, masked = _reply_and_prompt(tokenizer, example)
    served = _encode(tokenizer, messages[:-1])["input_ids"][0].tolist()
    assert masked == served
    if template == "mistral":  # no system role: the rules and articles ride in the user turn, as at inference
        assert tokenizer.decode(masked).startswith("<s>[INST] " + messages[0]["content"][:40])


def test_a_long_system_message_is_shortened_and_a_reply_that_cannot_fit_is_dropped(chatml):
    row = read_jsonl(SFT_DIR / "train.jsonl.gz")[0]  # full articles: about 2,000 tiny-tokenizer tokens
    long_reply = shorten(row, system_chars=3000, reply_chars=100)
    too_long = {"messages": [*long_reply["messages"][:-1], {"role": "assistant", "content": "word " * 400}]}
    examples, stats = build_examples([long_reply, too_long], chatml, max_seq_length=200)
    assert (stats.rows, stats.kept, stats.truncated, stats.dropped) == (2, 1, 1, 1)
    example = examples[0]
    assert len(example["input_ids"]) <= 200
    reply, masked = _reply_and_prompt(chatml, example)
    assert reply == long_reply["messages"][-1]["content"] + "<|im_end|>\n"  # the reply is never cut
    assert long_reply["messages"][1]["content"] in chatml.decode(masked)  # nor the question
    assert stats.reply_tokens == sum(label != IGNORE_INDEX for label in example["labels"])
    assert "1 of 2 examples (1 with a shortened system message, 1 dropped as too long)" in stats.describe("train")


def test_a_tokenizer_without_chat_template_is_refused_unless_the_fallback_is_asked_for():
    tokenizer = make_tokenizer(template=None)
    with pytest.raises(TrainingError, match="the tokenizer of base has no chat template: .*chat_template: fallback"):
        ensure_chat_template(tokenizer, model="base", policy="model")
    assert ensure_chat_template(tokenizer, model="base", policy="fallback") is True
    assert tokenizer.chat_template == FALLBACK_CHAT_TEMPLATE
    assert ensure_chat_template(tokenizer, model="base", policy="model") is False  # now it has one


def test_the_collator_pads_ids_mask_and_labels():
    batch = PaddingCollator(pad_token_id=0, pad_to_multiple_of=4)(
        [{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]},
         {"input_ids": [8], "attention_mask": [1], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100], [8, -100, -100, -100]]
    assert batch["input_ids"].dtype == torch.long


def test_token_accuracy_counts_next_token_predictions_on_labelled_positions_only():
    labels = np.array([[-100, -100, 5, 6, 7], [-100, 3, 4, -100, -100]])
    predictions = np.array([[9, 5, 6, 0, 1], [3, 8, 9, 9, 9]])  # position i predicts label i + 1
    # row 0: 5 right, 6 right, 7 wrong (0); row 1: 3 right, 4 wrong (8); the unlabelled positions do not count
    assert token_accuracy(predictions, labels) == pytest.approx(3 / 5)
    assert token_accuracy(predictions, np.full_like(labels, -100)) == 0.0


def test_a_missing_or_malformed_split_is_one_line(tmp_path: Path):
    with pytest.raises(TrainingError, match=r"no SFT train split at .*train.jsonl.gz: build it with "
                                            r"`python -m training.sft_data`"):
        load_split(tmp_path, "train")
    write_jsonl(tmp_path / "train.jsonl.gz", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(TrainingError, match="train.jsonl.gz:1: 'messages' must be .* ending with the assistant reply"):
        load_split(tmp_path, "train")


def test_the_committed_sft_splits_load():
    train = load_split(None, "train")
    # CPU-sized (training/sft_data.py): a few answers per article, about 870 examples
    assert 500 < len(train) < 1500 and {m["role"] for m in train[0]["messages"]} == {"system", "user", "assistant"}
    assert len(load_split(None, "validation", limit=5)) == 5
