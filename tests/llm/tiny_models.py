"""Tiny real models for the tests: a byte-level BPE tokenizer and random-weight Llama/Mistral checkpoints.

Built in the test run (no download); each loads in well under a second. The
end-of-turn rows of the output layer are zeroed so greedy decoding never
stops early: the timeout and queue tests rely on a generation that keeps going.
A module of its own (not ``conftest``) so that test files can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Like Mistral-7B-Instruct v0.1/v0.2's original template: no system role, roles must alternate.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]"
    "{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>"]


def _sentences() -> list[str]:
    lines = []
    for path in sorted((REPO / "data" / "kb").rglob("*.md"))[:20]:
        lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return lines


def make_tokenizer(*, template: str | None = CHATML, bos: str = "<|im_start|>", eos: str = "<|im_end|>") -> Any:
    """A byte-level BPE tokenizer (any text encodes, no unknown tokens) with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(_sentences(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos,
                                        pad_token="<|endoftext|>")
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def save_tiny_model(folder: Path, *, arch: str = "llama", hidden: int = 64, template: str | None = CHATML,
                    seed: int = 0) -> Path:
    """Save a random-weight causal LM of a real architecture, with its tokenizer, into ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    tokenizer = make_tokenizer(template=template, bos="<s>" if arch == "mistral" else "<|im_start|>",
                               eos="</s>" if arch == "mistral" else "<|im_end|>")
    shape = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                 tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    if arch == "mistral":
        model = MistralForCausalLM(MistralConfig(sliding_window=4096, **shape))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    with torch.no_grad():  # a zero row gives logit 0, below the best random logit: greedy never ends the turn
        for name in SPECIAL:
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(name)] = 0.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_adapter(base: Path, folder: Path, *, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """A LoRA adapter for ``base`` whose B matrices are perturbed (fresh LoRA is a no-op)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from llm.loading import lora_config

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora_config(r=4, target_modules=targets))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    model.save_pretrained(folder)
    return folder
