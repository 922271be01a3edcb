"""The fine-tuning config: one dataclass, loaded from a YAML or TOML file, checked on construction.

Every field has a ``help`` text (``python -m training --help-config`` prints them)
and a default fit for the embedded model; the committed files in
``training/configs/`` set the rest per base model. Values given on the command
line (``--max-steps``, ``--output-dir``, ``--set key=value``) override the file.
A bad value stops with one line naming the key, e.g.
``config x.yaml: lora_dropout must be in [0, 1), got 1.5``.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from llm.loading import LORA_TARGETS, QUANTIZATIONS
from llm.model_files import EMBEDDED_MODEL
from training.errors import TrainingConfigError

__all__ = [
    "CONFIGS_DIR",
    "DEFAULT_CONFIG",
    "TrainConfig",
    "load_config",
    "config_from_options",
    "resolve_config_path",
    "parse_override",
    "describe_fields",
]

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "smollm2-135m-cpu.yaml"  # the embedded model, on CPU
DTYPES = ("auto", "float32", "bfloat16", "float16")
CHAT_TEMPLATES = ("model", "fallback")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay")


def _help(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": text}, **kwargs)
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass
class TrainConfig:
    """Everything one fine-tuning run depends on; two runs with equal configs and data train the same adapter."""

    # model
    base_model: str = _help("Hugging Face model folder or hub id; the embedded SmolLM2 id resolves to the copy "
                            "`itbot model fetch` made in ITBOT_CACHE_DIR.", EMBEDDED_MODEL)
    quantization: str = _help("none (plain LoRA), 4bit (QLoRA: NF4 weights, k-bit preparation) or 8bit.", "none")
    dtype: str = _help("Weights and compute dtype: auto (bfloat16/float16 on a GPU, float32 on CPU), float32, "
                       "bfloat16, float16.", "auto")
    chat_template: str = _help("model: render with the tokenizer's chat template and refuse a tokenizer without one; "
                               "fallback: use llm.loading's plain 'Role: text' template when it has none (the "
                               "template inference falls back to, so the formats still match).", "model")
    # adapter
    lora_r: int = _help("LoRA rank.", 16)
    lora_alpha: int = _help("LoRA scaling numerator (the update is scaled by alpha / r).", 32)
    lora_dropout: float = _help("Dropout on the LoRA input, in [0, 1).", 0.05)
    lora_target_modules: list[str] = _help("Module names that get LoRA (attention and MLP projections).",
                                           list(LORA_TARGETS))
    # optimisation
    learning_rate: float = _help("Peak learning rate.", 2e-4)
    lr_scheduler_type: str = _help(f"Learning-rate schedule: {', '.join(SCHEDULERS)}.", "cosine")
    warmup_ratio: float = _help("Share of the steps spent warming the learning rate up, in [0, 1).", 0.03)
    weight_decay: float = _help("AdamW weight decay.", 0.0)
    max_grad_norm: float = _help("Gradient clipping norm (0 turns clipping off).", 1.0)
    num_train_epochs: float = _help("Passes over the training split.", 2.0)
    max_steps: int = _help("Stop after this many optimizer steps (-1: run num_train_epochs); for smoke runs.", -1)
    per_device_train_batch_size: int = _help("Examples per forward pass.", 1)
    per_device_eval_batch_size: int = _help("Examples per forward pass during evaluation.", 1)
    gradient_accumulation_steps: int = _help("Forward passes per optimizer step (effective batch = batch size "
                                             "times this).", 8)
    gradient_checkpointing: bool = _help("Recompute activations in the backward pass: much less memory, about "
                                         "20-30% slower. Needed for a 7B model on 16 GB.", False)
    group_by_length: bool = _help("Batch examples of similar length together (less padding when batch size > 1).",
                                  False)
    # data
    data_dir: typing.Optional[str] = _help("Folder with the SFT splits train.jsonl.gz and validation.jsonl.gz "
                                           "(default: data/sft, built by `python -m training.sft_data`).", None)
    max_seq_length: int = _help("Tokens per example; longer examples lose the end of their system message "
                                "(knowledge-base articles) and are dropped when the reply alone does not fit.", 2048)
    max_train_examples: typing.Optional[int] = _help("Use only the first N training examples (smoke runs).", None)
    max_eval_examples: typing.Optional[int] = _help("Validation examples the periodic evaluations use (the first N; "
                                                    "default: all). The final evaluation always uses all.", None)
    # run
    output_dir: str = _help("Run folder: checkpoint-N/ checkpoints, tensorboard/ logs, adapter/ the final "
                            "adapter with its model card.", "runs/smollm2-135m-lora")
    logging_steps: int = _help("Optimizer steps between two loss / learning-rate / grad-norm logs.", 10)
    eval_steps: int = _help("Optimizer steps between two evaluations on the validation split (0: only the final "
                            "one).", 100)
    save_steps: int = _help("Optimizer steps between two checkpoints (resume starts from the last one).", 100)
    save_total_limit: int = _help("Checkpoints kept (older ones are deleted).", 2)
    final_eval: bool = _help("Evaluate on the whole validation split after training (loss and token accuracy).",
                             True)
    seed: int = _help("Seed for LoRA initialisation, dropout and data order.", 42)

    def __post_init__(self) -> None:
        _check(self.quantization in QUANTIZATIONS, "quantization", f"must be one of {', '.join(QUANTIZATIONS)}",
               self.quantization)
        _check(self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}", self.dtype)
        _check(self.chat_template in CHAT_TEMPLATES, "chat_template", f"must be one of {', '.join(CHAT_TEMPLATES)}",
               self.chat_template)
        _check(bool(self.base_model.strip()), "base_model", "must name a model folder or hub id", self.base_model)
        _check(self.lora_r >= 1, "lora_r", "must be at least 1", self.lora_r)
        _check(self.lora_alpha >= 1, "lora_alpha", "must be at least 1", self.lora_alpha)
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)", self.lora_dropout)
        _check(bool(self.lora_target_modules) and all(isinstance(m, str) and m for m in self.lora_target_modules),
               "lora_target_modules", "must be a non-empty list of module names", self.lora_target_modules)
        _check(0 < self.learning_rate < 1, "learning_rate", "must be in (0, 1)", self.learning_rate)
        _check(self.lr_scheduler_type in SCHEDULERS, "lr_scheduler_type", f"must be one of {', '.join(SCHEDULERS)}",
               self.lr_scheduler_type)
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)", self.warmup_ratio)
        _check(self.weight_decay >= 0, "weight_decay", "must not be negative", self.weight_decay)
        _check(self.max_grad_norm >= 0, "max_grad_norm", "must not be negative", self.max_grad_norm)
        _check(self.num_train_epochs > 0, "num_train_epochs", "must be positive", self.num_train_epochs)
        _check(self.max_steps == -1 or self.max_steps >= 1, "max_steps", "must be -1 (all epochs) or at least 1",
               self.max_steps)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                     "logging_steps", "save_steps", "save_total_limit"):
            _check(getattr(self, name) >= 1, name, "must be at least 1", getattr(self, name))
        _check(self.eval_steps >= 0, "eval_steps", "must be 0 (final evaluation only) or more", self.eval_steps)
        _check(self.max_seq_length >= 32, "max_seq_length", "must be at least 32 tokens", self.max_seq_length)
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, "must be at least 1 (or left out for all)", value)
        _check(bool(self.output_dir.strip()), "output_dir", "must name a folder", self.output_dir)
        _check(self.seed >= 0, "seed", "must not be negative", self.seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, in field order (for the model card and the run record)."""
        return dataclasses.asdict(self)

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise TrainingConfigError(f"{name} {rule}, got {value!r}")


def describe_fields() -> list[tuple[str, str, Any]]:
    """``(name, help, default)`` for every field, for ``--help-config``."""
    defaults = TrainConfig()
    return [(f.name, f.metadata["help"], getattr(defaults, f.name)) for f in dataclasses.fields(TrainConfig)]


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config file path, or the name of a committed config (``mistral-7b-qlora``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for candidate in (CONFIGS_DIR / path.name, CONFIGS_DIR / f"{path.name}.yaml"):
        if not path.parent.parts and candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
    raise TrainingConfigError(f"no training config at {path}: give a YAML/TOML file or one of {known}")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config, apply overrides, validate.

    Args:
        path: A config file or the name of a committed config; ``None`` uses the defaults alone.
        overrides: ``{field: value}`` applied on top of the file (values may be strings, as typed on a command line).

    Raises:
        TrainingConfigError: Unreadable file, unknown key, a value of the wrong type or out of range.
    """
    values: dict[str, Any] = {}
    where = "config"
    if path is not None:
        file = resolve_config_path(path)
        where = f"config {file}"
        values = _read(file)
    try:
        values.update(overrides or {})
        return TrainConfig(**_coerce_all(values))
    except TrainingConfigError as error:
        raise TrainingConfigError(f"{where}: {error}") from None


def _read(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise TrainingConfigError(f"cannot read {file} ({error.strerror or error.__class__.__name__})") from None
    try:
        if file.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 - yaml.YAMLError, tomllib.TOMLDecodeError
        first = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise TrainingConfigError(f"{file} is not valid {'TOML' if file.suffix == '.toml' else 'YAML'} ({first})") \
            from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainingConfigError(f"{file} must hold a mapping of settings, not a {type(data).__name__}")
    return dict(data)


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    out = {}
    for key, value in values.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TrainingConfigError(f"unknown key {key!r}{hint}")
        out[key] = _coerce(key, value, hints[key])
    return out


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Turn a YAML/TOML or command-line value into the field's type (PyYAML reads ``2e-4`` as a string)."""
    optional = typing.get_origin(kind) is typing.Union and type(None) in typing.get_args(kind)
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
                return value.strip().lower() in ("true", "yes", "1")
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if typing.get_origin(kind) is list:
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return [str(item) for item in value]
    except (TypeError, ValueError):
        label = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        raise TrainingConfigError(f"{name} must be {_article(label)}, got {value!r}") from None
    return value  # pragma: no cover - every field type is handled above


def _article(label: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
        label, "a list of names")


def parse_override(text: str) -> tuple[str, str]:
    """``key=value`` from ``--set`` into a pair (the value is coerced with the file's values)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise TrainingConfigError(f"--set {text!r}: use key=value, e.g. --set learning_rate=1e-4")
    return key.strip(), value.strip()


def config_from_options(
    path: str | Path | None,
    *,
    max_steps: int | None = None,
    output_dir: str | Path | None = None,
    sets: Sequence[str] = (),
) -> TrainConfig:
    """The config of a command line: the file (default: the embedded model's), then ``--set``, then the flags."""
    overrides: dict[str, Any] = dict(parse_override(text) for text in sets)
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    return load_config(path if path is not None else DEFAULT_CONFIG, overrides)
