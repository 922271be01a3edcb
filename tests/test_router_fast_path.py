"""The router applies its fitted models without scikit-learn's per-call overhead, and gets scikit-learn's answers."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix, hstack

from data.splits import load_split
from answers.router import NEIGHBOUR_WEIGHT, NEIGHBOURS, _clean, load_or_train_router

REPO = Path(__file__).resolve().parents[1]

AWKWARD = ["", "   ", "🙂🙂", "zzzzqqqq xxyy", "a", "VPN VPN VPN vpn vpn", "é è ê ë password RESET",
           "<@U123> *bold* `code` https://example.com/reset?x=1", "x" * 5000]


@pytest.fixture(scope="module")
def questions() -> list[str]:
    texts = [row["text"] for name in ("train", "validation", "test") for row in load_split(name)]
    return _clean(texts + AWKWARD)


@pytest.fixture(scope="module")
def router(engine):
    return engine.router


def as_matrix(rows: list[tuple[np.ndarray, np.ndarray]], width: int) -> csr_matrix:
    indptr = np.cumsum([0] + [len(columns) for columns, _ in rows])
    return csr_matrix((np.concatenate([v for _, v in rows]), np.concatenate([c for c, _ in rows]), indptr),
                      shape=(len(rows), width))


def test_tfidf_features_equal_scikit_learns(router, questions):
    compiled = router._compiled
    ours = as_matrix(compiled.rows(questions), compiled.width)
    theirs = router.fitted_models().features.transform(questions).tocsr()
    assert ours.shape == theirs.shape
    difference = abs(ours - theirs)
    assert difference.max() < 1e-9, "a feature value differs from scikit-learn's"
    assert (ours != 0).sum() == (theirs != 0).sum(), "a different set of n-grams was counted"


def test_fast_stage_probabilities_equal_scikit_learns(router, questions):
    ours = router._fast.proba(router._compiled.rows(questions))
    theirs = router.fitted_models().fast.predict_proba(router.fitted_models().features.transform(questions))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_full_stage_probabilities_equal_scikit_learns(router, questions):
    if router._full is None:
        pytest.skip("the router was built without an embedder")
    sample = questions[::25] + _clean(AWKWARD)
    dense = router._embedder.encode(sample)
    ours = router._full.proba(router._compiled.rows(sample), dense)
    combined = hstack([router.fitted_models().features.transform(sample), csr_matrix(dense)]).tocsr()
    theirs = router.fitted_models().full.predict_proba(combined)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)


def test_routing_one_question_or_many_gives_the_same_routes(router, questions):
    sample = questions[::40]
    together = router.route_many(sample)
    alone = [router.route(text) for text in sample]
    assert [r.label for r in together] == [r.label for r in alone]
    np.testing.assert_allclose([r.confidence for r in together], [r.confidence for r in alone], atol=1e-6)


def test_the_neighbour_vote_credits_each_training_line_to_its_own_label(router):
    if router._full is None:
        pytest.skip("the router was built without an embedder")
    rows = load_split("train")[::50]
    dense = router._embedder.encode(_clean([row["text"] for row in rows]))
    votes = router._with_neighbour_vote(np.zeros((len(rows), len(router.labels))), dense)
    np.testing.assert_allclose(votes.sum(axis=1), NEIGHBOUR_WEIGHT, atol=1e-6)
    own = votes[np.arange(len(rows)), [router.labels.index(row["label"]) for row in rows]]
    # a line is its own nearest neighbour, so its label gets at least an equal share of the vote
    assert (own >= NEIGHBOUR_WEIGHT / NEIGHBOURS - 1e-6).all(), "a neighbour's vote went to another label"


def test_a_start_up_reads_the_compiled_router_without_importing_scikit_learn(engine, cache_dir):
    """scikit-learn (and SciPy under it) took about a second of every start-up to import, for a router that answers
    with plain dictionaries and arrays: a start-up with warm caches imports neither."""
    code = ("import sys; from bot.settings import Settings; from answers.engine import build_engine; "
            f"engine = build_engine(Settings(_env_file=None, cache_dir={str(cache_dir)!r}).engine_config()); "
            "print(engine.answer('my vpn keeps disconnecting').intent, "
            "'sklearn' in sys.modules, 'scipy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.stdout.split() == ["vpn", "False", "False"], result.stderr[-2000:]


ROWS = [{"text": text, "label": label} for label, texts in {
    "vpn": ["vpn keeps dropping", "cannot connect to the vpn", "vpn is slow from home"],
    "printer": ["printer is offline", "paper jam in the printer", "cannot print"],
    "out_of_scope": ["what is the weather", "book me a table", "tell me a joke"],
}.items() for text in texts]


def test_a_corrupt_compiled_router_is_rebuilt_from_the_fitted_one(tmp_path, caplog):
    first = load_or_train_router(ROWS, cache_dir=tmp_path)
    compiled = next(tmp_path.glob("router-*.compiled*.pkl"))
    compiled.write_bytes(b"not a pickle")
    caplog.clear()  # the first call's "training" line, when another test left the logger at INFO
    with caplog.at_level(logging.INFO, logger="answers.router"):
        again = load_or_train_router(ROWS, cache_dir=tmp_path)
    assert "unreadable; rebuilding it" in caplog.text
    assert "training the intent router" not in caplog.text  # rebuilt from scikit-learn's fitted models
    assert again.route("the vpn dropped again").intent == first.route("the vpn dropped again").intent == "vpn"
    assert compiled.read_bytes() != b"not a pickle"
    np.testing.assert_allclose(load_or_train_router(ROWS, cache_dir=tmp_path).route("printer jam").confidence,
                               first.route("printer jam").confidence, atol=1e-12)
