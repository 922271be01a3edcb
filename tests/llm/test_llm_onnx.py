"""The ONNX runtime: an export of the tiny Llama writes the torch path's greedy tokens, reuses cached prefixes,
streams, stops, is rebuilt when the weights change, and fails with one clear line when the package is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llm.errors import ModelError
from llm import onnx_export
from llm.onnx_export import MISSING_RUNTIME, export_dir, export_key, export_onnx, pick_runtime

needs_onnx = pytest.mark.skipif(not onnx_export.onnx_available(), reason="onnxruntime-genai is not installed")
MESSAGES = [{"role": "system", "content": "You are the IT helpdesk. Answer from the article: reset the VPN client, "
                                          "then sign in again with your company account."},
            {"role": "user", "content": "my vpn keeps disconnecting"}]


@pytest.fixture(scope="module")
def fp32_export(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama exported in float32 (exact: the same tokens as torch), built once for this module."""
    if not onnx_export.onnx_available():
        pytest.skip("onnxruntime-genai is not installed")
    return export_onnx(llama_dir, cache_dir=tmp_path_factory.mktemp("onnx-cache"), precision="fp32")


def _prompt(tokenizer, messages=MESSAGES) -> list[int]:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]


def _torch_tokens(llama_dir: Path, ids: list[int], *, penalty: float, n: int = 32) -> list[int]:
    import torch

    from llm.decoding import greedy_decode
    from llm.loading import load_model

    model, _ = load_model(llama_dir, dtype="float32")
    return greedy_decode(model, torch.tensor([ids]), max_new_tokens=n, eos_ids=set(), repetition_penalty=penalty)


@needs_onnx
@pytest.mark.parametrize("penalty", [1.0, 1.1, 1.3])
def test_the_fp32_export_writes_the_same_greedy_tokens_as_the_torch_path(llama_dir, fp32_export, penalty):
    from llm.loading import load_tokenizer
    from llm.onnx_runtime import load_onnx_model

    ids = _prompt(load_tokenizer(str(llama_dir)))
    model = load_onnx_model(fp32_export)
    streamed: list[int] = []
    ours = model.greedy_decode(ids, max_new_tokens=32, eos_ids=set(), repetition_penalty=penalty,
                               on_token=streamed.append)
    assert ours == _torch_tokens(llama_dir, ids, penalty=penalty)
    assert streamed == ours and len(set(ours)) > 3


@needs_onnx
def test_a_prompt_sharing_a_cached_prefix_is_decoded_warm_to_the_same_tokens_as_cold(llama_dir, fp32_export):
    from llm.loading import load_tokenizer
    from llm.onnx_runtime import load_onnx_model

    tokenizer = load_tokenizer(str(llama_dir))
    first = _prompt(tokenizer)
    second = _prompt(tokenizer, MESSAGES[:1] + [{"role": "user", "content": "the vpn drops every hour"}])
    cold = load_onnx_model(fp32_export, prefix_cache=0).greedy_decode(second, max_new_tokens=24, eos_ids=set(),
                                                                      repetition_penalty=1.1)
    model = load_onnx_model(fp32_export, prefix_cache=2)
    model.greedy_decode(first, max_new_tokens=24, eos_ids=set(), repetition_penalty=1.1)
    assert model.last_reused_tokens == 0
    warm = model.greedy_decode(second, max_new_tokens=24, eos_ids=set(), repetition_penalty=1.1)
    assert model.last_reused_tokens > len(second) // 2  # the system prompt came from the cache
    assert warm == cold
    again = model.greedy_decode(second, max_new_tokens=24, eos_ids=set(), repetition_penalty=1.1)
    assert again == cold and model.last_reused_tokens == len(second) - 1  # the same prompt: all but its last token


@needs_onnx
def test_decoding_ends_at_an_end_of_turn_token_and_when_asked_to_stop(llama_dir, fp32_export):
    from llm.loading import load_tokenizer
    from llm.onnx_runtime import load_onnx_model

    ids = _prompt(load_tokenizer(str(llama_dir)))
    model = load_onnx_model(fp32_export)
    free = model.greedy_decode(ids, max_new_tokens=12, eos_ids=set())
    assert len(free) == 12
    assert model.greedy_decode(ids, max_new_tokens=12, eos_ids={free[4]}) == free[:free.index(free[4])]
    calls: list[int] = []
    assert model.greedy_decode(ids, max_new_tokens=12, eos_ids=set(), on_token=calls.append,
                               should_stop=lambda: len(calls) >= 3) == free[:3]


@needs_onnx
def test_the_service_streams_an_answer_decoded_by_the_onnx_runtime(make_service, llama_dir, tmp_path):
    service = make_service(runtime="onnx", onnx_precision="fp32", cache_dir=tmp_path, max_new_tokens=16)
    torch_service = make_service(runtime="torch", max_new_tokens=16)
    pieces: list[str] = []
    text = service.generate(MESSAGES, on_token=pieces.append)
    assert service.runtime == "onnx" and service.last_stats.runtime == "onnx"
    assert text.strip() and "".join(pieces).strip()
    assert text == torch_service.generate(MESSAGES)
    assert list((tmp_path / "onnx").iterdir())  # the export is cached in the bot's cache folder


@needs_onnx
def test_the_int8_export_quantizes_every_matrix_product_and_still_follows_the_float32_tokens(llama_dir, fp32_export,
                                                                                          tmp_path):
    """int8 (the default): the float32 export's MatMuls become dynamic-quantized ones, for the faster prompt pass."""
    import onnx

    from llm.loading import load_tokenizer
    from llm.onnx_runtime import load_onnx_model

    folder = export_onnx(llama_dir, cache_dir=tmp_path, precision="int8")
    assert folder.name.split("-")[-2] == "int8" and (folder / "genai_config.json").is_file()
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx"), load_external_data=False).graph.node}
    assert "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops
    assert "MatMul" not in ops  # no matrix product left in float32
    ids = _prompt(load_tokenizer(str(llama_dir)))
    exact = load_onnx_model(fp32_export).greedy_decode(ids, max_new_tokens=8, eos_ids=set())
    ours = load_onnx_model(folder).greedy_decode(ids, max_new_tokens=8, eos_ids=set())
    assert len(ours) == 8 and ours[0] == exact[0]


@needs_onnx
def test_rules_computed_at_start_up_make_the_first_question_warm_and_change_nothing_it_says(make_service, tmp_path):
    """ModelService.warm (run by the bot at start-up on the engine's rules): the first real prompt reuses them."""
    warmed = make_service(runtime="onnx", onnx_precision="fp32", cache_dir=tmp_path, max_new_tokens=16)
    cold = make_service(runtime="onnx", onnx_precision="fp32", cache_dir=tmp_path, max_new_tokens=16,
                        prefix_cache=0)
    rules = [MESSAGES[0], {"role": "user", "content": ""}]
    warmed.warm(rules)
    text = warmed.generate(MESSAGES)
    assert warmed.last_stats.reused_prompt_tokens >= 16  # the system prompt, computed before the question came
    assert text == cold.generate(MESSAGES) and cold.last_stats.reused_prompt_tokens == 0


@needs_onnx
def test_the_engine_warmed_up_at_start_answers_its_first_question_from_the_computed_rules(make_service, llm_engine,
                                                                                          tmp_path):
    service = make_service(runtime="onnx", onnx_precision="fp32", cache_dir=tmp_path, max_new_tokens=16)
    engine = llm_engine(service)
    engine.warm_up()
    engine.answer("my vpn keeps disconnecting", mode="llm")
    assert service.last_stats.reused_prompt_tokens > 100  # the rules: the same for every question


def test_the_export_key_changes_with_the_weights_the_adapter_and_the_precision(llama_dir, adapter_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(llama_dir, copy)
    key = export_key(copy, adapter=None, precision="int4")
    assert export_key(copy, adapter=None, precision="int4") == key
    assert export_key(copy, adapter=None, precision="fp32") != key
    assert export_key(copy, adapter=adapter_dir, precision="int4") != key
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")  # one byte of the weights changed
    assert export_key(copy, adapter=None, precision="int4") != key


@needs_onnx
def test_new_weights_get_a_new_export_and_the_stale_one_is_removed(llama_dir, tmp_path):
    from tiny_models import save_tiny_model

    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    cache = tmp_path / "cache"
    old = export_onnx(model, cache_dir=cache, precision="int4")
    assert export_onnx(model, cache_dir=cache, precision="int4") == old  # built once
    save_tiny_model(model, seed=7)  # retrained weights, same folder
    new = export_onnx(model, cache_dir=cache, precision="int4")
    assert new != old and new == export_dir(cache, model, adapter=None, precision="int4")
    assert (new / "genai_config.json").is_file() and not old.exists()


def test_a_missing_runtime_is_one_clear_line_and_auto_falls_back_to_torch(monkeypatch, make_service, tmp_path):
    monkeypatch.setattr(onnx_export, "onnx_available", lambda: False)
    assert pick_runtime("auto") == "torch"
    with pytest.raises(ModelError) as caught:
        pick_runtime("onnx")
    assert str(caught.value) == MISSING_RUNTIME and "\n" not in MISSING_RUNTIME
    service = make_service(runtime="onnx", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="pip install onnxruntime-genai"):
        service.load()
    fallback = make_service(runtime="auto", cache_dir=tmp_path)
    assert fallback.generate(MESSAGES).strip() and fallback.runtime == "torch"


def test_unknown_runtimes_and_bitsandbytes_with_onnx_are_refused():
    from llm.service import ServiceConfig

    with pytest.raises(ModelError, match="unknown LLM runtime"):
        ServiceConfig(model="m", runtime="tensorrt")
    with pytest.raises(ModelError, match="unknown ONNX precision"):
        ServiceConfig(model="m", onnx_precision="int2")
    assert pick_runtime("torch", quantization="4bit") == "torch"
    assert pick_runtime("auto", quantization="4bit") == "torch"
    if onnx_export.onnx_available():
        with pytest.raises(ModelError, match="ITBOT_QUANTIZATION=none"):
            pick_runtime("onnx", quantization="4bit")


@needs_onnx
@pytest.mark.model
def test_the_embedded_model_answers_a_second_question_on_the_same_article_from_its_cached_prefix(model_cache):
    """SmolLM2 + the shipped adapter, int8 (the default): the second question reuses the first one's rules, article."""
    from answers.kb import load_kb
    from answers.org import OrgProfile
    from answers.prompts import build_messages
    from llm.model_files import EMBEDDED_ADAPTER, EMBEDDED_MODEL, fetch_embedded_model
    from llm.service import ModelService, ServiceConfig
    from tiny_models import REPO

    fetch_embedded_model(model_cache)
    article = load_kb(REPO / "data" / "kb").get("vpn-no-internal-access")
    first, second = (build_messages(q, [article], OrgProfile()) for q in
                     ("the vpn says connected but I can't open any internal sites", "intranet down on vpn"))
    config = ServiceConfig(model=EMBEDDED_MODEL, adapter=str(EMBEDDED_ADAPTER), cache_dir=model_cache,
                           runtime="onnx", max_new_tokens=48, timeout_s=600)
    warm_service, cold_service = ModelService(config), ModelService(config)
    try:
        warm_service.generate(first)
        warm = warm_service.generate(second)
        stats = warm_service.last_stats
        assert stats.runtime == "onnx" and stats.reused_prompt_tokens > stats.prompt_tokens * 0.8
        assert warm == cold_service.generate(second) and cold_service.last_stats.reused_prompt_tokens == 0
    finally:
        warm_service.close()
        cold_service.close()


@needs_onnx
def test_int8_with_the_lm_head_in_float_keeps_that_one_product_and_lives_beside_plain_int8(llama_dir, tmp_path):
    """int8-head: every matrix product quantized but the LM head, which picks each next token; its export and the
    plain int8 one share the cache without removing each other."""
    import onnx

    head = export_onnx(llama_dir, cache_dir=tmp_path, precision="int8-head")
    nodes = onnx.load(str(head / "model.onnx"), load_external_data=False).graph.node
    assert [n.name for n in nodes if n.op_type == "MatMul"] == [n.name for n in nodes if "lm_head" in n.name
                                                                and n.op_type == "MatMul"] != []
    assert any(n.op_type in ("DynamicQuantizeMatMul", "MatMulInteger") for n in nodes)
    plain = export_onnx(llama_dir, cache_dir=tmp_path, precision="int8")
    assert head.is_dir() and plain.is_dir() and head != plain
