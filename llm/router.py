"""Route a question to an intent with a calibrated confidence.

A linear classifier over TF-IDF character n-grams (robust to typos and
slang) and word n-grams, trained on the train split. Probabilities come from
multinomial logistic regression; ``bench/router_calibration.py`` reports how
well they are calibrated. Labels may carry an ``__escalate`` suffix (same
intent, needs a human now); :class:`Route` reports both.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.normalize import normalize_slack_text

__all__ = ["Route", "IntentRouter", "train_router", "load_or_train_router"]

log = logging.getLogger(__name__)
_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Route:
    """Where a question goes."""

    intent: str
    label: str
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # intents by probability, best first

    @property
    def urgent(self) -> bool:
        """True when the classifier says this needs a human now."""
        return self.label.endswith("__escalate")


class IntentRouter:
    """A fitted classifier with a small, dependency-free interface."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self._labels: list[str] = list(pipeline.classes_)

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def route(self, text: str) -> Route:
        """Classify one (normalised or raw Slack) message."""
        return self.route_many([text])[0]

    def route_many(self, texts: list[str]) -> list[Route]:
        cleaned = [normalize_slack_text(t).lower() for t in texts]
        probabilities = self._pipeline.predict_proba(cleaned)
        routes = []
        for row in probabilities:
            by_intent: dict[str, float] = {}
            for label, p in zip(self._labels, row):
                intent = label.partition("__")[0]
                by_intent[intent] = by_intent.get(intent, 0.0) + float(p)
            ranked = tuple(sorted(by_intent.items(), key=lambda item: -item[1]))
            best_label = self._labels[int(row.argmax())]
            intent, confidence = ranked[0]
            label = best_label if best_label.partition("__")[0] == intent else intent
            routes.append(Route(intent=intent, label=label, confidence=confidence, ranked=ranked))
        return routes


def _build_pipeline(c: float = 20.0) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")),
        ]
    )
    return Pipeline([("features", features), ("classifier", LogisticRegression(C=c, max_iter=2000))])


def train_router(texts: list[str], labels: list[str], *, c: float = 20.0) -> IntentRouter:
    """Fit a router on labelled texts."""
    pipeline = _build_pipeline(c)
    pipeline.fit([normalize_slack_text(t).lower() for t in texts], labels)
    return IntentRouter(pipeline)


def load_or_train_router(rows: list[dict], *, cache_dir: Path | None) -> IntentRouter:
    """Load the router for this exact training data from the cache, or train and cache it.

    The cache key is a hash of the training rows and library versions, so
    editing the data or upgrading scikit-learn retrains automatically.
    """
    import sklearn

    texts = [row["text"] for row in rows]
    labels = [row["label"] for row in rows]
    digest = hashlib.sha256(
        repr((_FORMAT_VERSION, sklearn.__version__, texts, labels)).encode("utf-8")
    ).hexdigest()[:16]
    path = cache_dir / f"router-{digest}.pkl" if cache_dir else None
    if path is not None and path.is_file():
        try:
            with path.open("rb") as handle:
                return IntentRouter(pickle.load(handle))
        except Exception:  # a corrupt or foreign cache file is rebuilt, never fatal
            log.warning("router cache %s unreadable; retraining", path)
    router = train_router(texts, labels)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                pickle.dump(router._pipeline, handle)
            tmp.replace(path)
        except OSError as error:
            log.warning("could not cache the router in %s (%s)", path.parent, error.strerror)
    return router
