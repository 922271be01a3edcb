"""The router's fitted TF-IDF features and logistic regressions, applied without scikit-learn.

For one Slack message, ``TfidfVectorizer.transform`` and ``predict_proba``
spend most of their ~1 ms validating inputs (array checks, dataframe
detection, parameter validation), not computing: the arithmetic is a few
hundred dictionary lookups and a small dot product. :class:`CompiledFeatures`
and :class:`LinearScorer` do the same arithmetic from the fitted attributes
(``vocabulary_``, ``idf_``, ``coef_``, ``intercept_``), so the results are
scikit-learn's to floating-point rounding (``tests/test_router_fast_path.py``
holds them to 1e-9 on the whole dataset).

They keep plain data only (dicts, NumPy arrays, the analyzers' settings), and split text into n-grams as
scikit-learn's ``char_wb`` and ``word`` analyzers do, so a compiled router unpickles without importing
scikit-learn: about a second of every start-up on a small machine.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

__all__ = ["CompiledFeatures", "LinearScorer", "softmax_rows"]

_WHITE_SPACES = re.compile(r"\s\s+")  # as scikit-learn's char_wb analyzer


def _char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, each word padded with a space (scikit-learn's ``char_wb``)."""
    ngrams: list[str] = []
    append = ngrams.append
    for word in _WHITE_SPACES.sub(" ", text).split():
        word = f" {word} "
        length = len(word)
        for n in range(low, high + 1):
            offset = 0
            append(word[offset:offset + n])
            while offset + n < length:
                offset += 1
                append(word[offset:offset + n])
            if offset == 0:  # a short word is counted once
                break
    return ngrams


def _word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    """Word n-grams from ``low`` to ``high`` words (scikit-learn's ``word`` analyzer without stop words)."""
    if high == 1:
        return tokens
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
        for i in range(len(tokens) - n + 1):
            grams.append(" ".join(tokens[i:i + n]))
    return grams


class _Vectorizer:
    """One fitted ``TfidfVectorizer``: how it splits text, its vocabulary and idf weights, at a column offset."""

    def __init__(self, fitted: Any, offset: int) -> None:
        if fitted.norm != "l2" or not fitted.use_idf or fitted.binary:
            raise ValueError("only l2-normalised TF-IDF without binary counts is compiled")
        if fitted.analyzer not in ("char_wb", "word") or fitted.preprocessor is not None \
                or fitted.tokenizer is not None or fitted.strip_accents or fitted.stop_words is not None \
                or fitted.input != "content":
            raise ValueError("only char_wb and word analyzers without custom steps or stop words are compiled")
        self.kind = fitted.analyzer
        self.ngram_range = tuple(fitted.ngram_range)
        self.lowercase = bool(fitted.lowercase)
        self.token_pattern = re.compile(fitted.token_pattern) if self.kind == "word" else None
        self.vocabulary: dict[str, int] = fitted.vocabulary_  # the fitted dict itself: no second copy in memory
        self.idf = np.asarray(fitted.idf_, dtype=np.float64)
        self.sublinear = bool(fitted.sublinear_tf)
        self.offset = offset
        self.width = len(self.idf)

    def analyze(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        low, high = self.ngram_range
        if self.kind == "char_wb":
            return _char_wb_ngrams(text, low, high)
        return _word_ngrams(self.token_pattern.findall(text), low, high)

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
    """A fitted multinomial ``LogisticRegression``'s classes and weights, laid out for sparse rows."""

    def __init__(self, model: Any) -> None:
        if len(model.classes_) < 3:
            raise ValueError("only multinomial (3 or more classes) logistic regression is compiled")
        self.classes = [str(label) for label in model.classes_]
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
