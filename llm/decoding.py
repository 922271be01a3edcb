"""Greedy decoding with a KV cache, one token at a time, without ``generate()``'s per-token machinery.

The bot always decodes greedily (answers must be reproducible) with a repetition penalty, stop sequences, end-of-turn
tokens and a deadline. ``transformers``' ``generate()`` runs a general pipeline around every token (logits processors,
stopping criteria, input preparation, cache bookkeeping) that costs more than the forward pass of a 135M model on a
CPU: this loop does only what the bot needs, on the same model and weights (with or without a LoRA adapter, quantized
or not), and produces the same tokens as ``generate(do_sample=False, repetition_penalty=...)``.

``bench/llm_bench.py`` measures both on the same prompt (``--decoder generate``).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["greedy_decode"]


def _cache_argument(model: Any) -> str:
    """``cache`` from transformers 5.2x on, ``past_key_values`` before (the old name is deprecated)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _penalise(logits: Any, seen: Any, penalty: float) -> Any:
    """The CTRL repetition penalty on the tokens already in the sequence (as transformers applies it)."""
    import torch

    scores = torch.gather(logits, 1, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(1, seen, scores)


def greedy_decode(
    model: Any,
    input_ids: Any,
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    repetition_penalty: float = 1.0,
    on_token: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    attention_mask: Any = None,
) -> list[int]:
    """Generate up to ``max_new_tokens`` token ids after ``input_ids`` (batch of one), greedily.

    Args:
        model: A causal LM (``PreTrainedModel`` or ``PeftModel``) in eval mode.
        input_ids: The prompt, shape ``(1, n)``.
        max_new_tokens: The most tokens to generate.
        eos_ids: Tokens that end the answer (not returned).
        repetition_penalty: Above 1 discourages tokens already in the prompt or the answer.
        on_token: Called with each new token id as soon as it is chosen.
        should_stop: Polled after each token (a stop sequence was written, the request was cancelled or timed out).
        attention_mask: The prompt's mask (all ones for one unpadded prompt).

    Returns:
        The new token ids, without the end-of-turn token.
    """
    import torch
    from transformers import DynamicCache

    device = input_ids.device
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    seen = input_ids
    name = _cache_argument(model)
    cache = DynamicCache()
    new: list[int] = []
    with torch.inference_mode():
        output = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True, logits_to_keep=1,
                       **{name: cache})
        for _ in range(max_new_tokens):
            logits = output.logits[:, -1, :].float()
            if repetition_penalty != 1.0:
                logits = _penalise(logits, seen, repetition_penalty)
            token = logits.argmax(dim=-1, keepdim=True)
            value = int(token)
            if value in eos_ids:
                break
            new.append(value)
            if on_token is not None:
                on_token(value)
            if should_stop() or len(new) >= max_new_tokens:
                break
            seen = torch.cat([seen, token], dim=1)
            attention_mask = torch.cat([attention_mask, torch.ones((1, 1), dtype=attention_mask.dtype,
                                                                   device=device)], dim=1)
            output = model(input_ids=token, attention_mask=attention_mask, use_cache=True, **{name: cache})
    return new
