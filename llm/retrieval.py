"""Find the knowledge-base articles that answer a question.

Okapi BM25 over each article's title, keywords and example questions (weighted
up) and its body, boosted for the routed intent and the user's platform.
Pure Python: the KB has tens of articles, and a query takes well under a
millisecond.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from llm.kb import Article, KnowledgeBase

__all__ = ["Hit", "Retriever", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be but by can do does for from get got has have how i i'm im in is it its me my no not of "
    "on or our please pls so that the their them then there this to u up us was we what when where which who why "
    "will with won't you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stop words, with a light plural strip."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


@dataclass(frozen=True, slots=True)
class Hit:
    """An article and how well it matches."""

    article: Article
    score: float


class Retriever:
    """BM25 index over a knowledge base."""

    def __init__(self, kb: KnowledgeBase, *, k1: float = 1.4, b: float = 0.6) -> None:
        self._kb = kb
        self._k1, self._b = k1, b
        self._docs: list[Counter[str]] = []
        for article in kb.articles:
            weighted = (
                tokenize(article.title) * 3
                + tokenize(" ".join(article.keywords)) * 3
                + tokenize(" ".join(article.examples)) * 2
                + tokenize(article.body)
            )
            self._docs.append(Counter(weighted))
        self._lengths = [sum(doc.values()) for doc in self._docs]
        self._avg = sum(self._lengths) / max(len(self._lengths), 1)
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        n = len(self._docs)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def _bm25(self, terms: list[str]) -> list[float]:
        scores = []
        for doc, length in zip(self._docs, self._lengths):
            score = 0.0
            norm = self._k1 * (1 - self._b + self._b * length / self._avg)
            for term in terms:
                tf = doc.get(term)
                if tf:
                    score += self._idf[term] * tf * (self._k1 + 1) / (tf + norm)
            scores.append(score)
        return scores

    def search(
        self,
        query: str,
        *,
        intent: str | None = None,
        platform: str | None = None,
        exclude: frozenset[str] = frozenset(),
        limit: int = 3,
    ) -> list[Hit]:
        """Best articles for ``query``.

        Args:
            query: The user's (normalised) question.
            intent: Routed intent; articles of it are strongly preferred, others
                only come back when they match the words much better.
            platform: Preferred platform (``macos``, ``windows``, ...); articles for
                another specific platform are pushed down.
            exclude: Article ids already shown in this conversation.
            limit: How many hits to return.
        """
        terms = tokenize(query)
        raw = self._bm25(terms) if terms else [0.0] * len(self._docs)
        top = max(raw) if raw else 0.0
        hits = []
        for article, score in zip(self._kb.articles, raw):
            if article.id in exclude:
                continue
            relative = score / top if top > 0 else 0.0
            boosted = relative
            if intent is not None:
                boosted += 1.0 if article.intent == intent else 0.0
            if platform is not None and "all" not in article.platforms:
                boosted += 0.5 if platform in article.platforms else -0.5
            hits.append(Hit(article=article, score=boosted))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def best_raw_score(self, query: str) -> float:
        """Unnormalised best BM25 score: how well the KB covers the words at all."""
        terms = tokenize(query)
        return max(self._bm25(terms), default=0.0) if terms else 0.0
