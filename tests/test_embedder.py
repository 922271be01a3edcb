"""The NumPy MiniLM encoder gives the same embeddings as transformers, in float32; the ONNX Runtime encoder the
engine uses gives the NumPy ones, and falls back to NumPy rather than fail."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from answers import embedder as embedder_module
from answers.embedder import SentenceEmbedder, default_model_dir

QUESTIONS = [
    "hi",
    "i forgot my pasword and now outlook keeps asking for it",
    "VPN drops every 10 minutes on the hotel wifi, GlobalProtect says gateway unreachable",
    "my laptop has been lagging badly since the new security software was installed last week and now "
    "outlook also freezes when I open attachments from the shared mailbox, can someone help",
]


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


def test_embeddings_match_the_transformers_implementation(embedder):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import BertModel

    directory = default_model_dir()
    model = BertModel.from_pretrained(str(directory), add_pooling_layer=False).eval()
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(QUESTIONS)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1).numpy()

    ours = embedder.encode(QUESTIONS)

    assert ours.shape == (len(QUESTIONS), 384)
    cosine = (ours * expected).sum(axis=1)
    assert cosine.min() > 0.9999, cosine
    assert np.abs(ours - expected).max() < 1e-3


def test_activations_stay_float32_through_every_layer(embedder, monkeypatch):
    # NumPy 2 promotes float32 arrays to float64 when combined with a NumPy float64 scalar:
    # one np.sqrt(2.0) in the GELU made every matmul after it four times slower.
    seen: list[np.dtype] = []
    original = SentenceEmbedder._linear

    def recording(self, x, name):
        seen.append(x.dtype)
        return original(self, x, name)

    monkeypatch.setattr(SentenceEmbedder, "_linear", recording)
    embedder.encode(QUESTIONS)

    assert len(seen) == 6 * 6  # q, k, v, attention output, intermediate, output in each of 6 layers
    assert set(seen) == {np.dtype(np.float32)}


def test_batches_and_single_questions_agree(embedder):
    together = embedder.encode(QUESTIONS, batch_size=2)
    alone = np.vstack([embedder.encode([q]) for q in QUESTIONS])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


VARIED = QUESTIONS + [
    "ok",
    "Mein Passwort ist abgelaufen und ich komme nicht mehr in Outlook",
    "パスワードをリセットしたいです",
    "la imprimante du deuxième étage n'imprime plus depuis ce matin",
    " ".join(["the shared drive mapping fails with error 0x80070035 after every reboot"] * 20),  # > 128 tokens
]


def _split_texts(count: int) -> list[str]:
    from data import SPLITS_DIR
    from data.utterances import read_jsonl

    return [row["text"] for row in read_jsonl(SPLITS_DIR / "test.jsonl")][:count]


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir: Path) -> SentenceEmbedder:
    """The engine's encoder, exported once into the run's cache."""
    pytest.importorskip("onnxruntime")
    onnx = SentenceEmbedder(cache_dir=cache_dir)
    assert onnx.backend == "onnxruntime"
    return onnx


def _cached_file(cache: Path) -> Path:
    return cache / "encoder" / f"minilm-{embedder_module._onnx_key(default_model_dir())}.onnx"


def test_onnx_encoder_gives_the_numpy_vectors(embedder, onnx_embedder):
    assert embedder.backend == "numpy"
    texts = VARIED + _split_texts(300)
    # Padded batches (mixed lengths in one batch) and single texts must both agree.
    padded = onnx_embedder.encode(texts, batch_size=16)
    expected = embedder.encode(texts, batch_size=16)
    assert padded.shape == (len(texts), 384) and padded.dtype == np.float32
    assert np.abs(padded - expected).max() < 1e-5
    alone = np.vstack([onnx_embedder.encode([text]) for text in VARIED])
    assert np.abs(alone - expected[: len(VARIED)]).max() < 1e-5
    assert onnx_embedder.encode([]).shape == (0, 384)
    assert onnx_embedder.knows_word("printer") and not onnx_embedder.knows_word("globalprotect")


def test_the_cached_export_is_reused(onnx_embedder, cache_dir, monkeypatch):
    path = _cached_file(cache_dir)
    before = path.stat().st_mtime_ns

    def no_export(directory, target):
        raise AssertionError("the cached encoder was exported again")

    monkeypatch.setattr(embedder_module, "_export_onnx", no_export)
    again = SentenceEmbedder(cache_dir=cache_dir)

    assert again.backend == "onnxruntime"
    assert path.stat().st_mtime_ns == before
    assert np.array_equal(again.encode(QUESTIONS), onnx_embedder.encode(QUESTIONS))


@pytest.fixture
def copied_cache(onnx_embedder, cache_dir, tmp_path, monkeypatch) -> tuple[Path, Path, list[Path]]:
    """A private copy of the cache whose "export" copies the good file instead of running torch."""
    good = tmp_path / "good.onnx"
    shutil.copyfile(_cached_file(cache_dir), good)
    cache = tmp_path / "cache"
    (cache / "encoder").mkdir(parents=True)
    shutil.copyfile(good, cache / "encoder" / _cached_file(cache_dir).name)
    exports: list[Path] = []

    def fake_export(directory, target):
        exports.append(target)
        temporary = target.with_suffix(".tmp")
        shutil.copyfile(good, temporary)
        os.replace(temporary, target)

    monkeypatch.setattr(embedder_module, "_export_onnx", fake_export)
    return cache, _cached_file(cache), exports


def test_a_corrupt_cached_export_is_rebuilt(copied_cache, embedder, caplog):
    cache, path, exports = copied_cache
    path.write_bytes(path.read_bytes()[: 1 << 20])  # a half-written file, as a crash mid-copy would leave

    with caplog.at_level(logging.WARNING, logger="answers.embedder"):
        rebuilt = SentenceEmbedder(cache_dir=cache)

    assert len(exports) == 1 and path.stat().st_size == (cache.parent / "good.onnx").stat().st_size
    assert rebuilt.backend == "onnxruntime"
    assert "cannot be opened" in caplog.text
    assert np.abs(rebuilt.encode(QUESTIONS) - embedder.encode(QUESTIONS)).max() < 1e-5


def test_a_failed_export_falls_back_to_numpy_with_one_warning(copied_cache, embedder, monkeypatch, caplog):
    cache, path, _ = copied_cache
    path.unlink()

    def broken_export(directory, target):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(embedder_module, "_export_onnx", broken_export)
    with caplog.at_level(logging.WARNING, logger="answers.embedder"):
        fallback = SentenceEmbedder(cache_dir=cache)

    assert fallback.backend == "numpy"
    assert [r.getMessage() for r in caplog.records if r.name == "answers.embedder"] == [
        "cannot build the ONNX sentence encoder (exporter exploded); using the NumPy encoder"]
    assert np.array_equal(fallback.encode(QUESTIONS), embedder.encode(QUESTIONS))


def test_an_export_that_disagrees_with_numpy_is_not_kept(copied_cache, monkeypatch, caplog):
    cache, path, exports = copied_cache
    path.unlink()
    monkeypatch.setattr(embedder_module, "_EXPORT_TOLERANCE", -1.0)  # no export can pass

    with caplog.at_level(logging.WARNING, logger="answers.embedder"):
        fallback = SentenceEmbedder(cache_dir=cache)

    assert len(exports) == 1
    assert fallback.backend == "numpy"
    assert list((cache / "encoder").iterdir()) == []  # neither the refused export nor its staging copy stays
    assert "differ from the NumPy ones" in caplog.text


def test_without_a_cache_folder_the_numpy_encoder_is_used(monkeypatch):
    def no_export(directory, target):
        raise AssertionError("exported without a cache folder")

    monkeypatch.setattr(embedder_module, "_export_onnx", no_export)
    assert SentenceEmbedder().backend == "numpy"


def test_the_export_runs_in_a_child_process_so_torch_never_stays_in_the_bots_memory(tmp_path):
    import subprocess
    import sys

    probe = ("import sys; from pathlib import Path; from answers.embedder import SentenceEmbedder; "
             f"e = SentenceEmbedder(cache_dir=Path({str(tmp_path)!r})); "
             "print(e.backend, 'torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.split() == ["onnxruntime", "False", "False"], done.stderr[-2000:]
    assert list((tmp_path / "encoder").glob("minilm-*.onnx"))
