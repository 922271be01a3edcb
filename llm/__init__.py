"""The model service: loading a causal LM (with its LoRA adapter), generating, and serving it.

The answer engine (:mod:`answers`) decides what to say and hands this package grounded prompts; text safety
(:mod:`answers.redact`) and the error tree (:mod:`llm.errors`) are shared by both.
"""
