"""Turn the SFT splits into token ids and labels: the model's chat template, loss on the reply only.

Each row of ``data/sft/{train,validation}.jsonl.gz`` holds ``messages`` built by
:func:`answers.prompts.build_messages` (system: rules and knowledge-base articles;
user: the question; assistant: the reference reply). An example is rendered
twice with the tokenizer's chat template, once whole and once up to the
generation prompt, exactly as :class:`llm.service.ModelService` prompts, so
training and inference see the same text. A template without a system role
(Mistral-7B-Instruct v0.1/v0.2) gets the system prompt folded into the user
turn, as the service does. Every token before the reply is labelled ``-100``
(no loss); the reply and the template's end-of-turn token are learned.

An example longer than ``max_seq_length`` loses the end of its system
message (the last articles are the least relevant); one whose reply alone does
not fit is dropped. :class:`DatasetStats` counts both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from data import SFT_DIR
from data.utterances import read_jsonl
from llm.errors import DatasetError
from llm.loading import FALLBACK_CHAT_TEMPLATE
from llm.chat import fold_system
from training.errors import TrainingError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "IGNORE_INDEX",
    "DatasetStats",
    "split_path",
    "load_split",
    "data_fingerprint",
    "ensure_chat_template",
    "fold_system",
    "render",
    "encode_example",
    "build_examples",
    "PaddingCollator",
]

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # the label cross-entropy skips
_BUILD_HINT = "build it with `python -m training.sft_data`, or set data_dir in the training config"


@dataclass(frozen=True)
class DatasetStats:
    """What tokenizing one split did."""

    rows: int
    kept: int
    truncated: int  # system message shortened to fit max_seq_length
    dropped: int  # did not fit even without the articles, or had no reply tokens
    tokens: int  # tokens in the kept examples
    reply_tokens: int  # tokens that carry loss

    def describe(self, name: str) -> str:
        return (f"{name}: {self.kept} of {self.rows} examples ({self.truncated} with a shortened system message, "
                f"{self.dropped} dropped as too long), {self.tokens:,} tokens of which {self.reply_tokens:,} are "
                "reply tokens")


def split_path(data_dir: Path | str | None, name: str) -> Path:
    """The file of one split: ``<data_dir>/<name>.jsonl.gz`` (or an uncompressed ``.jsonl``)."""
    folder = Path(data_dir).expanduser() if data_dir else SFT_DIR
    gz = folder / f"{name}.jsonl.gz"
    plain = folder / f"{name}.jsonl"
    return plain if plain.is_file() and not gz.is_file() else gz


def load_split(data_dir: Path | str | None, name: str, *, limit: int | None = None) -> list[dict]:
    """The rows of one SFT split, checked to end with an assistant reply.

    Raises:
        TrainingError: The file is missing, not JSON lines, or a row has no usable ``messages``.
    """
    path = split_path(data_dir, name)
    if not path.is_file():
        raise TrainingError(f"no SFT {name} split at {path}: {_BUILD_HINT}")
    try:
        rows = read_jsonl(path)
    except DatasetError as error:
        raise TrainingError(str(error)) from None
    for number, row in enumerate(rows, start=1):
        messages = row.get("messages")
        if (not isinstance(messages, list) or len(messages) < 2
                or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
                or messages[-1].get("role") != "assistant"):
            raise TrainingError(f"{path}:{number}: 'messages' must be a list of role/content turns ending with the "
                                "assistant reply")
    if not rows:
        raise TrainingError(f"{path} holds no examples: {_BUILD_HINT}")
    return rows[:limit] if limit else rows


def data_fingerprint(paths: Sequence[Path]) -> dict[str, str]:
    """``{file name: sha256}`` of the data a run trained and evaluated on (for the model card)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def ensure_chat_template(tokenizer: "PreTrainedTokenizerBase", *, model: str, policy: str) -> bool:
    """Check that the tokenizer can render chats; returns True when the fallback template was put in.

    Args:
        tokenizer: The base model's tokenizer.
        model: The model name, for the message.
        policy: ``"model"`` refuses a tokenizer without a template; ``"fallback"`` installs
            :data:`llm.loading.FALLBACK_CHAT_TEMPLATE`, the one inference uses for such a model.

    Raises:
        TrainingError: No chat template and ``policy == "model"``.
    """
    if getattr(tokenizer, "chat_template", None):
        return False
    if policy != "fallback":
        raise TrainingError(
            f"the tokenizer of {model} has no chat template: train an instruct model that ships one, or set "
            "chat_template: fallback in the config to use itbot's plain 'Role: text' template (inference uses the "
            "same one for this model)"
        )
    log.warning("the tokenizer of %s has no chat template: training with the plain 'Role: text' template", model)
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return True


def render(tokenizer: "PreTrainedTokenizerBase", messages: list[dict[str, str]]) -> tuple[str, str]:
    """``(prompt, full)`` texts: the conversation up to the generation prompt, and with the reply.

    Raises:
        TrainingError: The chat template cannot render the conversation, even with the system prompt folded.
    """

    def both(turns: list[dict[str, str]]) -> tuple[str, str]:
        prompt = tokenizer.apply_chat_template(turns[:-1], tokenize=False, add_generation_prompt=True)
        return prompt, tokenizer.apply_chat_template(turns, tokenize=False)

    try:
        return both(messages)
    except Exception as error:  # noqa: BLE001 - jinja's TemplateError ("roles must alternate", "no system role")
        if messages[0]["role"] != "system":
            raise TrainingError(f"the chat template cannot render a training example ({_first_line(error)})") \
                from None
    try:
        return both(fold_system(messages))
    except Exception as error:  # noqa: BLE001
        raise TrainingError(f"the chat template cannot render a training example, even with the system prompt in "
                            f"the user turn ({_first_line(error)})") from None


def _tokenize(tokenizer: "PreTrainedTokenizerBase", prompt: str, full: str, reply: str) -> tuple[list[int], list[int]]:
    """Token ids of ``full`` and labels that keep only the reply (and what follows it: the end-of-turn token)."""
    if full.startswith(prompt):
        start = len(prompt)
    else:  # a template that renders history differently once a reply follows: find the reply itself
        start = full.rfind(reply)
        if start < 0:
            raise TrainingError("the chat template changes the reply text, so its tokens cannot be located for the "
                                "loss mask")
    try:
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        labels = [token if begin >= start else IGNORE_INDEX
                  for token, (begin, _end) in zip(ids, encoded["offset_mapping"])]
    except NotImplementedError:  # slow (Python) tokenizers have no offsets: count the prompt's tokens instead
        ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
        boundary = len(tokenizer(full[:start], add_special_tokens=False)["input_ids"])
        labels = [IGNORE_INDEX] * boundary + ids[boundary:]
    return ids, labels


def encode_example(tokenizer: "PreTrainedTokenizerBase", messages: list[dict[str, str]], *,
                   max_seq_length: int) -> tuple[dict[str, list[int]] | None, bool]:
    """Token ids, attention mask and labels of one chat, fitted into ``max_seq_length``.

    Returns:
        ``(example, truncated)``: ``example`` is ``None`` when the chat does not fit even with the system
        message cut to nothing, or has no reply tokens; ``truncated`` says the system message was shortened.
    """
    reply = messages[-1]["content"]
    ids, labels = _tokenize(tokenizer, *render(tokenizer, messages), reply)
    truncated = False
    if len(ids) > max_seq_length and messages[0]["role"] == "system":
        system_ids = tokenizer(messages[0]["content"], add_special_tokens=False)["input_ids"]
        keep = len(system_ids)
        for _ in range(6):  # decoding and re-encoding a cut text can shift a token or two
            keep -= len(ids) - max_seq_length + (0 if keep == len(system_ids) else 4)
            if keep <= 0:
                break
            shortened = [{**messages[0], "content": tokenizer.decode(system_ids[:keep]).rstrip()}, *messages[1:]]
            ids, labels = _tokenize(tokenizer, *render(tokenizer, shortened), reply)
            truncated = True
            if len(ids) <= max_seq_length:
                break
    if len(ids) > max_seq_length or all(label == IGNORE_INDEX for label in labels):
        return None, truncated
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}, truncated


def build_examples(rows: Sequence[dict], tokenizer: "PreTrainedTokenizerBase", *,
                   max_seq_length: int) -> tuple[list[dict[str, list[int]]], DatasetStats]:
    """Encode every row; rows that cannot fit are dropped and counted."""
    examples, truncated, dropped = [], 0, 0
    for row in rows:
        example, was_truncated = encode_example(tokenizer, row["messages"], max_seq_length=max_seq_length)
        truncated += was_truncated and example is not None
        if example is None:
            dropped += 1
        else:
            examples.append(example)
    tokens = sum(len(e["input_ids"]) for e in examples)
    reply = sum(sum(label != IGNORE_INDEX for label in e["labels"]) for e in examples)
    return examples, DatasetStats(rows=len(rows), kept=len(examples), truncated=truncated, dropped=dropped,
                                  tokens=tokens, reply_tokens=reply)


@dataclass(frozen=True)
class PaddingCollator:
    """Right-pad a batch: ``pad_token_id`` in the ids, 0 in the attention mask, ``-100`` in the labels."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, "torch.Tensor"]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        fill = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        return {key: torch.tensor([list(f[key]) + [value] * (longest - len(f[key])) for f in features],
                                  dtype=torch.long)
                for key, value in fill.items()}


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else error.__class__.__name__

