"""Find the knowledge-base article that answers a question.

Two signals, fused per article:

* **dense**: MiniLM sentence embeddings of each article's title (with its
  keywords), each example question and each body passage; an article scores
  its best unit, so a long article is found by the section that answers.
* **sentence**: for the organisation's own articles, the best cosine with one
  sentence or step of the body: whether the article says what the question
  asks, not only what it is about (the scope decision reads it).
* **lexical**: Okapi BM25 over the article's title, keywords and examples
  (weighted up) and its body; it catches product names and error codes that an
  embedding blurs.

The unit embeddings depend only on the KB's content, so they are cached under
the content hash and rebuilt when an article changes. ``Retriever.search``
returns plain :class:`Hit` records with the scores the scope decision uses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from answers.kb import Article, KnowledgeBase
from answers.normalize import expand_shorthand
from answers.org import OrgProfile, fill_placeholders

__all__ = ["Hit", "IndexVectors", "Retriever", "tokenize", "INDEX_VERSION", "ADAPTER_PATH", "adapt", "load_adapter",
           "question_text"]

log = logging.getLogger(__name__)
INDEX_VERSION = 3  # bump when the units change, so cached indexes rebuild

_WORD = re.compile(r"[a-z0-9]+")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_STOP = frozenset(
    "a an and are as at be but by can do does for from get got has have how i i'm im in is it its me my no not of "
    "on or our please pls so that the their them then there this to u up us was we what when where which who why "
    "will with won't you your".split()
)
# Words that say something is wrong but not what: a match on them alone is no evidence of a topic.
GENERIC = frozenset((
    "work working worked broken broke problem issue error errors still again fix fixed help stopped stop keep keeps "
    "need want thing stuff something anything everything nothing doesn don didn isn wasn won cant can't wont dont "
    "ok okay hi hello thanks thank pls plz yes yeah back same new use using used try tried trying go going get "
    "getting know see look today now just really also any all some one wrong right properly happened anymore weird "
    "strange odd mess messed bad dead died dying".split()))
# Words for what someone wants done, not for what it is done in: "book" a meeting room is not the travel-booking
# article's business. They still count towards a match, but never make an article "name" the question's system.
ACTIONS = frozenset((
    "book booking booked reserve reservation request requested order ordered submit submitted apply cancel cancelled "
    "change changed make create add remove delete move find check show look give take put send sent".split()))
ANCHOR_DF = 3  # a word used by at most this many articles names what they are about
TITLE_ANCHOR_DF = 8  # ... or by at most this many (or this share of them), when it is in the article's title,
TITLE_ANCHOR_SHARE = 0.15  # topic or keywords: the article is about what the word names
ANCHOR_WEIGHT = 0.25  # bonus for sharing such words with the question, full at ANCHOR_FULL of IDF mass
ANCHOR_FULL = 3.0

# Fusion weights: dense similarity is in [-1, 1]; BM25 is squashed to [0, 1) by score / (score + BM25_HALF).
BM25_WEIGHT = 0.35
BM25_HALF = 8.0
PLATFORM_STEP = 0.2  # an article for the user's platform up, one for another platform down
UNIT_WEIGHTS = {"title": 1.0, "example": 1.0, "passage": 0.95}
SENTENCE_WORDS = 3  # shorter lines ("Open **Settings**.") say too little to stand alone
# The query adapter (training/query_adapter.py): a 384 x 384 matrix that leans a question's vector towards reading
# "which task" before it meets the organisation's articles' sentences. Its cosines run lower than the encoder's, and
# the fit's lines were chosen on the encoder's: they are lifted by ADAPTER_LIFT. Development sets, each company
# with the adapter learnt without it: a lift of 0.08 / 0.10 / 0.12 answered 434 / 438 / 440 of 480 covered questions
# right, 45 / 49 / 56 of 240 uncovered ones (7 / 9 / 15 of 161 about systems nothing covers) and 46 / 54 / 67 of 3,850
# everyday questions from a company article, against 431, 43 (5) and 99 without the adapter.
ADAPTER_PATH = Path(__file__).resolve().parent / "query_adapter.npy"
ADAPTER_LIFT = 0.10
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*+]|#+)\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


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
    """An article and how well it matches a question."""

    article: Article
    score: float  # fused score, plus any preference the caller gave (topic, platform)
    dense: float = 0.0  # best cosine similarity of the question with one of the article's units
    lexical: float = 0.0  # raw BM25
    passage: int = -1  # index of the best-matching passage (-1: the title or an example matched best)
    anchored: float = 0.0  # IDF mass of the question's distinctive words (used by few articles) this article has
    content: bool = False  # the article shares a word with the question beyond "broken", "help", "again"...
    names: bool = False  # its title, topic or keywords name something the question names ("FabID", "Keeper")
    coverage: float = 0.0  # share of the question's own words (not "broken", "help", "again") the article uses
    sentence: float = -1.0  # best cosine with one sentence of an organisation's article's body (-1: not indexed)


def load_adapter(path: Path | None = ADAPTER_PATH) -> np.ndarray | None:
    """The query adapter's matrix (float32), or None when there is none at ``path``."""
    if path is None or not path.is_file():
        return None
    try:
        weights = np.load(path).astype(np.float32)
    except (OSError, ValueError) as error:
        log.warning("query adapter %s unreadable (%s); sentences are matched without it", path, error)
        return None
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        log.warning("query adapter %s is not a square matrix (%s); sentences are matched without it", path,
                    "x".join(map(str, weights.shape)))
        return None
    return weights


def adapt(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Question vectors (one, or one per row) read through the query adapter ``weights``: ``normalize(v + v W)``."""
    moved = vectors + vectors @ weights
    return moved / np.linalg.norm(moved, axis=-1, keepdims=True)


def question_text(text: str) -> str:
    """What the encoder reads of a (redacted) question: chat shorthand written out, lower case."""
    return expand_shorthand(text).lower()


@dataclass(frozen=True, slots=True)
class IndexVectors:
    """The dense index's vectors (what the query adapter learns against): each unit weighted as ranking weighs it,
    the organisation's articles' sentences, and the knowledge-base position of the article each belongs to."""

    units: np.ndarray
    unit_owner: np.ndarray
    sentences: np.ndarray
    sentence_owner: np.ndarray


def _units(article: Article, org: OrgProfile) -> list[tuple[str, str, int]]:
    """What dense retrieval embeds for one article: (kind, text, passage index)."""
    title = fill_placeholders(article.title, org)
    # an organisation's own topic ("expenses") is how people name the problem: it joins the title
    topic = f"{article.topic}: " if article.intent is None and article.topic.lower() not in title.lower() else ""
    units = [("title", topic + title + (f" ({', '.join(article.keywords[:8])})" if article.keywords else ""), -1)]
    units += [("example", fill_placeholders(e, org), -1) for e in article.examples]
    for i, passage in enumerate(article.passages):
        heading = f"{passage.heading}. " if passage.heading else ""
        units.append(("passage", f"{title}. {heading}{fill_placeholders(passage.text, org)}", i))
    return units


def _sentences(article: Article, org: OrgProfile) -> list[str]:
    """An article's sentences, steps and headings, one per line or sentence, without list or heading marks."""
    sentences = []
    for line in fill_placeholders(article.body, org).splitlines():
        for part in _SENTENCE_END.split(_LIST_MARK.sub("", line).strip()):
            if len(part.split()) >= SENTENCE_WORDS:
                sentences.append(part)
    return sentences


class Retriever:
    """Dense + BM25 index over a knowledge base."""

    def __init__(self, kb: KnowledgeBase, *, embedder: Any | None = None, cache_dir: Path | None = None,
                 org: OrgProfile | None = None, k1: float = 1.4, b: float = 0.6,
                 adapter: np.ndarray | None = None) -> None:
        self._kb = kb
        dimension = getattr(embedder, "dimension", None)
        if adapter is not None and dimension is not None and adapter.shape[0] != dimension:
            log.warning("the query adapter is %dx%d but the encoder's vectors have %d values; sentences are matched "
                        "without it", *adapter.shape, dimension)
            adapter = None
        self._adapter = adapter
        self._k1, self._b = k1, b
        self._embedder = embedder
        org = org or OrgProfile()
        self._docs: list[Counter[str]] = []
        self._named: list[frozenset[str]] = [
            frozenset(tokenize(" ".join((article.title, article.topic, *article.keywords)))) for article in kb.articles]
        for article in kb.articles:
            weighted = (
                tokenize(article.title) * 3
                + tokenize(" ".join(article.keywords)) * 3
                + tokenize(" ".join(article.examples)) * 2
                + tokenize(_PLACEHOLDER.sub(" ", article.body))
            )
            self._docs.append(Counter(weighted))
        self._lengths = [sum(doc.values()) for doc in self._docs]
        self._avg = sum(self._lengths) / max(len(self._lengths), 1)
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        n = len(self._docs)
        self._df = dict(frequency)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}
        self.vocabulary = frozenset(frequency)
        self._owner = np.zeros(0, dtype=np.int32)
        self._passage = np.zeros(0, dtype=np.int32)
        self._unit_weight = np.zeros(0, dtype=np.float32)
        self._vectors: np.ndarray | None = None
        self._sentence_owner = np.zeros(0, dtype=np.int32)
        self._sentence_vectors: np.ndarray | None = None
        if embedder is not None:
            self._build_dense(org, cache_dir)

    # -- index -------------------------------------------------------------------------------

    def _build_dense(self, org: OrgProfile, cache_dir: Path | None) -> None:
        owner, passage, weight, texts = [], [], [], []
        for index, article in enumerate(self._kb.articles):
            for kind, text, passage_index in _units(article, org):
                owner.append(index)
                passage.append(passage_index)
                weight.append(UNIT_WEIGHTS[kind])
                texts.append(text)
        units = len(texts)
        # The organisation's own articles: their sentences too (the router knows the built-in ones' topics).
        sentence_owner = []
        for index, article in enumerate(self._kb.articles):
            if article.intent is None:
                for sentence in _sentences(article, org):
                    sentence_owner.append(index)
                    texts.append(sentence)
        self._sentence_owner = np.array(sentence_owner, dtype=np.int32)
        self._owner = np.array(owner, dtype=np.int32)
        self._passage = np.array(passage, dtype=np.int32)
        self._unit_weight = np.array(weight, dtype=np.float32)
        key = hashlib.sha256(repr((INDEX_VERSION, texts)).encode("utf-8")).hexdigest()[:16]
        path = cache_dir / f"kb-index-{self._kb.content_hash}-{key}.npy" if cache_dir else None
        if path is not None and path.is_file():
            try:
                vectors = np.load(path)
                if vectors.shape == (len(texts), self._embedder.dimension):
                    vectors = vectors.astype(np.float32)
                    self._vectors, self._sentence_vectors = vectors[:units], vectors[units:]
                    return
            except (OSError, ValueError):
                pass
            log.warning("knowledge-base index %s unreadable; rebuilding", path)
        log.info("indexing the knowledge base: %d articles, %d passages and questions (cached for next time)",
                 len(self._kb), len(texts))
        vectors = self._embedder.encode(texts)
        self._vectors, self._sentence_vectors = vectors[:units], vectors[units:]
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{id(self)}.tmp.npy")
                np.save(tmp, vectors.astype(np.float16))
                tmp.replace(path)
            except OSError as error:
                log.warning("could not cache the knowledge-base index in %s (%s)", path.parent, error.strerror)

    @property
    def dense(self) -> bool:
        """True when questions are matched by embeddings as well as words."""
        return self._vectors is not None

    @property
    def adapter(self) -> np.ndarray | None:
        """The query adapter the organisation's sentences are read through (None: the encoder alone)."""
        return self._adapter

    def index_vectors(self) -> IndexVectors | None:
        """The index's vectors (None without an embedder)."""
        if self._vectors is None or self._sentence_vectors is None:
            return None
        return IndexVectors(units=self._vectors * self._unit_weight[:, None], unit_owner=self._owner,
                            sentences=self._sentence_vectors, sentence_owner=self._sentence_owner)

    def embed(self, text: str) -> np.ndarray | None:
        """The question's embedding, chat shorthand written out (None without an embedder)."""
        return self._embedder.encode([question_text(text)])[0] if self._embedder is not None else None

    # -- scoring -----------------------------------------------------------------------------

    def bm25(self, terms: list[str]) -> list[float]:
        """Raw BM25 of every article for ``terms``."""
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

    def _dense_scores(self, vector: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._kb.articles)
        best = np.zeros(n, dtype=np.float32)
        passage = np.full(n, -1, dtype=np.int32)
        if self._vectors is None or vector is None or not len(self._vectors):
            return best, passage
        sims = (self._vectors @ vector.astype(np.float32)) * self._unit_weight
        best[:] = -1.0
        order = np.argsort(sims)  # ascending: the last write per article is its best unit
        best[self._owner[order]] = sims[order]
        passage[self._owner[order]] = self._passage[order]
        return best, passage

    def _sentence_scores(self, vector: np.ndarray | None) -> np.ndarray:
        best = np.full(len(self._kb.articles), -1.0, dtype=np.float32)
        if self._sentence_vectors is None or vector is None or not len(self._sentence_vectors):
            return best
        vector = vector.astype(np.float32)
        lift = 0.0
        if self._adapter is not None:
            vector, lift = adapt(vector, self._adapter), ADAPTER_LIFT
        np.maximum.at(best, self._sentence_owner, self._sentence_vectors @ vector + lift)
        return best

    def score(self, query: str, *, vector: np.ndarray | None = None) -> list[Hit]:
        """Every article's match with ``query``, in knowledge-base order (rank them with :meth:`rank`).

        Args:
            query: The user's (normalised) question; chat shorthand is written out here ("pw" is a password to
                the encoder and to the articles' words too).
            vector: Its embedding (see :meth:`embed`); without it only words count.
        """
        query = expand_shorthand(query)
        terms = tokenize(query)
        raw = self.bm25(terms) if terms else [0.0] * len(self._docs)
        top = max(raw, default=0.0) or 1.0
        dense, passages = self._dense_scores(vector)
        sentences = self._sentence_scores(vector)
        distinctive = {t for t in terms if self._df.get(t, 0) and self._df[t] <= ANCHOR_DF
                       and t not in ACTIONS and t not in GENERIC}
        title_limit = max(TITLE_ANCHOR_DF, TITLE_ANCHOR_SHARE * len(self._docs))
        knows = getattr(self._embedder, "knows_word", lambda word: True)
        named = {t for t in terms if t not in GENERIC and t not in ACTIONS and len(t) > 2
                 and 0 < self._df.get(t, 0) <= title_limit
                 and (self._df[t] <= ANCHOR_DF or not knows(t))}  # a name ("FabID"), not a word ("website")
        content = {t for t in terms if t not in GENERIC and len(t) > 1}
        own_words = [t for t in terms if t not in GENERIC and len(t) > 2]
        hits = []
        for i, article in enumerate(self._kb.articles):
            lexical = raw[i] / (raw[i] + BM25_HALF)
            doc = self._docs[i]
            in_title = named & self._named[i]
            anchored = sum(self._idf[t] for t in distinctive | in_title if t in doc)
            score = float(dense[i]) + BM25_WEIGHT * lexical + ANCHOR_WEIGHT * min(anchored / ANCHOR_FULL, 1.0)
            if not self.dense:  # words alone: keep the old relative scale
                score = raw[i] / top
            hits.append(Hit(article=article, score=score, dense=float(dense[i]), lexical=raw[i],
                            passage=int(passages[i]), anchored=anchored, names=bool(in_title),
                            content=any(t in doc for t in content),
                            coverage=sum(t in doc for t in own_words) / len(own_words) if own_words else 0.0,
                            sentence=float(sentences[i])))
        return hits

    def rank(
        self,
        hits: list[Hit],
        *,
        prior: dict[str, float] | None = None,
        platform: str | None = None,
        exclude: frozenset[str] = frozenset(),
        limit: int = 3,
    ) -> list[Hit]:
        """The best of ``hits`` (from :meth:`score`), with the caller's preferences added to their scores.

        Args:
            hits: Scored articles, in knowledge-base order.
            prior: Extra score per article id (the caller's topic preference).
            platform: Preferred platform (``macos``, ``windows``, ...); articles for
                another specific platform are pushed down.
            exclude: Article ids already shown in this conversation.
            limit: How many hits to return.
        """
        ranked = []
        for hit in hits:
            article = hit.article
            if article.id in exclude:
                continue
            score = hit.score
            if prior:
                score += prior.get(article.id, 0.0)
            if platform is not None and "all" not in article.platforms:
                step = PLATFORM_STEP if self.dense else 0.5
                score += step if platform in article.platforms else -step
            ranked.append(replace(hit, score=score))
        ranked.sort(key=lambda h: -h.score)
        return ranked[:limit]

    def search(
        self,
        query: str,
        *,
        vector: np.ndarray | None = None,
        prior: dict[str, float] | None = None,
        platform: str | None = None,
        exclude: frozenset[str] = frozenset(),
        limit: int = 3,
    ) -> list[Hit]:
        """Best articles for ``query``: :meth:`score` then :meth:`rank` (see both for the arguments)."""
        return self.rank(self.score(query, vector=vector), prior=prior, platform=platform, exclude=exclude,
                         limit=limit)

    def best_raw_score(self, query: str) -> float:
        """Unnormalised best BM25 score: how well the KB covers the words at all."""
        terms = tokenize(expand_shorthand(query))
        return max(self.bm25(terms), default=0.0) if terms else 0.0

    def unknown_names(self, query: str) -> list[str]:
        """Words of the question that look like the name of a system the knowledge base does not know.

        A name here is a word of four letters or more that no article uses and that is not an ordinary English word
        (not a whole entry of the sentence encoder's vocabulary): "Zorblax", "Tableau", "DocuSign".
        """
        knows = getattr(self._embedder, "knows_word", None)
        if knows is None:
            return []
        return [t for t in tokenize(expand_shorthand(query))
                if len(t) >= 4 and t.isalpha() and t not in self.vocabulary and t not in GENERIC and not knows(t)]
