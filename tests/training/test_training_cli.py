"""``itbot train`` through the real entry point, in a subprocess."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_itbot
from tests.training.conftest import TINY_SETTINGS


def _write_config(path: Path, **values) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def test_itbot_train_runs_a_smoke_run_and_prints_the_adapter_folder(tmp_path, tiny_llama, tiny_data):
    config = _write_config(tmp_path / "tiny.yaml", **{**TINY_SETTINGS, "base_model": str(tiny_llama),
                                                      "data_dir": str(tiny_data), "output_dir": "runs/tiny"})
    result = run_itbot("train", "--config", str(config), "--max-steps", "2", "--set", "lora_r=4", cwd=tmp_path,
                       timeout=300)
    assert result.returncode == 0, result.stderr
    adapter = Path(result.stdout.strip().splitlines()[-1])
    assert adapter == Path("runs/tiny/adapter")
    assert (tmp_path / adapter / "adapter_model.safetensors").is_file()
    assert (tmp_path / "runs/tiny/checkpoint-2/trainer_state.json").is_file()
    assert "step 2/2: loss" in result.stderr and f"ITBOT_ADAPTER={adapter}" in result.stderr
    assert '"r": 4' in (tmp_path / adapter / "adapter_config.json").read_text(encoding="utf-8")


def test_a_missing_dataset_is_one_line_and_exit_1(tmp_path, tiny_llama):
    config = _write_config(tmp_path / "tiny.yaml", base_model=str(tiny_llama), data_dir=str(tmp_path / "nowhere"))
    result = run_itbot("train", "--config", str(config), cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"itbot: no SFT train split at {tmp_path / 'nowhere' / 'train.jsonl.gz'}: build it with "
                     "`python -m training.sft_data`, or set data_dir in the training config"]


def test_a_bad_config_value_is_one_line_and_exit_2(tmp_path):
    result = run_itbot("train", "--config", "smollm2-135m-cpu", "--set", "learning_rate=fast", cwd=tmp_path,
                       timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "learning_rate must be a number, got 'fast'" in lines[0]
