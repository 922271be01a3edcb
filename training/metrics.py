"""Evaluation metrics: the share of reply tokens the model predicts exactly (token accuracy).

The seed system reported it next to the eval loss (about 96.9% after two
epochs). Only the argmax of the logits is kept between evaluation batches
(:func:`preprocess_logits_for_metrics`), not the full vocabulary-sized logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from training.dataset import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

__all__ = ["token_accuracy", "preprocess_logits_for_metrics", "compute_metrics"]


def token_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Share of labelled positions whose next-token prediction is right.

    Args:
        predictions: ``(batch, length)`` argmax token ids; position ``i`` predicts token ``i + 1``.
        labels: ``(batch, length)`` token ids, ``-100`` where there is no loss (prompt, padding).

    Returns:
        Accuracy in [0, 1]; 0.0 when no position is labelled.
    """
    predicted, target = np.asarray(predictions)[:, :-1], np.asarray(labels)[:, 1:]
    mask = target != IGNORE_INDEX
    if not mask.any():
        return 0.0
    return float((predicted[mask] == target[mask]).mean())


def preprocess_logits_for_metrics(logits: "torch.Tensor | tuple", labels: "torch.Tensor") -> "torch.Tensor":
    """Keep only the predicted token ids of an evaluation batch (Trainer hook)."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def compute_metrics(prediction: Any) -> dict[str, float]:
    """Trainer hook: ``eval_token_accuracy`` from an ``EvalPrediction``."""
    return {"token_accuracy": token_accuracy(prediction.predictions, prediction.label_ids)}
