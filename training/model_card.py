"""The adapter's model card: ``README.md`` (for people) and ``training.json`` (for tools) beside the weights.

Both say what the adapter was trained from (base model, the SHA-256 of every
data file), how (the full config, library versions) and how well (the final
metrics), so a run can be traced and repeated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.dataset import DatasetStats

__all__ = ["RunRecord", "write_model_card", "render_model_card"]

CARD_METRICS = (
    ("eval_loss", "eval loss (validation split)", "{:.4f}"),
    ("eval_token_accuracy", "eval token accuracy (reply tokens)", "{:.2%}"),
    ("train_loss", "mean training loss", "{:.4f}"),
    ("global_step", "optimizer steps", "{:d}"),
    ("epoch", "epochs", "{:.2f}"),
    ("train_runtime", "training time (s)", "{:.0f}"),
    ("train_tokens_per_second", "training tokens per second", "{:.0f}"),
)


@dataclass(frozen=True)
class RunRecord:
    """Everything the card states about one run."""

    config: TrainConfig
    base_model_path: str
    data_sha256: dict[str, str]
    stats: dict[str, DatasetStats]
    metrics: dict[str, Any]
    fallback_template: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "base_model": self.config.base_model,
            "base_model_path": self.base_model_path,
            "data_sha256": self.data_sha256,
            "data": {name: asdict(stats) for name, stats in self.stats.items()},
            "metrics": self.metrics,
            "chat_template": "itbot fallback" if self.fallback_template else "model",
            "versions": _versions(),
            "config": self.config.to_dict(),
        }


def _versions() -> dict[str, str]:
    found = {}
    for package in ("torch", "transformers", "peft", "bitsandbytes", "itbot"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def render_model_card(record: RunRecord, *, adapter_dir: Path) -> str:
    """The Markdown card, with Hugging Face front matter."""
    import yaml

    config = record.config
    tags = ["lora", "qlora" if config.quantization != "none" else "peft", "itbot", "it-helpdesk"]
    rows = []
    for key, label, fmt in CARD_METRICS:
        if key in record.metrics and record.metrics[key] is not None:
            value = record.metrics[key]
            rows.append(f"| {label} | {fmt.format(int(value) if fmt == '{:d}' else value)} |")
    data_rows = []
    for name, stats in record.stats.items():
        file = next((f for f in record.data_sha256 if f.startswith(f"{name}.")), "")
        data_rows.append(f"| {name} | `{file}` | {stats.kept} of {stats.rows} | {stats.truncated} | {stats.dropped} | "
                         f"{stats.tokens:,} | `{record.data_sha256.get(file, '')}` |")
    quant = "" if config.quantization == "none" else f" ITBOT_QUANTIZATION={config.quantization}"
    template = ("itbot's plain 'Role: text' fallback template (the tokenizer has none)" if record.fallback_template
                else "the base model's own chat template")
    versions = ", ".join(f"{name} {version}" for name, version in _versions().items())
    lines = [
        "---",
        yaml.safe_dump({"library_name": "peft", "base_model": config.base_model, "tags": tags},
                       sort_keys=False).strip(),
        "---",
        "",
        f"# itbot LoRA adapter for {config.base_model}",
        "",
        "Trained by `itbot train` on itbot's supervised fine-tuning set: IT-helpdesk questions with replies grounded "
        "in the knowledge-base articles of the system prompt. The loss covers only the assistant's reply; the prompt "
        f"was rendered with {template}, as the bot prompts at inference.",
        "",
        "## Use",
        "",
        "```bash",
        f"ITBOT_MODEL={config.base_model} ITBOT_ADAPTER={adapter_dir}{quant} itbot chat --mode llm",
        "```",
        "",
        "## Results",
        "",
        "| metric | value |",
        "|---|---|",
        *rows,
        "",
        "## Data",
        "",
        "| split | file | examples kept | system message shortened | dropped (too long) | tokens | sha256 |",
        "|---|---|---|---|---|---|---|",
        *data_rows,
        "",
        f"Base model files: `{record.base_model_path}`. Libraries: {versions}.",
        "",
        "## Training config",
        "",
        "```yaml",
        yaml.safe_dump(config.to_dict(), sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(adapter_dir: Path, record: RunRecord) -> Path:
    """Write ``README.md`` and ``training.json`` into the adapter folder (replacing peft's stub card)."""
    adapter_dir.mkdir(parents=True, exist_ok=True)
    (adapter_dir / "training.json").write_text(json.dumps(record.as_json(), indent=2, default=str) + "\n",
                                              encoding="utf-8")
    card = adapter_dir / "README.md"
    card.write_text(render_model_card(record, adapter_dir=adapter_dir), encoding="utf-8")
    return card
