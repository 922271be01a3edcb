"""Errors of the fine-tuning pipeline; messages are one line, meant for the person running it.

    LLMError (llm.errors)
     └── TrainingError          missing dataset, unusable model or template, out of memory
          └── TrainingConfigError   a config file or override is missing or malformed
"""

from __future__ import annotations

from llm.errors import LLMError

__all__ = ["TrainingError", "TrainingConfigError"]


class TrainingError(LLMError):
    """Training cannot start or cannot go on; the message says how to fix it."""


class TrainingConfigError(TrainingError):
    """A training config value is missing or malformed (the command line exits with code 2)."""
