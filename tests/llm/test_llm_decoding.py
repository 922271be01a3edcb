"""The bot's own greedy decoding loop writes exactly what transformers' generate() writes, token for token."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llm.decoding import greedy_decode
from llm.loading import load_model


@pytest.mark.parametrize("penalty", [1.0, 1.1, 1.3])
def test_greedy_decoding_matches_generate_with_the_same_repetition_penalty(llama_dir: Path, penalty: float):
    model, tokenizer = load_model(llama_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "My VPN drops every few minutes"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        reference = model.generate(**prompt, max_new_tokens=40, do_sample=False, temperature=None, top_p=None,
                                   top_k=None, repetition_penalty=penalty, pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=[], min_new_tokens=40)
    expected = reference[0, prompt["input_ids"].shape[1]:].tolist()

    seen: list[int] = []
    ours = greedy_decode(model, prompt["input_ids"], attention_mask=prompt["attention_mask"], max_new_tokens=40,
                         eos_ids=set(), repetition_penalty=penalty, on_token=seen.append)

    assert ours == expected and seen == ours
    assert len(set(ours)) > 3  # a real sequence, not one token repeated


def test_decoding_ends_at_an_end_of_turn_token_and_when_asked_to_stop(llama_dir: Path):
    model, tokenizer = load_model(llama_dir)
    prompt = tokenizer("reset my password", return_tensors="pt")
    free = greedy_decode(model, prompt["input_ids"], max_new_tokens=12, eos_ids=set())
    assert len(free) == 12

    until_eos = greedy_decode(model, prompt["input_ids"], max_new_tokens=12, eos_ids={free[4]})
    assert until_eos == free[:free.index(free[4])]  # the end-of-turn token itself is not returned

    calls: list[int] = []
    stopped = greedy_decode(model, prompt["input_ids"], max_new_tokens=12, eos_ids=set(), on_token=calls.append,
                            should_stop=lambda: len(calls) >= 3)
    assert stopped == free[:3]
