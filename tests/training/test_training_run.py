"""Fine-tuning end to end on a tiny real Llama on CPU: loss falls, the adapter loads for inference, runs resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm.loading import load_model
from training.errors import TrainingError
from training.trainer import RUN_RECORD, _memory_errors, last_checkpoint, train


def _tensorboard_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags.update(accumulator.Tags()["scalars"])
    return tags


def test_training_on_a_repeated_batch_lowers_the_loss_and_saves_an_adapter_inference_can_load(tiny_config,
                                                                                               tiny_llama):
    # 4 examples in one batch of 4: every step sees the same batch, so the loss must fall
    config = tiny_config(max_steps=15, eval_steps=10, max_eval_examples=1)
    result = train(config, progress_bar=False)

    losses = result.losses()
    assert len(losses) == 15
    assert losses[-1] < losses[0] - 0.2, losses
    assert sum(losses[-3:]) < sum(losses[:3]), losses

    # the adapter folder: peft files and the model card
    adapter = result.adapter_dir
    assert adapter == Path(config.output_dir) / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "training.json"):
        assert (adapter / name).is_file(), name
    card = (adapter / "README.md").read_text(encoding="utf-8")
    record = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    sha = record["data_sha256"]["train.jsonl.gz"]
    assert len(sha) == 64 and sha in card and record["data_sha256"]["validation.jsonl.gz"] in card
    assert f"base_model: {tiny_llama}" in card and "| eval loss (validation split) |" in card
    assert "learning_rate: 0.01" in card  # the config
    assert record["metrics"]["global_step"] == 15 and 0.0 <= record["metrics"]["eval_token_accuracy"] <= 1.0

    # LoRA weights moved, base weights did not
    base = load_file(str(tiny_llama / "model.safetensors"))
    trained = {name: tensor.detach() for name, tensor in result.model.state_dict().items()}
    lora_b = [tensor for name, tensor in trained.items() if "lora_B" in name]
    assert len(lora_b) == 2 * 7 and all(tensor.abs().sum() > 0 for tensor in lora_b)  # B starts at zero
    frozen = {name.removeprefix("base_model.model.").replace(".base_layer", ""): tensor
              for name, tensor in trained.items() if "lora_" not in name}
    assert set(base) <= set(frozen)
    assert all(torch.equal(frozen[name], base[name]) for name in base)

    # the LLM service's loader applies it, and it changes the model's output
    adapted, tokenizer = load_model(tiny_llama, adapter=adapter)
    plain, _ = load_model(tiny_llama)
    assert type(adapted).__name__ == "PeftModelForCausalLM"
    ids = tokenizer("my vpn keeps dropping", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(adapted(ids).logits, plain(ids).logits)

    # periodic evaluations on the first validation example (steps 10 and 15), the final one on both
    assert [entry["step"] for entry in result.log_history if "eval_loss" in entry] == [10, 15, 15]

    # TensorBoard has the seed system's curves
    tags = _tensorboard_tags(Path(config.output_dir) / "tensorboard")
    assert {"train/loss", "train/learning_rate", "train/grad_norm", "eval/loss", "eval/token_accuracy"} <= tags


def test_a_run_resumes_from_its_last_checkpoint_and_keeps_counting(tiny_config):
    first = train(tiny_config(max_steps=2, save_steps=2, final_eval=False), progress_bar=False)
    checkpoint = Path(first.output_dir) / "checkpoint-2"
    assert first.global_step == 2 and last_checkpoint(first.output_dir) == checkpoint

    resumed = train(tiny_config(max_steps=4, save_steps=2), progress_bar=False)
    assert resumed.resumed_from == checkpoint
    assert resumed.global_step == 4
    steps_logged_now = [entry["step"] for entry in resumed.log_history if "loss" in entry]
    assert steps_logged_now[-2:] == [3, 4] and steps_logged_now.count(1) <= 1  # step 1 only from the first run
    assert (resumed.adapter_dir / "adapter_model.safetensors").is_file()
    assert last_checkpoint(resumed.output_dir).name == "checkpoint-4"


def test_resume_refuses_a_folder_of_another_run_and_no_resume_starts_over(tiny_config):
    train(tiny_config(max_steps=1, save_steps=1, final_eval=False), progress_bar=False)
    with pytest.raises(TrainingError, match=r"holds checkpoints of another run \(lora_r differ\)"):
        train(tiny_config(max_steps=2, lora_r=4), progress_bar=False)
    fresh = train(tiny_config(max_steps=1, save_steps=1, lora_r=4, final_eval=False), resume=False,
                  progress_bar=False)
    assert fresh.resumed_from is None and fresh.global_step == 1
    assert json.loads((fresh.output_dir / RUN_RECORD).read_text(encoding="utf-8"))["lora_r"] == 4


def test_resume_without_a_checkpoint_is_an_error(tiny_config):
    with pytest.raises(TrainingError, match="no checkpoint in .* to resume from"):
        train(tiny_config(), resume=True, progress_bar=False)


def test_gradient_checkpointing_without_quantization_still_trains_the_adapter(tiny_config):
    result = train(tiny_config(gradient_checkpointing=True, max_steps=2, final_eval=False), progress_bar=False)
    assert any(getattr(module, "gradient_checkpointing", False) is True for module in result.model.modules())
    assert all(p.detach().abs().sum() > 0 for name, p in result.model.named_parameters() if "lora_B" in name)


def test_two_runs_with_the_same_seed_train_the_same(tiny_config, tmp_path):
    one = train(tiny_config(lora_dropout=0.1, output_dir=str(tmp_path / "one"), final_eval=False), progress_bar=False)
    two = train(tiny_config(lora_dropout=0.1, output_dir=str(tmp_path / "two"), final_eval=False), progress_bar=False)
    assert one.losses() == two.losses()


def test_running_out_of_gpu_memory_is_one_line_that_says_what_to_lower(tiny_config):
    config = tiny_config(per_device_train_batch_size=4, max_seq_length=256)
    with pytest.raises(TrainingError) as caught, _memory_errors(config):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
    message = str(caught.value)
    assert message.startswith("out of GPU memory: lower per_device_train_batch_size (now 4")
    assert "max_seq_length (now 256)" in message and "quantization: 4bit" in message and "\n" not in message


def test_qlora_trains_a_4bit_model_with_gradient_checkpointing_on_cpu(tiny_config, tiny_llama):
    import bitsandbytes as bnb

    result = train(tiny_config(quantization="4bit", gradient_checkpointing=True, max_steps=4, final_eval=False),
                   progress_bar=False)
    base = result.model.get_base_model()
    assert isinstance(base.model.layers[0].self_attn.q_proj.base_layer, bnb.nn.Linear4bit)  # frozen 4-bit weights
    assert any(getattr(module, "gradient_checkpointing", False) is True for module in base.modules())
    assert all(torch.isfinite(torch.tensor(result.losses())))
    lora_b = [p for name, p in result.model.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.requires_grad and p.detach().abs().sum() > 0 for p in lora_b)
    adapted, _ = load_model(tiny_llama, adapter=result.adapter_dir, quantization="4bit")
    assert type(adapted).__name__ == "PeftModelForCausalLM"
    assert "quantization: 4bit" in (result.adapter_dir / "README.md").read_text(encoding="utf-8")


def test_bfloat16_on_a_cpu_trains_float32_weights_under_bfloat16_autocast(tiny_config, tmp_path):
    from training.trainer import training_arguments

    if not torch.cpu._is_avx512_bf16_supported() and not torch.cpu._is_amx_tile_supported():
        with pytest.raises(TrainingError, match="no bfloat16 instructions"):
            train(tiny_config(dtype="bfloat16", max_steps=2, final_eval=False), progress_bar=False)
        return
    config = tiny_config(dtype="bfloat16", max_steps=4, final_eval=False)
    arguments = training_arguments(config, tmp_path, has_eval=False)
    assert arguments.bf16 and arguments.use_cpu  # the Trainer autocasts to bfloat16
    result = train(config, progress_bar=False)
    lora = [p for name, p in result.model.named_parameters() if "lora_" in name]
    assert lora and all(p.dtype == torch.float32 for p in lora)  # master weights and updates stay float32
    assert all(torch.isfinite(torch.tensor(result.losses())))
    assert all(p.detach().abs().sum() > 0 for name, p in result.model.named_parameters() if "lora_B" in name)
