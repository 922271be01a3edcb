"""The router's fitted TF-IDF features and logistic regressions, applied without scikit-learn's per-call overhead.

For one Slack message, ``TfidfVectorizer.transform`` and ``predict_proba``
spend most of their ~1 ms validating inputs (array checks, dataframe
detection, parameter validation), not computing: the arithmetic is a few
hundred dictionary lookups and a small dot product. :class:`CompiledFeatures`
and :class:`LinearScorer` do the same arithmetic from the fitted attributes
(``vocabulary_``, ``idf_``, ``coef_``, ``intercept_``), so the results are
scikit-learn's to floating-point rounding (``tests/test_router_fast_path.py``
holds them to 1e-9 on the whole dataset).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["CompiledFeatures", "LinearScorer", "softmax_rows"]


class _Vectorizer:
    """One fitted ``TfidfVectorizer``: analyzer, vocabulary and idf weights, at a column offset."""

    def __init__(self, fitted: Any, offset: int) -> None:
        if fitted.norm != "l2" or not fitted.use_idf or fitted.binary:
            raise ValueError("only l2-normalised TF-IDF without binary counts is compiled")
        self.analyze = fitted.build_analyzer()
        self.vocabulary: dict[str, int] = fitted.vocabulary_  # the fitted dict itself: no second copy in memory
        self.idf = np.asarray(fitted.idf_, dtype=np.float64)
        self.sublinear = bool(fitted.sublinear_tf)
        self.offset = offset
        self.width = len(self.idf)

    def row(self, text: str) -> tuple[list[int], list[float]]:
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for term in self.analyze(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return [], []
        columns = sorted(counts)
        values = [(1.0 + math.log(counts[c]) if self.sublinear else float(counts[c])) * self.idf[c] for c in columns]
        norm = math.sqrt(sum(v * v for v in values))
        return [c + self.offset for c in columns], [v / norm for v in values]


class CompiledFeatures:
    """A fitted ``FeatureUnion`` of ``TfidfVectorizer`` s, as a fast function from texts to sparse rows."""

    def __init__(self, union: Any) -> None:
        self._parts: list[_Vectorizer] = []
        offset = 0
        for _, fitted in union.transformer_list:
            part = _Vectorizer(fitted, offset)
            self._parts.append(part)
            offset += part.width
        self.width = offset

    def rows(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's non-zero (columns, values), columns ascending."""
        out = []
        for text in texts:
            columns: list[int] = []
            values: list[float] = []
            for part in self._parts:
                c, v = part.row(text)
                columns += c
                values += v
            out.append((np.asarray(columns, dtype=np.int64), np.asarray(values, dtype=np.float64)))
        return out


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class LinearScorer:
    """A fitted multinomial ``LogisticRegression``'s weights, laid out for sparse rows."""

    def __init__(self, model: Any) -> None:
        if len(model.classes_) < 3:
            raise ValueError("only multinomial (3 or more classes) logistic regression is compiled")
        self.coef = np.asarray(model.coef_, dtype=np.float64)  # classes x features, shared with the model: no copy
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)

    def proba(self, rows: list[tuple[np.ndarray, np.ndarray]], dense: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of sparse ``rows``, each optionally followed by a ``dense`` block of columns."""
        scores = np.tile(self.intercept, (len(rows), 1))
        for i, (columns, values) in enumerate(rows):
            if len(columns):
                scores[i] += self.coef[:, columns] @ values
        if dense is not None:
            start = self.coef.shape[1] - dense.shape[1]
            scores += np.asarray(dense, dtype=np.float64) @ self.coef[:, start:].T
        return softmax_rows(scores)
