"""Load a causal language model, optionally quantized, with an optional LoRA adapter.

Pure factories (:func:`quantization_config`, :func:`lora_config`,
:func:`pick_device_and_dtype`) are shared with training so that a model is
quantized and adapted the same way in both. :func:`load_model` is the one
place that calls ``from_pretrained``; every failure becomes a one-line
:class:`~llm.errors.ModelError` naming what is missing and how to fix it.

torch, transformers, peft and bitsandbytes are imported inside functions, so
importing this module costs nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from llm.errors import ModelError
from llm.model_files import missing_model_message

if TYPE_CHECKING:
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "QUANTIZATIONS",
    "FALLBACK_CHAT_TEMPLATE",
    "quantization_config",
    "lora_config",
    "pick_device_and_dtype",
    "load_model",
    "load_tokenizer",
]

log = logging.getLogger(__name__)

QUANTIZATIONS = ("none", "4bit", "8bit")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Used only when a tokenizer ships no chat template at all: plain "Role: text" turns, the
# system prompt first. Generation stops at the next "\nUser:" (a default stop sequence).
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] | trim }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def quantization_config(kind: str, *, compute_dtype: "torch.dtype | None" = None) -> "BitsAndBytesConfig | None":
    """The bitsandbytes config for ``ITBOT_QUANTIZATION``.

    Args:
        kind: ``"4bit"`` (NF4, double quantisation), ``"8bit"`` (LLM.int8) or ``"none"``.
        compute_dtype: Matmul dtype of the 4-bit layers; bfloat16 when not given.

    Returns:
        A ``BitsAndBytesConfig``, or ``None`` for ``"none"``.
    """
    if kind not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {kind!r}: use one of {', '.join(QUANTIZATIONS)}")
    if kind == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype or torch.bfloat16,
    )


def lora_config(
    *,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: Sequence[str] = LORA_TARGETS,
) -> "LoraConfig":
    """The LoRA adapter config for causal-LM fine-tuning (attention and MLP projections)."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                      bias="none", task_type="CAUSAL_LM")


def pick_device_and_dtype() -> "tuple[str, torch.dtype]":
    """CUDA with bfloat16 (float16 on GPUs without it) when a GPU is present, else CPU with float32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return "cpu", torch.float32


def _dtype(name: str | None, default: "torch.dtype") -> "torch.dtype":
    import torch

    if name in (None, "", "auto"):
        return default
    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in choices:
        raise ModelError(f"unknown dtype {name!r}: use auto, {', '.join(choices)}")
    return choices[name]


def load_model(
    model_path: str | Path,
    *,
    quantization: str = "none",
    adapter: str | Path | None = None,
    merge: bool = False,
    dtype: str | None = None,
) -> "tuple[PreTrainedModel, PreTrainedTokenizerBase]":
    """Load model and tokenizer in eval mode, on the GPU when there is one.

    Args:
        model_path: A checkpoint folder or a hub id (see :func:`llm.model_files.resolve_model`).
        quantization: ``"none"``, ``"4bit"`` or ``"8bit"`` (bitsandbytes; 4-bit also runs on CPU).
        adapter: A LoRA adapter folder (``adapter_config.json`` + weights) trained with peft.
        merge: Fold the adapter into the base weights (faster decoding); ignored when quantized.
        dtype: ``"auto"`` (see :func:`pick_device_and_dtype`), ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Raises:
        ModelError: Missing files, an adapter that does not fit the model, or any load failure.
    """
    import torch
    from transformers import AutoModelForCausalLM

    device, default_dtype = pick_device_and_dtype()
    torch_dtype = _dtype(dtype, default_dtype)
    quant = quantization_config(quantization, compute_dtype=torch.bfloat16 if device == "cpu" else torch_dtype)
    adapter_path = _check_adapter(adapter) if adapter else None
    tokenizer = load_tokenizer(str(model_path))
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if device != "cpu":
        kwargs["device_map"] = {"": 0}  # straight onto the GPU, never a full copy in host memory first
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map=kwargs.get("device_map", {"": "cpu"}))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_path), **kwargs)
    except OSError as error:
        raise ModelError(_os_error_message(str(model_path), error)) from None
    except Exception as error:  # noqa: BLE001 - out of memory, unsupported architecture, bad config …
        log.debug("model load failed", exc_info=True)
        raise ModelError(
            f"could not load model {model_path} ({error.__class__.__name__}: {_first_line(error)})"
        ) from None
    if adapter_path is not None:
        if merge and quant is not None:
            log.info("adapter %s is kept separate: a %s-quantized model cannot be merged", adapter_path, quantization)
        model = _apply_adapter(model, adapter_path, merge=merge and quant is None, base=str(model_path))
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    log.info("loaded model %s (quantization %s, adapter %s) on %s", model_path, quantization,
             adapter_path or "none", device)
    return model, tokenizer


def load_tokenizer(model_path: str) -> "PreTrainedTokenizerBase":
    """The model's tokenizer, with a plain chat template when it ships none (see :data:`FALLBACK_CHAT_TEMPLATE`)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except OSError as error:
        raise ModelError(_os_error_message(model_path, error)) from None
    except Exception as error:  # noqa: BLE001 - tokenizer files of an unexpected format
        log.debug("tokenizer load failed", exc_info=True)
        raise ModelError(f"could not load the tokenizer of {model_path} ({error.__class__.__name__})") from None
    if not getattr(tokenizer, "chat_template", None):
        log.warning("the tokenizer of %s has no chat template: using a plain 'Role: text' template", model_path)
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return tokenizer


def _check_adapter(adapter: str | Path) -> Path:
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ModelError(f"no LoRA adapter folder at {path}: set ITBOT_ADAPTER to a folder saved by peft")
    if not (path / "adapter_config.json").is_file():
        raise ModelError(f"{path} has no adapter_config.json: it is not a peft LoRA adapter folder")
    if not any((path / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelError(f"{path} has no adapter_model.safetensors: the adapter was not saved completely")
    return path


def _apply_adapter(model: "PreTrainedModel", path: Path, *, merge: bool, base: str) -> "PreTrainedModel":
    from peft import PeftModel

    try:
        trained_on = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path")
    except (OSError, ValueError):
        raise ModelError(f"{path}/adapter_config.json is not valid JSON") from None
    try:
        adapted = PeftModel.from_pretrained(model, str(path), is_trainable=False)
    except Exception as error:  # noqa: BLE001 - size mismatches (RuntimeError), missing modules (ValueError) …
        log.debug("adapter load failed", exc_info=True)
        raise ModelError(
            f"the LoRA adapter {path} does not fit the model {base} (trained on {trained_on or 'an unknown model'}; "
            f"{error.__class__.__name__}): use the base model it was trained on"
        ) from None
    if trained_on and Path(str(trained_on)).name != Path(base).name:
        log.info("adapter %s was trained on %s and is applied to %s", path, trained_on, base)
    return adapted.merge_and_unload() if merge else adapted


def _os_error_message(model_path: str, error: OSError) -> str:
    text = str(error)
    if Path(model_path).expanduser().is_dir():
        if "config.json" in text:
            return f"{model_path} has no config.json: point ITBOT_MODEL at a Hugging Face model folder"
        return f"{model_path} is missing model files ({_first_line(error)}): copy or download the model again"
    return missing_model_message(model_path)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else error.__class__.__name__
