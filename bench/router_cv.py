"""Choose router changes by cross-validation on the train split, never on the held-out splits.

Usage::

    .venv/bin/python bench/router_cv.py                 # every variant -> bench/results/router_cv.json
    .venv/bin/python bench/router_cv.py shipped full    # only the named variants

5 folds, stratified by label and grouped by near-duplicates (``data.splits``),
so no reworded copy of a question is both trained on and scored. Each variant
trains both router stages per fold and is scored like the engine: intent
accuracy of the router alone, and intent accuracy and out-of-scope F1 after the
refusal rules of ``answers.policy``. The validation split is useless for choosing
(its errors guided train-only data) and the test split must stay a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from answers.router import (  # noqa: E402
    CASCADE_THRESHOLD, CLASS_WEIGHT, DEFAULT_C, NEIGHBOUR_WEIGHT, _classifier, neighbour_votes,
)

# name -> settings; "shipped" is what answers/router.py trains
VARIANTS: dict[str, dict] = {
    "shipped": {},
    "unweighted": {"class_weight": None},
    "full": {"threshold": 1.01},
    "C=3": {"c": 3.0},
    "C=30": {"c": 30.0},
    "embedding x2": {"alpha": 2.0},
    "kb examples": {"kb_examples": True},
    "bm25 features": {"bm25": 0.3},
    "no knn vote": {"knn": 0},
    "knn vote always": {"knn_unsure_only": False},
    "oos clusters": {"oos_clusters": 4},
}
SHIPPED = {"c": DEFAULT_C, "class_weight": CLASS_WEIGHT, "threshold": CASCADE_THRESHOLD, "alpha": 1.0,
           "knn": True, "knn_unsure_only": True}


class Data:
    """Train split, its embeddings, folds and the engine's refusal verdicts, computed once."""

    def __init__(self) -> None:
        from sklearn.model_selection import StratifiedGroupKFold

        from data import KB_DIR, SPLITS_DIR
        from data.splits import group_near_duplicates
        from data.utterances import read_jsonl
        from answers.embedder import SentenceEmbedder
        from answers.kb import load_kb
        from answers.org import OrgProfile, fill_placeholders
        from answers.policy import looks_like_abuse, looks_like_injection
        from answers.router import _clean

        rows = read_jsonl(SPLITS_DIR / "train.jsonl")
        self.texts = [row["text"] for row in rows]
        self.labels = np.array([row["label"] for row in rows], dtype=object)
        self.intents = np.array([label.partition("__")[0] for label in self.labels], dtype=object)
        self.cleaned = _clean(self.texts)
        self.kb = load_kb(KB_DIR)
        examples = [(fill_placeholders(e, OrgProfile()), a.intent) for a in self.kb.articles for e in a.examples]
        self.kb_cleaned = _clean([text for text, _ in examples])
        self.kb_labels = [label for _, label in examples]
        print(f"embedding {len(self.cleaned) + len(self.kb_cleaned)} lines ...", flush=True)
        embedder = SentenceEmbedder()
        self.embeddings = embedder.encode(self.cleaned)
        self.kb_embeddings = embedder.encode(self.kb_cleaned)
        groups = np.zeros(len(self.texts), dtype=int)
        for number, members in enumerate(group_near_duplicates(self.texts)):
            groups[members] = number
        splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
        self.folds = list(splitter.split(self.texts, self.labels, groups))
        self.refused = np.array([looks_like_injection(t) or looks_like_abuse(t) for t in self.texts])
        self._bm25 = None

    def bm25(self) -> np.ndarray:
        """log(1 + best BM25 score) of each IT intent's articles, and of all, per line."""
        if self._bm25 is None:
            from answers.retrieval import Retriever, tokenize
            from answers.taxonomy import IT_INTENTS

            retriever = Retriever(self.kb)
            owner = np.array([IT_INTENTS.index(a.intent) for a in self.kb.articles])
            scores = np.zeros((len(self.cleaned), len(IT_INTENTS) + 1))
            for row, text in enumerate(self.cleaned):
                terms = tokenize(text)
                if terms:
                    raw = np.array(retriever.bm25(terms))
                    scores[row, :-1] = [raw[owner == k].max() for k in range(len(IT_INTENTS))]
                    scores[row, -1] = raw.max()
            self._bm25 = np.log1p(scores)
        return self._bm25


def _by_intent(probabilities: np.ndarray, classes) -> tuple[np.ndarray, list[str]]:
    names = sorted({str(c).partition("__")[0] for c in classes})
    fold = np.zeros((len(classes), len(names)))
    for i, c in enumerate(classes):
        fold[i, names.index(str(c).partition("__")[0])] = 1.0
    return probabilities @ fold, names


def _train_labels(data: Data, clusters: int) -> np.ndarray:
    labels = data.labels.copy()
    if clusters:
        from sklearn.cluster import KMeans

        members = np.where(data.intents == "out_of_scope")[0]
        found = KMeans(clusters, n_init=10, random_state=0).fit(data.embeddings[members]).labels_
        labels[members] = [f"out_of_scope__k{k}" for k in found]
    return labels


def run(data: Data, settings: dict, errors: list | None = None) -> dict:
    from scipy.sparse import csr_matrix, hstack

    from answers.router import _features

    s = {**SHIPPED, **settings}
    labels = _train_labels(data, s.get("oos_clusters", 0))
    predicted = np.empty(len(data.texts), dtype=object)
    for train, held in data.folds:
        texts = [data.cleaned[i] for i in train]
        targets = list(labels[train])
        dense = data.embeddings[train]
        if s.get("kb_examples"):
            texts += data.kb_cleaned
            targets += data.kb_labels
            dense = np.vstack([dense, data.kb_embeddings])
        features = _features()
        sparse = features.fit_transform(texts)
        sparse_held = features.transform([data.cleaned[i] for i in held])
        if s.get("bm25"):
            sparse = hstack([sparse, csr_matrix(data.bm25()[train] * s["bm25"])]).tocsr()
            sparse_held = hstack([sparse_held, csr_matrix(data.bm25()[held] * s["bm25"])]).tocsr()
        fast = _classifier(s["c"], s["class_weight"]).fit(sparse, targets)
        p_fast, names = _by_intent(fast.predict_proba(sparse_held), fast.classes_)
        full = _classifier(s["c"], s["class_weight"]).fit(hstack([sparse, csr_matrix(dense * s["alpha"])]).tocsr(), targets)
        held_full = hstack([sparse_held, csr_matrix(data.embeddings[held] * s["alpha"])]).tocsr()
        p_full, _ = _by_intent(full.predict_proba(held_full), full.classes_)
        p = np.where((p_fast.max(1) < s["threshold"])[:, None], p_full, p_fast)
        if s.get("knn"):
            votes = neighbour_votes(data.embeddings[held], dense, np.searchsorted(full.classes_, targets),
                                    len(full.classes_))
            mixed = (1 - NEIGHBOUR_WEIGHT) * p + NEIGHBOUR_WEIGHT * _by_intent(votes, full.classes_)[0]
            p = np.where((p_fast.max(1) < s["threshold"])[:, None], mixed, p) if s.get("knn_unsure_only") else mixed
        predicted[held] = np.array(names, dtype=object)[p.argmax(1)]
    engine = np.where(data.refused, "out_of_scope", predicted)
    gold_oos, said_oos = data.intents == "out_of_scope", engine == "out_of_scope"
    if errors is not None:
        errors.extend({"text": data.texts[i], "label": str(data.labels[i]), "predicted": str(engine[i])}
                      for i in np.where(engine != data.intents)[0])
    tp = int((gold_oos & said_oos).sum())
    f1 = 2 * tp / max(int(gold_oos.sum() + said_oos.sum()), 1)
    return {"router_intent_accuracy": round(float((predicted == data.intents).mean()), 4),
            "engine_intent_accuracy": round(float((engine == data.intents).mean()), 4),
            "engine_out_of_scope_f1": round(f1, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"variants to run (default: all): {', '.join(VARIANTS)}")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "router_cv.json")
    parser.add_argument("--errors", type=Path, help="also write the first variant's misrouted train lines here (JSONL)")
    args = parser.parse_args(argv)
    names = args.variants or list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from: {', '.join(VARIANTS)}")
    data = Data()
    results = {"n": len(data.texts), "folds": 5, "shipped": SHIPPED, "variants": {}}
    errors: list[dict] = []
    for name in names:
        started = time.perf_counter()
        results["variants"][name] = figures = run(data, VARIANTS[name], errors if name == names[0] else None)
        print(f"{name:>14}: router {figures['router_intent_accuracy']:.4f}  engine {figures['engine_intent_accuracy']:.4f}"
              f"  out-of-scope F1 {figures['engine_out_of_scope_f1']:.4f}  ({time.perf_counter() - started:.0f} s)",
              flush=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.errors:
        args.errors.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors), encoding="utf-8")
        print(f"{len(errors)} misrouted lines of {names[0]!r} -> {args.errors}")
    print(f"wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
