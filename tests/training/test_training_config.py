"""The training config: committed files parse, bad values stop with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import CONFIGS_DIR, DEFAULT_CONFIG, TrainConfig, config_from_options, describe_fields, load_config
from training.errors import TrainingConfigError


def test_the_committed_configs_parse_with_their_intended_setup():
    cpu = load_config(CONFIGS_DIR / "smollm2-135m-cpu.yaml")
    assert cpu.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and cpu.quantization == "none"
    # CPU-sized: one epoch of the ~870 condensed examples, bfloat16 autocast (finishes within 90 minutes on 2 cores)
    assert cpu.dtype == "bfloat16" and cpu.num_train_epochs == 1 and cpu.max_seq_length >= 900
    qlora = load_config("mistral-7b-qlora")  # by name
    assert qlora.quantization == "4bit" and qlora.gradient_checkpointing
    assert "Mistral-7B" in qlora.base_model and qlora.num_train_epochs == 2
    for config in (cpu, qlora):
        assert config.effective_batch_size == 8


def test_the_default_config_is_the_embedded_model_on_cpu():
    assert config_from_options(None) == load_config(DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lora_dropout: 1.5\n", "lora_dropout must be in [0, 1), got 1.5"),
        ("quantization: 3bit\n", "quantization must be one of none, 4bit, 8bit, got '3bit'"),
        ("lora_r: many\n", "lora_r must be an integer, got 'many'"),
        ("lora_rank: 8\n", "unknown key 'lora_rank' (did you mean lora_r?)"),
        ("max_steps: 0\n", "max_steps must be -1 (all epochs) or at least 1, got 0"),
        ("gradient_checkpointing: maybe\n", "gradient_checkpointing must be true or false"),
        ("- a list\n", "must hold a mapping of settings"),
        ("lora_r: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TrainingConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert message.startswith(f"config {path}") or str(path) in message


def test_yaml_exponents_without_a_dot_and_command_line_strings_are_coerced(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 2e-4\nlora_target_modules: [q_proj, v_proj]\n", encoding="utf-8")
    config = config_from_options(path, max_steps=5, output_dir=tmp_path / "out",
                                 sets=["lora_r=4", "gradient_checkpointing=true", "max_eval_examples=none",
                                       "lora_target_modules=q_proj,o_proj"])
    assert config.learning_rate == pytest.approx(2e-4)
    assert (config.lora_r, config.max_steps, config.gradient_checkpointing) == (4, 5, True)
    assert config.max_eval_examples is None and config.lora_target_modules == ["q_proj", "o_proj"]
    assert config.output_dir == str(tmp_path / "out")


def test_toml_configs_work_too(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('base_model = "/models/x"\nquantization = "8bit"\nlora_r = 32\n', encoding="utf-8")
    assert load_config(path) == TrainConfig(base_model="/models/x", quantization="8bit", lora_r=32)


def test_a_missing_config_or_a_malformed_override_is_one_line(tmp_path: Path):
    with pytest.raises(TrainingConfigError, match="no training config at .*nope.yaml: give a YAML/TOML file or one "
                                                  "of mistral-7b-qlora, smollm2-135m-cpu"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(TrainingConfigError, match="use key=value"):
        config_from_options(None, sets=["learning_rate"])


def test_every_field_has_help():
    fields = describe_fields()
    assert len(fields) > 30 and all(text.strip() for _name, text, _default in fields)
