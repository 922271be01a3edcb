"""A training progress bar with the latest loss, learning rate and ETA, and log lines for the record.

Replaces the Trainer's own bar and printer: on a terminal a tqdm bar shows
steps, elapsed time, ETA and the last loss; without one (CI, ``nohup``), every
logging step becomes a log line instead. Evaluation results are always logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from transformers import TrainerCallback

__all__ = ["ProgressCallback"]

log = logging.getLogger("training")


class ProgressCallback(TrainerCallback):
    """tqdm bar with ``loss`` and ``lr`` on a terminal; log lines otherwise."""

    def __init__(self, *, bar: bool | None = None) -> None:
        self.bar_enabled = sys.stderr.isatty() if bar is None else bar
        self.bar: Any = None
        self.eval_bar: Any = None
        self.step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step
        if self.bar_enabled and state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step",
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.step)
        self.step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs or not state.is_world_process_zero:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs.get('learning_rate', 0.0):.2e}",
                                 refresh=False)
        else:
            log.info("step %d/%d: loss %.4f, learning rate %.2e, grad norm %.3f", state.global_step, state.max_steps,
                     logs["loss"], logs.get("learning_rate", 0.0), logs.get("grad_norm", float("nan")))

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not self.bar_enabled or not state.is_world_process_zero:
            return
        if self.eval_bar is None and eval_dataloader is not None and hasattr(eval_dataloader, "__len__"):
            from tqdm.auto import tqdm

            self.eval_bar = tqdm(total=len(eval_dataloader), desc="evaluating", unit="batch", leave=False,
                                 dynamic_ncols=True)
        if self.eval_bar is not None:
            self.eval_bar.update(1)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.eval_bar is not None:
            self.eval_bar.close()
            self.eval_bar = None
        metrics = metrics or {}
        if state.is_world_process_zero and "eval_loss" in metrics:
            line = (f"evaluation at step {state.global_step}: loss {metrics['eval_loss']:.4f}, token accuracy "
                    f"{metrics.get('eval_token_accuracy', float('nan')):.4f}")
            if self.bar is not None:
                self.bar.write(line)
            else:
                log.info("%s", line)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
