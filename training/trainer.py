"""One fine-tuning run: SFT splits in, a LoRA adapter with its model card out.

:func:`train` is what ``itbot train`` and ``python -m training`` call. It reads
and tokenizes the data first (a missing file or an unusable chat template fails
in seconds, before the weights load), loads the base model through
:func:`llm.loading.load_model` (the loader inference uses, so quantization is
the same), prepares it for k-bit training when quantized (QLoRA), puts the
LoRA adapter from :func:`llm.loading.lora_config` on it and hands it to the
transformers ``Trainer``: checkpoints every ``save_steps`` into
``<output_dir>/checkpoint-N/``, TensorBoard logs in ``<output_dir>/tensorboard/``
(train and eval loss, eval token accuracy, learning rate, grad norm), the final
adapter in ``<output_dir>/adapter/``.

A run in a folder that already holds checkpoints resumes from the last one
(optimizer, scheduler, data order and step count included), after checking
that the folder's run used the same base model, adapter shape and data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from llm.errors import ModelError
from llm.loading import load_model, lora_config, pick_device_and_dtype
from llm.model_files import missing_model_message, resolve_model
from training.config import TrainConfig
from training.dataset import (
    DatasetStats,
    PaddingCollator,
    build_examples,
    data_fingerprint,
    ensure_chat_template,
    load_split,
    split_path,
)
from training.errors import TrainingError
from training.model_card import RunRecord, write_model_card

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainingArguments

__all__ = ["TrainResult", "train", "last_checkpoint", "ADAPTER_DIRNAME", "TENSORBOARD_DIRNAME", "RUN_RECORD"]

log = logging.getLogger("training")

ADAPTER_DIRNAME = "adapter"
TENSORBOARD_DIRNAME = "tensorboard"
RUN_RECORD = "itbot-run.json"  # which base model, adapter shape and data the checkpoints in a folder belong to
_SAME_RUN_KEYS = ("base_model", "quantization", "lora_r", "lora_alpha", "lora_target_modules", "max_seq_length")


@dataclass
class TrainResult:
    """What a run produced."""

    output_dir: Path
    adapter_dir: Path
    global_step: int
    resumed_from: Path | None
    metrics: dict[str, Any]
    stats: dict[str, DatasetStats]
    log_history: list[dict[str, Any]] = field(repr=False)
    model: Any = field(default=None, repr=False)  # the trained PeftModel, for callers that inspect weights

    def losses(self) -> list[float]:
        """Training loss at every logging step, in order."""
        return [entry["loss"] for entry in self.log_history if "loss" in entry]


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder in ``output_dir`` (the Trainer writes its state file last)."""
    if not output_dir.is_dir():
        return None
    steps = [(int(match.group(1)), path) for path in output_dir.iterdir()
             if (match := re.fullmatch(r"checkpoint-(\d+)", path.name)) and (path / "trainer_state.json").is_file()]
    return max(steps)[1] if steps else None


def train(config: TrainConfig, *, cache_dir: Path | None = None, resume: bool | None = None,
          progress_bar: bool | None = None) -> TrainResult:
    """Fine-tune a LoRA adapter on the SFT splits as ``config`` says.

    Args:
        config: The run's settings (see :class:`training.config.TrainConfig`).
        cache_dir: ``ITBOT_CACHE_DIR``, where ``itbot model fetch`` put the embedded model.
        resume: ``None`` resumes from the last checkpoint in ``output_dir`` when there is one; ``True``
            requires one; ``False`` deletes the folder's checkpoints and starts over.
        progress_bar: Show a tqdm bar (default: when standard error is a terminal).

    Raises:
        TrainingError: Missing data, unusable model or chat template, a folder of another run, out of memory.
        ModelError: The base model cannot be found or loaded.
    """
    output_dir = Path(config.output_dir).expanduser()

    # data files first: a missing split fails in a second, before any weights load
    evaluate = config.final_eval or config.eval_steps > 0
    train_rows = load_split(config.data_dir, "train", limit=config.max_train_examples)
    eval_rows = load_split(config.data_dir, "validation") if evaluate else []
    files = [split_path(config.data_dir, "train")] + ([split_path(config.data_dir, "validation")] if evaluate else [])
    data_sha256 = data_fingerprint(files)

    # tokenizer and chat template, then the examples with the prompt masked
    model_path = resolve_model(config.base_model, cache_dir=cache_dir)
    tokenizer = _load_tokenizer(model_path, name=config.base_model)
    fallback_template = ensure_chat_template(tokenizer, model=config.base_model, policy=config.chat_template)
    stats: dict[str, DatasetStats] = {}
    train_examples, stats["train"] = build_examples(train_rows, tokenizer, max_seq_length=config.max_seq_length)
    log.info("%s", stats["train"].describe("train"))
    if not train_examples:
        raise TrainingError(f"no training example fits in max_seq_length={config.max_seq_length} tokens: raise it")
    eval_examples: list[dict] = []
    if eval_rows:
        eval_examples, stats["validation"] = build_examples(eval_rows, tokenizer, max_seq_length=config.max_seq_length)
        log.info("%s", stats["validation"].describe("validation"))

    # the run folder: resume the last checkpoint of the same run, or start over
    checkpoint = _prepare_output_dir(output_dir, config, data_sha256, resume=resume)

    # seed everything (LoRA initialisation, dropout, data order), then the base model (quantized for QLoRA)
    # with the LoRA adapter on top
    from transformers import set_seed

    set_seed(config.seed)
    model = _adapted_model(model_path, config)

    # the Trainer with token accuracy, TensorBoard and the progress bar
    periodic = eval_examples[:config.max_eval_examples] if config.eval_steps > 0 else []
    trainer = _trainer(model, tokenizer, config, output_dir, train_examples, periodic or eval_examples,
                       progress_bar=progress_bar)

    # train (resuming when there is a checkpoint); out of memory becomes one line
    tokens_before = _tokens_seen(checkpoint)
    started = time.perf_counter()
    with _memory_errors(config):
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics: dict[str, Any] = dict(output.metrics)
    runtime = time.perf_counter() - started
    seen = trainer.state.num_input_tokens_seen - tokens_before
    steps_run = trainer.state.global_step - _step_of(checkpoint)
    metrics.update(global_step=trainer.state.global_step, epoch=trainer.state.epoch,
                   train_tokens_per_second=seen / runtime if runtime > 0 and seen > 0 else None,
                   train_seconds_per_step=runtime / max(steps_run, 1))
    log.info("trained %d steps in %.0f s (%.1f s per step, %s tokens per second)", steps_run, runtime,
             metrics["train_seconds_per_step"], f"{seen / runtime:.0f}" if runtime > 0 and seen > 0 else "?")

    # final evaluation on the whole validation split (unless the Trainer just ran that at the last step)
    if config.final_eval and eval_examples:
        done = [entry for entry in trainer.state.log_history
                if "eval_loss" in entry and entry.get("step") == trainer.state.global_step]
        with _memory_errors(config):
            whole = len(periodic) == len(eval_examples)
            metrics.update(done[-1] if done and whole else trainer.evaluate(eval_dataset=eval_examples))

    # the adapter and its model card
    adapter_dir = output_dir / ADAPTER_DIRNAME
    model.save_pretrained(str(adapter_dir))
    record = RunRecord(config=config, base_model_path=model_path, data_sha256=data_sha256, stats=stats,
                       metrics=_plain(metrics), fallback_template=fallback_template)
    write_model_card(adapter_dir, record)
    log.info("adapter saved in %s (step %d%s)", adapter_dir, trainer.state.global_step,
             f", eval loss {metrics['eval_loss']:.4f}" if "eval_loss" in metrics else "")
    return TrainResult(output_dir=output_dir, adapter_dir=adapter_dir, global_step=trainer.state.global_step,
                       resumed_from=checkpoint, metrics=record.metrics, stats=stats,
                       log_history=list(trainer.state.log_history), model=model)


def _load_tokenizer(model_path: str, *, name: str) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except OSError:
        if Path(model_path).is_dir():
            raise ModelError(f"{model_path} has no tokenizer files: copy or download the model again") from None
        raise ModelError(missing_model_message(name)) from None
    except Exception as error:  # noqa: BLE001 - tokenizer files of an unexpected format
        raise ModelError(f"could not load the tokenizer of {model_path} ({error.__class__.__name__})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _prepare_output_dir(output_dir: Path, config: TrainConfig, data_sha256: dict[str, str], *,
                        resume: bool | None) -> Path | None:
    """Pick the checkpoint to resume from (or clear old ones) and record which run the folder holds."""
    record_path = output_dir / RUN_RECORD
    checkpoint = last_checkpoint(output_dir)
    if resume is True and checkpoint is None:
        raise TrainingError(f"no checkpoint in {output_dir} to resume from: run without --resume to start")
    if checkpoint is not None and resume is False:
        old = sorted(path for path in output_dir.glob("checkpoint-*") if path.is_dir())
        log.info("starting over: deleting %d old checkpoint(s) in %s", len(old), output_dir)
        for folder in old:
            shutil.rmtree(folder)
        checkpoint = None
    train_file = split_path(config.data_dir, "train").name
    current = {**{key: getattr(config, key) for key in _SAME_RUN_KEYS}, "train_sha256": data_sha256[train_file]}
    if checkpoint is not None:
        try:
            previous = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        changed = [key for key in current if key in previous and previous[key] != current[key]]
        if changed:
            raise TrainingError(f"{output_dir} holds checkpoints of another run ({', '.join(changed)} differ): "
                                "choose another output_dir, or pass --no-resume to start over there")
        log.info("resuming from %s", checkpoint)
    output_dir.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return checkpoint


def _torch_dtype(name: str) -> "torch.dtype":
    import torch

    _device, default = pick_device_and_dtype()
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(name, default)


def cpu_autocast(config: TrainConfig) -> bool:
    """True when ``dtype: bfloat16`` trains on a CPU: bfloat16 autocast over float32 weights.

    Raises:
        TrainingError: The CPU has no bfloat16 instructions (AVX512-BF16 or AMX), where autocast would be slower
            than float32.
    """
    import torch

    device, _default = pick_device_and_dtype()
    if device != "cpu" or config.dtype != "bfloat16":
        return False
    supported = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    if not supported:
        raise TrainingError("dtype bfloat16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX); "
                            "use --set dtype=float32")
    return True


def _adapted_model(model_path: str, config: TrainConfig) -> "PreTrainedModel":
    """The base model in training mode, k-bit prepared when quantized, with fresh LoRA layers."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    # bfloat16 on a CPU is mixed precision: float32 weights (and LoRA updates), bfloat16 autocast for the compute.
    dtype = "float32" if cpu_autocast(config) else config.dtype
    model, _tokenizer = load_model(model_path, quantization=config.quantization, dtype=dtype)
    model.config.use_cache = False  # the KV cache is useless in training and clashes with checkpointing
    checkpointing = {"use_reentrant": False}
    if config.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=checkpointing)
    elif config.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 renamed it
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=checkpointing)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
        model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need a grad path
    model.train()
    adapter = lora_config(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                          target_modules=config.lora_target_modules)
    try:
        model = get_peft_model(model, adapter)
    except ValueError as error:  # target modules the architecture does not have
        raise TrainingError(f"lora_target_modules {config.lora_target_modules} do not fit {config.base_model} "
                            f"({str(error).splitlines()[0][:160]})") from None
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA r=%d on %s: %s trainable parameters of %s (%.2f%%), quantization %s", config.lora_r,
             ", ".join(config.lora_target_modules), f"{trainable:,}", f"{total:,}", 100 * trainable / total,
             config.quantization)
    return model


def training_arguments(config: TrainConfig, output_dir: Path, *, has_eval: bool) -> "TrainingArguments":
    """The Trainer's arguments for ``config`` (mixed precision on a GPU, checkpoints, evaluation schedule)."""
    import torch
    from transformers import TrainingArguments

    device, _default = pick_device_and_dtype()
    dtype = _torch_dtype(config.dtype)
    periodic_eval = has_eval and config.eval_steps > 0
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        bf16=dtype == torch.bfloat16 and (device == "cuda" or cpu_autocast(config)),
        fp16=dtype == torch.float16 and device == "cuda",
        use_cpu=device == "cpu",
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if periodic_eval else "no",
        eval_steps=config.eval_steps if periodic_eval else None,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,  # the collator already returns only model inputs
        label_names=["labels"],
        report_to="none",  # TensorBoard is added as a callback, to log into <output_dir>/tensorboard
        disable_tqdm=True,  # training.progress draws the bar
        dataloader_pin_memory=device == "cuda",
    )


def _trainer(model: Any, tokenizer: Any, config: TrainConfig, output_dir: Path, train_examples: list[dict],
             eval_examples: list[dict], *, progress_bar: bool | None) -> Any:
    from transformers import PrinterCallback, Trainer
    from transformers import ProgressCallback as DefaultProgress

    from training.metrics import compute_metrics, preprocess_logits_for_metrics
    from training.progress import ProgressCallback

    has_eval = bool(eval_examples)
    trainer = Trainer(
        model=model,
        args=training_arguments(config, output_dir, has_eval=has_eval),
        data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=train_examples,
        eval_dataset=eval_examples or None,
        processing_class=tokenizer,
        compute_metrics=compute_metrics if has_eval else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if has_eval else None,
        callbacks=[_tensorboard(output_dir / TENSORBOARD_DIRNAME), ProgressCallback(bar=progress_bar)],
    )
    trainer.remove_callback(DefaultProgress)
    trainer.remove_callback(PrinterCallback)
    return trainer


def _tensorboard(log_dir: Path) -> Any:
    try:
        from transformers.integrations import TensorBoardCallback

        callback = TensorBoardCallback()
    except (ImportError, RuntimeError):
        raise TrainingError("tensorboard is not installed: `pip install tensorboard` (itbot's dependencies "
                            "include it; reinstall with `make setup`)") from None
    callback.logging_dir = str(log_dir)  # its constructor takes the folder only from TENSORBOARD_LOGGING_DIR
    return callback


@contextlib.contextmanager
def _memory_errors(config: TrainConfig) -> Iterator[None]:
    """Turn running out of GPU or host memory into one line that says what to lower."""
    import torch

    advice = (f"lower per_device_train_batch_size (now {config.per_device_train_batch_size}; raise "
              f"gradient_accumulation_steps to keep the effective batch) or max_seq_length (now "
              f"{config.max_seq_length})")
    if not config.gradient_checkpointing:
        advice += ", set gradient_checkpointing: true"
    if config.quantization == "none":
        advice += ", or use quantization: 4bit"
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(f"out of GPU memory: {advice}") from None
    except MemoryError:
        raise TrainingError(f"out of memory: {advice}") from None


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint is not None else 0


def _tokens_seen(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return int(state.get("num_input_tokens_seen") or 0)


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in metrics.items()}
