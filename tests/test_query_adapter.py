"""A company's articles are read through the query adapter, learnt on development companies only."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from answers.kb import load_kb
from answers.retrieval import ADAPTER_PATH, Retriever, load_adapter

REPO = Path(__file__).resolve().parents[1]

SHIFTS = """---
id: acme-shift-swap
title: Swap a shift with a colleague in ShiftBox
topic: rota
---
ShiftBox is where your rota lives.

1. Open **ShiftBox**, tap the shift you cannot work and choose **Offer swap**.
2. Pick the colleague who takes it, or **Anyone on my team** to post it to the team.
3. The swap shows **Pending** until your manager approves it; you get a notification either way.
"""

PAYSLIPS = """---
id: acme-payslips
title: Find your payslip in the HR portal
topic: pay
---
Payslips are published on the last working day of the month.

1. Sign in to the **HR portal** and open **Pay > Payslips**.
2. Download the PDF; older payslips are under **Archive**.
"""


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adapter-kb")
    (folder / "shifts.md").write_text(SHIFTS, encoding="utf-8")
    (folder / "pay.md").write_text(PAYSLIPS, encoding="utf-8")
    return folder


def test_the_adapter_is_learnt_from_the_development_companies_and_never_a_held_out_one():
    from bench import public_bench
    from data.org_sets import HELD_OUT, ORG_SETS
    from training.query_adapter import DEV_SETS

    assert public_bench.HELD_OUT is HELD_OUT and public_bench.ORG_SETS is ORG_SETS  # what the benchmark holds out

    assert not set(DEV_SETS) & HELD_OUT
    assert set(DEV_SETS) == set(ORG_SETS) - HELD_OUT  # a new development set is learnt from too
    for name, files in DEV_SETS.items():
        assert files == ORG_SETS[name]


def test_the_shipped_adapter_loads_and_the_bot_uses_it_by_default(cache_dir: Path):
    from answers.engine import build_engine
    from bot.settings import Settings

    weights = load_adapter(ADAPTER_PATH)
    assert weights is not None and weights.shape == (384, 384) and weights.dtype == np.float32
    assert 0.0 < np.abs(weights).max() < 1.0  # a lean, not a new space
    settings = Settings(_env_file=None, cache_dir=cache_dir)
    assert build_engine(settings.engine_config()).retriever.adapter is not None
    plain = build_engine(replace(settings.engine_config(), query_adapter=None))
    assert plain.retriever.adapter is None


def test_a_missing_or_broken_adapter_is_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    assert load_adapter(tmp_path / "none.npy") is None
    assert load_adapter(None) is None
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((384, 10), dtype=np.float32))
    with caplog.at_level(logging.WARNING, logger="answers.retrieval"):
        assert load_adapter(broken) is None
        assert load_adapter(wrong) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("unreadable" in m for m in messages) and any("not a square matrix (384x10)" in m for m in messages)


def test_an_adapter_for_another_encoder_is_set_aside_with_a_warning(company: Path, cache_dir: Path,
                                                                   caplog: pytest.LogCaptureFixture):
    from answers.embedder import SentenceEmbedder

    with caplog.at_level(logging.WARNING, logger="answers.retrieval"):
        retriever = Retriever(load_kb(company), embedder=SentenceEmbedder(cache_dir=cache_dir), cache_dir=cache_dir,
                              adapter=np.zeros((256, 256), dtype=np.float32))
    assert retriever.adapter is None
    assert any("256x256" in r.getMessage() and "384 values" in r.getMessage() for r in caplog.records)


def test_only_the_companys_sentences_are_read_through_the_adapter(company: Path, tmp_path: Path, cache_dir: Path):
    from answers.embedder import SentenceEmbedder

    folder = tmp_path / "kb"
    shutil.copytree(REPO / "data" / "kb", folder / "builtin")
    shutil.copytree(company, folder / "ours")
    kb = load_kb(folder)
    embedder = SentenceEmbedder(cache_dir=cache_dir)
    plain = Retriever(kb, embedder=embedder, cache_dir=cache_dir)
    adapted = Retriever(kb, embedder=embedder, cache_dir=cache_dir, adapter=load_adapter())
    question = "can i swap my saturday with someone"
    vector = plain.embed(question)
    before = {h.article.id: h for h in plain.score(question, vector=vector)}
    after = {h.article.id: h for h in adapted.score(question, vector=vector)}
    for article_id, hit in before.items():
        # (the second index comes from the first one's cache, stored in half precision)
        assert after[article_id].dense == pytest.approx(hit.dense, abs=1e-3)
        assert after[article_id].lexical == hit.lexical
        if hit.article.intent is None:  # the company's: its sentences are read through the adapter
            assert after[article_id].sentence != pytest.approx(hit.sentence, abs=1e-3)
        else:  # the built-in articles are not read sentence by sentence at all
            assert after[article_id].sentence == hit.sentence == -1.0


def test_asking_a_colleague_to_work_my_shift_is_answered_from_the_rota_article(company: Path, tmp_path: Path,
                                                                             cache_dir: Path):
    """With the encoder alone these are turned away as not IT (the router learnt "not IT" from everyday questions
    and the article fits them under the covering line); read through the adapter, the rota article answers them.
    Nobody's pay is given shift-swap steps either way."""
    folder = tmp_path / "kb"
    shutil.copytree(REPO / "data" / "kb", folder / "builtin")
    shutil.copytree(company, folder / "ours")
    with_adapter = _engine(folder, cache_dir, adapter=True)
    without = _engine(folder, cache_dir, adapter=False)
    for question in ("can my colleague work my shift on friday instead", "is there a way to give away my monday shift"):
        assert without.answer(question).action == "reject"
        answer = with_adapter.answer(question)
        assert (answer.action, answer.article) == ("answer", "acme-shift-swap"), (question, answer.reason)
    for engine in (with_adapter, without):
        assert engine.answer("what's the weather like tomorrow").action == "reject"
        assert engine.answer("can i change the bank account my pay goes into").article != "acme-shift-swap"


def _engine(folder: Path, cache_dir: Path, *, adapter: bool):
    from answers.engine import build_engine
    from bot.settings import Settings

    config = replace(Settings(_env_file=None, cache_dir=cache_dir).engine_config(), kb_dir=folder)
    return build_engine(config if adapter else replace(config, query_adapter=None))


def test_learning_pulls_a_companys_questions_to_their_article_and_pushes_the_others_away(company: Path,
                                                                                          cache_dir: Path):
    from answers.embedder import SentenceEmbedder
    from training.query_adapter import CompanySet, separation, train

    kb = load_kb(company)
    embedder = SentenceEmbedder(cache_dir=cache_dir)
    retriever = Retriever(kb, embedder=embedder, cache_dir=cache_dir)
    ids = [a.id for a in kb.articles]
    rows = [("can i swap my saturday with someone", ids.index("acme-shift-swap")),
            ("my swap still says pending", ids.index("acme-shift-swap")),
            ("where is my payslip for march", ids.index("acme-payslips")),
            ("how do i book annual leave in shiftbox", -1),  # another task in the same system
            ("can i change my bank details for pay", -1)]
    vectors = np.stack([retriever.embed(text) for text, _ in rows])
    tiny = CompanySet.of("acme", retriever, vectors, np.array([label for _, label in rows]), articles=len(ids))
    assert len(tiny.units) == len(retriever.index_vectors().units)  # both articles are the company's own
    everyday = np.stack([retriever.embed(t) for t in ("what's the weather tomorrow", "play some jazz")])
    weights = train([tiny], everyday)
    assert weights.shape == (384, 384) and np.abs(weights).max() > 0.0
    assert separation(tiny, weights) > separation(tiny, None)


def test_learning_into_a_folder_that_cannot_exist_says_so_in_one_line_at_once(capsys: pytest.CaptureFixture):
    from training.query_adapter import main

    with pytest.raises(SystemExit) as stopped:
        main(["--output", "/proc/no-such-folder/adapter.npy"])
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("query adapter: ") and "/proc/no-such-folder" in error and error.count("\n") == 1
