"""The NumPy MiniLM encoder the router uses gives the same embeddings as transformers, in float32."""

from __future__ import annotations

import numpy as np
import pytest

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
