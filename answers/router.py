"""Route a question to an intent with a calibrated confidence.

Two stages, both multinomial logistic regression trained on the train split:

1. *fast*: TF-IDF character n-grams (robust to typos and slang) and word
   n-grams; a fraction of a millisecond per question (applied through
   :mod:`answers.linear`, not scikit-learn's per-call validation).
2. *full*: the same features plus a MiniLM sentence embedding
   (:mod:`answers.embedder`), which generalises to paraphrases; about 12 ms on a
   laptop core, so it runs only when the fast stage is unsure. Its
   probabilities are blended with a vote of the question's nearest training
   lines in embedding space (free once the embedding exists).

Labels may carry an ``__escalate`` suffix (same intent, needs a human now);
:class:`Route` reports both. ``bench/router_bench.py`` measures accuracy,
calibration and latency of each stage.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from answers.linear import CompiledFeatures, LinearScorer
from answers.normalize import normalize_slack_text

__all__ = ["Route", "IntentRouter", "train_router", "load_or_train_router", "CASCADE_THRESHOLD", "URGENT_SHARE"]

log = logging.getLogger(__name__)
_FORMAT_VERSION = 6  # bump when training changes, so cached routers retrain
_COMPILED_VERSION = 1  # bump when the compiled classes change, so their cache files are rebuilt
CASCADE_THRESHOLD = 0.70
URGENT_SHARE = 0.4
DEFAULT_C = 10.0
# Nearest-neighbour vote of the full stage (bench/router_cv.py, 5-fold cross-validation on the 6,752-line train
# split, against its "no knn vote" variant: engine intent accuracy 0.9122 -> 0.9206, out-of-scope F1 0.8782 -> 0.8916;
# voting on every question instead, not only where the embedding is computed anyway, measures the same).
NEIGHBOURS = 10
NEIGHBOUR_TEMPERATURE = 0.05
NEIGHBOUR_WEIGHT = 0.3
EVERYDAY_NEIGHBOURS = 3  # nearest "not IT" training lines averaged by IntentRouter.everyday_likeness
# Balanced class weights: out-of-scope is the largest and most mixed class, and its size alone pulled
# short IT questions into it (bench/router_cv.py, 5-fold cross-validation on train: out-of-scope F1 0.888 -> 0.901).
CLASS_WEIGHT = "balanced"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a question goes."""

    intent: str
    label: str
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # intents by probability, best first
    stage: str = "fast"
    urgency: float = 0.0  # share of the intent's probability on its "needs a human now" label

    @property
    def urgent(self) -> bool:
        """True when the classifier leans towards "this needs a human now"."""
        return self.urgency >= URGENT_SHARE

    def probability(self, intent: str) -> float:
        """Probability of ``intent`` (0.0 when absent)."""
        return dict(self.ranked).get(intent, 0.0)

    @classmethod
    def certain(cls, intent: str) -> "Route":
        """A route known without the classifier: a topic the user picked, an empty message."""
        return cls(intent=intent, label=intent, confidence=1.0, ranked=((intent, 1.0),))


@dataclass(slots=True)
class _Models:
    features: Any  # fitted FeatureUnion of TF-IDF vectorizers
    fast: Any  # LogisticRegression on TF-IDF features
    full: Any | None  # LogisticRegression on TF-IDF + embedding, or None without an embedder
    memory: np.ndarray | None = None  # training embeddings (float16), for the neighbour vote
    memory_labels: np.ndarray | None = None  # column of each training line's label in the classifiers' classes


@dataclass(slots=True)
class _Compiled:
    """The fitted router as plain data (dicts, arrays, settings): unpickling it imports no scikit-learn."""

    features: CompiledFeatures
    fast: LinearScorer
    full: LinearScorer | None
    memory: np.ndarray | None = None
    memory_labels: np.ndarray | None = None


def _compile(models: _Models) -> _Compiled:
    return _Compiled(CompiledFeatures(models.features), LinearScorer(models.fast),
                     LinearScorer(models.full) if models.full is not None else None, models.memory,
                     models.memory_labels)


# One word for the features, as the training lines spell it: "e-mail" is "email", "pass word" is "password".
_SPELLINGS = re.compile(r"\b(e-mail|pass[- ]word|user[- ]name)(s?)\b")


def _clean(texts: list[str]) -> list[str]:
    return [_SPELLINGS.sub(lambda m: re.sub(r"[- ]", "", m.group(1)) + m.group(2), normalize_slack_text(t).lower())
            for t in texts]


class IntentRouter:
    """A fitted two-stage classifier with a small, dependency-free interface."""

    def __init__(self, models: _Models | _Compiled, *, embedder: Any | None = None,
                 cascade_threshold: float = CASCADE_THRESHOLD, fitted_path: Path | None = None) -> None:
        self._models = models if isinstance(models, _Models) else None  # scikit-learn's, when at hand
        self._fitted_path = fitted_path  # ... or where they are cached
        compiled = _compile(models) if isinstance(models, _Models) else models
        self._as_compiled = compiled
        self._embedder = embedder if compiled.full is not None else None
        self.cascade_threshold = cascade_threshold
        self._labels: list[str] = list(compiled.fast.classes)
        self._compiled = compiled.features
        self._fast = compiled.fast
        self._full = compiled.full
        self._memory_labels = compiled.memory_labels
        self._memory = compiled.memory.astype(np.float32) if compiled.memory is not None else None
        # the memory's "not IT" rows: everyday questions, for everyday_likeness
        self._not_it = self._memory[np.isin(compiled.memory_labels, [
            i for i, label in enumerate(self._labels) if label.partition("__")[0] == "out_of_scope"])] \
            if self._memory is not None and compiled.memory_labels is not None else None

    def fitted_models(self) -> _Models:
        """scikit-learn's fitted models (for tests and benchmarks: answering never needs them)."""
        if self._models is None:
            if self._fitted_path is None:
                raise ValueError("this router was loaded compiled, without its fitted models")
            with self._fitted_path.open("rb") as handle:
                self._models = pickle.load(handle)
        return self._models

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def route(self, text: str, *, dense: np.ndarray | None = None) -> Route:
        """Classify one (raw Slack or normalised) message; ``dense`` is its embedding when the caller has it."""
        return self.route_many([text], dense=None if dense is None else dense[None, :])[0]

    def route_many(self, texts: list[str], *, stage: str = "auto", dense: np.ndarray | None = None) -> list[Route]:
        """Classify many messages.

        Args:
            texts: Messages.
            stage: ``auto`` (fast, then full when unsure), ``fast`` or ``full``.
            dense: Their sentence embeddings, one row each, when already computed.
        """
        cleaned = _clean(texts)
        rows = self._compiled.rows(cleaned)
        probabilities = self._fast.proba(rows)
        stages = ["fast"] * len(texts)
        if self._embedder is not None and self._full is not None and stage != "fast":  # both or neither
            unsure = [i for i, row in enumerate(probabilities) if stage == "full" or row.max() < self.cascade_threshold]
            if unsure:
                vectors = dense[unsure] if dense is not None else self._embedder.encode([cleaned[i] for i in unsure])
                full = self._full.proba([rows[i] for i in unsure], vectors)
                probabilities[unsure] = self._with_neighbour_vote(full, vectors)
                for i in unsure:
                    stages[i] = "full"
        return [self._to_route(row, s) for row, s in zip(probabilities, stages)]

    def everyday_likeness(self, dense: np.ndarray) -> float | None:
        """How close a message is to the everyday questions the router learnt "not IT" from: the mean cosine of its
        :data:`EVERYDAY_NEIGHBOURS` nearest such training lines (None when the router keeps no training lines)."""
        if self._not_it is None or not len(self._not_it):
            return None
        similarity = self._not_it @ dense
        k = min(EVERYDAY_NEIGHBOURS, len(similarity))
        return float(np.partition(similarity, len(similarity) - k)[-k:].mean())

    def _with_neighbour_vote(self, probabilities: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Blend in the vote of the nearest training lines (when the router has them)."""
        if self._memory is None or self._memory_labels is None:
            return probabilities
        votes = neighbour_votes(dense, self._memory, self._memory_labels, probabilities.shape[1])
        return (1 - NEIGHBOUR_WEIGHT) * probabilities + NEIGHBOUR_WEIGHT * votes

    def _to_route(self, row: np.ndarray, stage: str) -> Route:
        by_intent: dict[str, float] = {}
        for label, p in zip(self._labels, row):
            intent = label.partition("__")[0]
            by_intent[intent] = by_intent.get(intent, 0.0) + float(p)
        ranked = tuple(sorted(by_intent.items(), key=lambda item: -item[1]))
        intent, confidence = ranked[0]
        urgent_p = sum(float(p) for label, p in zip(self._labels, row) if label.startswith(f"{intent}__escalate"))
        urgency = urgent_p / confidence if confidence else 0.0
        label = f"{intent}__escalate" if urgency >= URGENT_SHARE else intent
        return Route(intent=intent, label=label, confidence=confidence, ranked=ranked, stage=stage, urgency=urgency)


def neighbour_votes(dense: np.ndarray, memory: np.ndarray, memory_labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Each row's similarity-weighted vote of its :data:`NEIGHBOURS` nearest ``memory`` rows, over ``n_labels`` labels.

    ``memory_labels[j]`` is the label column of memory row ``j``; every row of the result sums to 1.
    """
    similarity = dense @ memory.T
    k = min(NEIGHBOURS, similarity.shape[1])
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    votes = np.zeros((len(dense), n_labels))
    for row, neighbours in enumerate(nearest):
        weights = np.exp((similarity[row, neighbours] - similarity[row, neighbours].max()) / NEIGHBOUR_TEMPERATURE)
        np.add.at(votes[row], memory_labels[neighbours], weights / weights.sum())
    return votes


def _features() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                  token_pattern=r"(?u)\b\w+\b")),
    ])


def _classifier(c: float = DEFAULT_C, class_weight: str | None = CLASS_WEIGHT) -> Any:
    """The logistic regression both stages train (``bench/router_cv.py`` varies its arguments)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight=class_weight)


def train_router(texts: list[str], labels: list[str], *, embedder: Any | None = None, c: float = DEFAULT_C,
                 cascade_threshold: float = CASCADE_THRESHOLD) -> IntentRouter:
    """Fit both stages on labelled texts (the full stage only when an embedder is given)."""
    from scipy.sparse import csr_matrix, hstack

    cleaned = _clean(texts)
    features = _features()
    sparse = features.fit_transform(cleaned)
    fast = _classifier(c).fit(sparse, labels)
    models = _Models(features, fast, None)
    if embedder is not None:
        dense = embedder.encode(cleaned)
        models.full = _classifier(c).fit(hstack([sparse, csr_matrix(dense)]).tocsr(), labels)
        models.memory = dense.astype(np.float16)
        models.memory_labels = np.searchsorted(models.full.classes_, labels)
    return IntentRouter(models, embedder=embedder, cascade_threshold=cascade_threshold)


def load_or_train_router(rows: list[dict], *, cache_dir: Path | None, embedder: Any | None = None) -> IntentRouter:
    """Load the router for this exact training data from the cache, or train and cache it.

    The cache key hashes the training rows, the library versions and whether an
    embedder is used, so editing the data or upgrading scikit-learn retrains. Two files share it: scikit-learn's
    fitted models (``router-<key>.pkl``) and the same as plain data (``router-<key>.compiled<n>.pkl``), which a
    start-up reads without importing scikit-learn (about a second on a small machine).
    """
    from importlib import metadata

    texts = [row["text"] for row in rows]
    labels = [row["label"] for row in rows]
    key = (_FORMAT_VERSION, metadata.version("scikit-learn"), embedder is not None, texts, labels)
    digest = hashlib.sha256(repr(key).encode("utf-8")).hexdigest()[:16]
    path = cache_dir / f"router-{digest}.pkl" if cache_dir else None
    compiled_path = cache_dir / f"router-{digest}.compiled{_COMPILED_VERSION}.pkl" if cache_dir else None
    if compiled_path is not None and compiled_path.is_file():
        try:
            with compiled_path.open("rb") as handle:
                compiled = pickle.load(handle)
            if isinstance(compiled, _Compiled):
                return IntentRouter(compiled, embedder=embedder, fitted_path=path)
        except Exception:  # a corrupt or foreign cache file is rebuilt, never fatal
            pass
        log.warning("router cache %s unreadable; rebuilding it", compiled_path)
    router = None
    if path is not None and path.is_file():
        try:
            with path.open("rb") as handle:
                router = IntentRouter(pickle.load(handle), embedder=embedder, fitted_path=path)
        except Exception:  # a corrupt or foreign cache file is rebuilt, never fatal
            log.warning("router cache %s unreadable; retraining", path)
    if router is None:
        log.info("training the intent router on %d examples (cached for next time)", len(texts))
        router = train_router(texts, labels, embedder=embedder)
        _write(path, router.fitted_models())
    _write(compiled_path, router._as_compiled)
    return router


def _write(path: Path | None, thing: Any) -> None:
    """Pickle ``thing`` to ``path`` atomically; a cache that cannot be written is only a warning."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{id(thing)}.tmp")
        with tmp.open("wb") as handle:
            pickle.dump(thing, handle)
        tmp.replace(path)
    except OSError as error:
        log.warning("could not cache the router in %s (%s)", path.parent, error.strerror)
