"""The knowledge base: Markdown articles with YAML front matter, the unit of what the bot knows.

An IT team drops ``*.md`` files into the KB folder (nested folders allowed) and
restarts: no code, no hand-written utterances, no retraining. Front matter
needs only ``id`` and ``title``; everything else is optional:

``topic``      free text ("virtual desktop"); defaults to ``intent``, then to the
               folder the file sits in. The 18 built-in topics keep their names.
``intent``     one of the built-in IT topics (analytics, clarify buttons)
``platforms``  windows, macos, ios, android, linux, web (default: all)
``keywords``, ``examples``  extra words and example questions for retrieval
``draft``      true keeps the article out of answers
``url``        where the article lives on the intranet (http or https): answers link their sources there
``replaces``   ids of other articles this one stands in for (the built-in Cisco VPN article when yours is
               about GlobalProtect): they are left out while this article is in the folder

The body holds the steps, with ``{placeholders}`` filled from the organisation
profile; ``## `` headings split a long article into passages so retrieval can
find the right section.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llm.errors import KnowledgeBaseError
from answers.org import PLACEHOLDERS, OrgProfile, fill_placeholders
from answers.taxonomy import IT_INTENTS, OTHER_INTENTS

__all__ = ["Article", "Passage", "KnowledgeBase", "load_kb", "check_kb", "parse_article", "PLATFORMS"]

log = logging.getLogger(__name__)

PLATFORMS = frozenset({"all", "windows", "macos", "ios", "android", "linux", "web"})
MAX_TOPIC_CHARS = 64
_FRONT_MATTER = re.compile(r"\A\ufeff?---\s*\n(.*?)\n---\s*\n?(.*)\Z", re.S)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_URL = re.compile(r"^https?://[^\s<>|\"]+$")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_KNOWN_KEYS = frozenset({"id", "title", "topic", "intent", "platforms", "keywords", "examples", "draft", "url",
                         "replaces"})
PASSAGE_WORDS = 120  # sections longer than this are split between steps


@dataclass(frozen=True, slots=True)
class Passage:
    """A section of an article: what dense retrieval matches a question against."""

    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class Article:
    """One knowledge-base article."""

    id: str
    title: str
    body: str
    topic: str = ""
    intent: str | None = None  # the built-in IT topic, when the article has one
    platforms: tuple[str, ...] = ("all",)
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    path: Path | None = None
    draft: bool = False
    url: str | None = None  # the article's page on the intranet, linked from answers
    replaces: tuple[str, ...] = ()  # ids of articles this one stands in for: left out of the knowledge base
    passages: tuple[Passage, ...] = field(default=(), compare=False)

    def render(self, org: OrgProfile) -> str:
        """The article body with the organisation's details filled in."""
        return fill_placeholders(self.body, org)

    def render_title(self, org: OrgProfile) -> str:
        """The title with the organisation's details filled in."""
        return fill_placeholders(self.title, org)


def split_passages(body: str, *, max_words: int = PASSAGE_WORDS) -> tuple[Passage, ...]:
    """Split a body at its headings, and long sections between numbered steps or paragraphs."""
    sections: list[tuple[str, str]] = []
    starts = [(m.start(), m.end(), m.group(1).strip("*_ ")) for m in _HEADING.finditer(body)]
    previous_end, heading = 0, ""
    for start, end, title in starts:
        sections.append((heading, body[previous_end:start]))
        previous_end, heading = end, title
    sections.append((heading, body[previous_end:]))
    passages: list[Passage] = []
    for heading, text in sections:
        text = text.strip()
        if not text:
            continue
        blocks = [b for b in re.split(r"\n(?=\s*\d+[.)]\s)|\n\s*\n", text) if b.strip()]
        current: list[str] = []
        for block in blocks:
            if current and len(" ".join(current + [block]).split()) > max_words:
                passages.append(Passage(heading, "\n".join(current).strip()))
                current = []
            current.append(block.strip())
        if current:
            passages.append(Passage(heading, "\n".join(current).strip()))
    return tuple(passages)


def _strings(meta: dict, key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value] if key != "keywords" else [v for v in value.split(",")]
    if not isinstance(value, list):
        problems.append(f"{where}: '{key}' must be a list")
        return ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def _parse(text: str, path: Path | None, root: Path | None, *,
           strict_keys: bool = False) -> tuple[Article | None, list[str]]:
    """Parse one article; return it (or None) and every problem found, one line each.

    With ``strict_keys`` (``itbot kb check``), unknown front-matter keys are reported too, without failing the
    article (they are ignored when the bot runs).
    """
    where = str(path) if path else "article"
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        return None, [f"{where}: missing front matter: start the file with a '---' line, then 'id:' and 'title:', "
                      "then another '---' line"]
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" near line {mark.line + 2}" if mark is not None else ""
        return None, [f"{where}: front matter is not valid YAML{line} (a ':' inside a title needs quotes)"]
    if not isinstance(meta, dict):
        return None, [f"{where}: front matter must be 'key: value' lines"]
    problems: list[str] = []
    notes: list[str] = []
    unknown_keys = sorted(set(map(str, meta)) - _KNOWN_KEYS) if strict_keys else []
    if unknown_keys:
        notes.append(f"{where}: unknown front matter keys {unknown_keys} (ignored; known: "
                     f"{', '.join(sorted(_KNOWN_KEYS))})")
    for key in ("id", "title"):
        if not str(meta.get(key) or "").strip():
            problems.append(f"{where}: front matter needs '{key}'")
    intent = str(meta.get("intent") or "").strip() or None
    topic = str(meta.get("topic") or "").strip()
    if intent is not None and intent not in IT_INTENTS:
        if intent in OTHER_INTENTS:
            problems.append(f"{where}: intent {intent!r} is not an IT topic; use one of {list(IT_INTENTS)} "
                            "or a free-text 'topic'")
        topic, intent = topic or intent, None  # an unknown intent is simply the article's own topic
    if not topic:
        folder = path.parent.name if path is not None and root is not None and path.parent != root else ""
        topic = intent or folder or "general"
    if intent is None and topic in IT_INTENTS:
        intent = topic
    if len(topic) > MAX_TOPIC_CHARS:
        problems.append(f"{where}: topic is longer than {MAX_TOPIC_CHARS} characters")
    platforms = tuple(p.lower() for p in _strings(meta, "platforms", where, problems)) or ("all",)
    unknown = set(platforms) - PLATFORMS
    if unknown:
        problems.append(f"{where}: unknown platforms {sorted(unknown)}; use {sorted(PLATFORMS)}")
    body = match.group(2).strip()
    if not body:
        problems.append(f"{where}: the article has no body: write the steps under the front matter")
    bad = {name for name in _PLACEHOLDER.findall(body + str(meta.get("title"))) if name not in PLACEHOLDERS}
    if bad:
        problems.append(f"{where}: unknown placeholders {sorted(bad)}; known: {sorted(PLACEHOLDERS)}")
    keywords = tuple(k.lower() for k in _strings(meta, "keywords", where, problems))
    examples = _strings(meta, "examples", where, problems)
    replaces = _strings(meta, "replaces", where, problems)
    url = str(meta.get("url") or "").strip() or None
    if url is not None and not _URL.match(url):
        problems.append(f"{where}: url must be an http:// or https:// address without spaces, got {url[:60]!r}")
    if problems:
        return None, problems + notes
    article = Article(
        id=str(meta["id"]).strip(), title=str(meta["title"]).strip(), body=body, topic=topic, intent=intent,
        platforms=platforms, keywords=keywords, examples=examples, path=path, draft=bool(meta.get("draft", False)),
        url=url, replaces=replaces, passages=split_passages(body),
    )
    return article, notes


def parse_article(text: str, *, path: Path | None = None, root: Path | None = None) -> Article:
    """Parse one article file; raise :class:`KnowledgeBaseError` naming the file and the first problem."""
    article, problems = _parse(text, path, root)
    if article is None:
        raise KnowledgeBaseError(problems[0])
    return article


class KnowledgeBase:
    """All articles, indexed by id, with a hash of their content."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = articles
        self._by_id: dict[str, Article] = {}
        for article in articles:
            if article.id in self._by_id:
                raise KnowledgeBaseError(f"duplicate article id {article.id!r} ({article.path})")
            self._by_id[article.id] = article
        digest = hashlib.sha256()
        for a in articles:
            digest.update(repr((a.id, a.title, a.topic, a.intent, a.platforms, a.keywords, a.examples,
                                a.body, a.url)).encode("utf-8"))
        self.content_hash = digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.articles)

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def for_intent(self, intent: str) -> list[Article]:
        """Articles of a built-in topic."""
        return [a for a in self.articles if a.intent == intent]

    def topics(self) -> list[str]:
        """Every topic, in first-seen order."""
        return list(dict.fromkeys(a.topic for a in self.articles))


def _read_folder(directory: Path, *, strict_keys: bool = False) -> tuple[list[Article], list[str]]:
    articles: list[Article] = []
    problems: list[str] = []
    seen: dict[str, Path | None] = {}
    for path in sorted(directory.rglob("*.md")):
        if any(part.startswith(".") for part in path.relative_to(directory).parts) or path.name.lower() == "readme.md":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path}: not UTF-8 text; save it as UTF-8")
            continue
        except OSError as error:
            problems.append(f"{path}: cannot be read ({error.strerror})")
            continue
        article, found = _parse(text, path, directory, strict_keys=strict_keys)
        problems.extend(found)
        if article is None:
            continue
        if article.id in seen:
            problems.append(f"{path}: id {article.id!r} is already used by {seen[article.id]}")
            continue
        seen[article.id] = path
        articles.append(article)
    articles, unknown = _without_replaced(articles)
    if strict_keys:  # `itbot kb check`: a line each
        problems.extend(unknown)
    else:  # the bot runs: a warning each (nothing is left out for them)
        for line in unknown:
            log.warning("knowledge base: %s", line)
    return articles, problems


def _without_replaced(articles: list[Article]) -> tuple[list[Article], list[str]]:
    """The articles no other one replaces (``replaces:``), and a line for each replaced id that no article has."""
    ids = {a.id for a in articles}
    replaced, unknown = set(), []
    for article in articles:
        if article.draft:
            continue  # a draft replaces nothing until it is published
        for other in article.replaces:
            if other == article.id or other not in ids:
                unknown.append(f"{article.path or article.id}: replaces {other!r}, but no other article has that id "
                               "(nothing is left out)")
            else:
                replaced.add(other)
    return [a for a in articles if a.id not in replaced], unknown


def check_kb(directory: Path) -> tuple[int, list[str]]:
    """Validate a KB folder: the number of valid articles and one line per problem."""
    if not directory.is_dir():
        return 0, [f"{directory}: no such folder"]
    articles, problems = _read_folder(directory, strict_keys=True)
    if not articles and not problems:
        problems.append(f"{directory}: no articles (*.md files) found")
    return len(articles), problems


def load_kb(directory: Path, *, include_drafts: bool = False, strict: bool = True) -> KnowledgeBase:
    """Load every ``*.md`` article under ``directory`` (sorted, so order is stable).

    Args:
        directory: The KB folder; nested folders are read too (``README.md`` and hidden folders are skipped).
        include_drafts: Keep articles marked ``draft: true``.
        strict: Raise on the first broken article. When False (``itbot run``), a broken article is skipped with
            a warning naming the file, so one typo never takes the bot down.
    """
    if not directory.is_dir():
        raise KnowledgeBaseError(f"knowledge base folder {directory} does not exist (set ITBOT_KB_DIR)")
    articles, problems = _read_folder(directory)
    if problems and strict:
        raise KnowledgeBaseError(problems[0] + (f" (and {len(problems) - 1} more: run itbot kb check)"
                                                if len(problems) > 1 else ""))
    for problem in problems:
        log.warning("knowledge base: skipped %s", problem)
    articles = [a for a in articles if include_drafts or not a.draft]
    if not articles:
        raise KnowledgeBaseError(f"knowledge base folder {directory} has no articles")
    return KnowledgeBase(articles)
