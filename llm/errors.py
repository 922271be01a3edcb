"""Errors of the answer engine and model service.

    LLMError
     ├── KnowledgeBaseError   an article or the KB folder is malformed
     ├── DatasetError         a dataset file is missing or malformed
     └── ModelError           model files missing, failed to load or to generate
          └── ModelUnavailable  the model is busy (queue full) or timed out
"""

from __future__ import annotations

__all__ = ["LLMError", "KnowledgeBaseError", "DatasetError", "ModelError", "ModelUnavailable"]


class LLMError(Exception):
    """Base class; messages are one line and safe to show an operator."""


class KnowledgeBaseError(LLMError):
    """The knowledge base cannot be loaded."""


class DatasetError(LLMError):
    """A dataset file is missing or malformed."""


class ModelError(LLMError):
    """The language model is missing, cannot be loaded, or failed."""


class ModelUnavailable(ModelError):
    """The model could not take the request in time (queue full or timeout)."""
