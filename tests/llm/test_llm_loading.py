"""Loading tiny real Llama and Mistral checkpoints through the real loading code."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pytest
import torch

from llm.errors import ModelError
from llm.loading import FALLBACK_CHAT_TEMPLATE, load_model, lora_config, pick_device_and_dtype, quantization_config

from tiny_models import save_tiny_adapter, save_tiny_model

QUESTION = [{"role": "user", "content": "my vpn keeps disconnecting"}]


def _logits(model, tokenizer) -> torch.Tensor:
    inputs = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**inputs.to(model.device)).logits.float()


def test_quantization_factory_matches_the_seed_system():
    four = quantization_config("4bit", compute_dtype=torch.bfloat16)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_use_double_quant
    assert four.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config("8bit").load_in_8bit
    assert quantization_config("none") is None
    with pytest.raises(ModelError, match="unknown quantization '3bit'"):
        quantization_config("3bit")


def test_lora_factory_targets_attention_and_mlp():
    config = lora_config()
    assert config.r == 16 and config.lora_alpha == 32 and config.task_type == "CAUSAL_LM"
    assert {"q_proj", "v_proj", "down_proj"} <= set(config.target_modules)


def test_cpu_without_gpu_uses_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device_and_dtype() == ("cpu", torch.float32)


@pytest.mark.parametrize("fixture", ["llama_dir", "mistral_dir"])
def test_tiny_checkpoints_load_in_eval_mode_with_a_chat_template(request, fixture):
    started = time.perf_counter()
    model, tokenizer = load_model(request.getfixturevalue(fixture))
    assert time.perf_counter() - started < 5
    assert not model.training
    assert model.config.model_type == fixture.removesuffix("_dir")
    assert tokenizer.chat_template and tokenizer.pad_token_id is not None
    assert _logits(model, tokenizer).isfinite().all()


def test_the_adapter_changes_the_logits_and_merging_keeps_them(llama_dir, adapter_dir):
    base, tokenizer = load_model(llama_dir)
    adapted, _ = load_model(llama_dir, adapter=adapter_dir)
    merged, _ = load_model(llama_dir, adapter=adapter_dir, merge=True)
    assert type(adapted).__name__ == "PeftModelForCausalLM"
    assert type(merged).__name__ == "LlamaForCausalLM"  # the adapter is folded into the weights
    without, with_adapter, with_merged = (_logits(m, tokenizer) for m in (base, adapted, merged))
    assert (without - with_adapter).abs().max() > 1e-2
    assert torch.allclose(with_adapter, with_merged, atol=1e-4)


def test_loading_an_adapter_leaves_the_base_checkpoint_untouched(llama_dir, adapter_dir):
    before = load_model(llama_dir)[0].state_dict()["model.layers.0.self_attn.q_proj.weight"].clone()
    load_model(llama_dir, adapter=adapter_dir, merge=True)
    after = load_model(llama_dir)[0].state_dict()["model.layers.0.self_attn.q_proj.weight"]
    assert torch.equal(before, after)


def test_adapter_without_config_is_a_clear_error(llama_dir, adapter_dir, tmp_path):
    broken = shutil.copytree(adapter_dir, tmp_path / "adapter")
    (broken / "adapter_config.json").unlink()
    with pytest.raises(ModelError, match="has no adapter_config.json"):
        load_model(llama_dir, adapter=broken)
    with pytest.raises(ModelError, match="no LoRA adapter folder"):
        load_model(llama_dir, adapter=tmp_path / "nowhere")


def test_adapter_for_another_base_model_is_a_clear_error(adapter_dir, tmp_path):
    wider = save_tiny_model(tmp_path / "wider", hidden=96)
    with pytest.raises(ModelError, match="does not fit the model"):
        load_model(wider, adapter=adapter_dir)


def test_adapter_targeting_modules_the_model_lacks_is_a_clear_error(llama_dir, tmp_path):
    adapter = save_tiny_adapter(llama_dir, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["target_modules"] = ["c_attn"]  # a GPT-2 module name
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="does not fit the model"):
        load_model(llama_dir, adapter=adapter)


def test_missing_weights_or_config_are_clear_errors(llama_dir, tmp_path):
    no_weights = shutil.copytree(llama_dir, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing model files"):
        load_model(no_weights)
    no_config = shutil.copytree(llama_dir, tmp_path / "no-config")
    (no_config / "config.json").unlink()
    with pytest.raises(ModelError, match="config.json"):
        load_model(no_config)


def test_tokenizer_without_chat_template_gets_the_documented_fallback(tmp_path, caplog):
    folder = save_tiny_model(tmp_path / "plain", template=None)
    with caplog.at_level(logging.WARNING, logger="llm.loading"):
        _, tokenizer = load_model(folder)
    assert tokenizer.chat_template == FALLBACK_CHAT_TEMPLATE
    assert "no chat template" in caplog.text
    prompt = tokenizer.apply_chat_template([{"role": "system", "content": "Rules."}, *QUESTION],
                                           add_generation_prompt=True, tokenize=False)
    assert prompt == "System: Rules.\n\nUser: my vpn keeps disconnecting\n\nAssistant:"


def test_4bit_quantization_loads_and_runs_on_cpu(llama_dir, adapter_dir):
    import bitsandbytes as bnb

    model, tokenizer = load_model(llama_dir, quantization="4bit")
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    reference, _ = load_model(llama_dir)
    quantized = _logits(model, tokenizer)
    assert quantized.isfinite().all()
    assert (quantized - _logits(reference, tokenizer)).abs().max() < 0.5  # NF4 is close to, not equal to, fp32
    adapted, _ = load_model(llama_dir, quantization="4bit", adapter=adapter_dir, merge=True)
    assert type(adapted).__name__ == "PeftModelForCausalLM"  # a quantized model keeps its adapter separate
    assert (_logits(adapted, tokenizer) - quantized).abs().max() > 1e-2


def test_hub_id_that_is_not_cached_offline_names_how_to_get_it(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import, so patch the constant
    with pytest.raises(ModelError, match=r"not in the Hugging Face cache.*huggingface-cli download"):
        load_model("itbot-tests/no-such-model")


def test_the_loader_needs_no_heavy_imports_until_called():
    import subprocess
    import sys

    code = "import sys, llm.loading, llm.service, llm.model_files, llm.postprocess; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "False", done.stderr
