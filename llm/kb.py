"""The curated knowledge base: Markdown articles with YAML front matter.

An IT team edits ``data/kb/<intent>/<id>.md`` without touching code. Each
article declares its intent, title, platforms, keywords and example questions;
its body holds numbered steps with ``{placeholders}`` filled from the
organisation profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from llm.errors import KnowledgeBaseError
from llm.org import PLACEHOLDERS, OrgProfile, fill_placeholders
from llm.taxonomy import INTENTS

__all__ = ["Article", "KnowledgeBase", "load_kb", "parse_article", "PLATFORMS"]

PLATFORMS = frozenset({"all", "windows", "macos", "ios", "android", "linux", "web"})
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Article:
    """One knowledge-base article."""

    id: str
    intent: str
    title: str
    platforms: tuple[str, ...]
    keywords: tuple[str, ...]
    examples: tuple[str, ...]
    body: str
    path: Path | None = None
    draft: bool = False

    def render(self, org: OrgProfile) -> str:
        """The article body with the organisation's details filled in."""
        return fill_placeholders(self.body, org)

    def render_title(self, org: OrgProfile) -> str:
        """The title with the organisation's details filled in."""
        return fill_placeholders(self.title, org)


def parse_article(text: str, *, path: Path | None = None) -> Article:
    """Parse one article file; raise :class:`KnowledgeBaseError` naming the file and the problem."""
    where = str(path) if path else "article"
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        raise KnowledgeBaseError(f"{where}: missing front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise KnowledgeBaseError(f"{where}: front matter is not valid YAML ({error.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise KnowledgeBaseError(f"{where}: front matter must be a mapping")
    for key in ("id", "intent", "title"):
        if not str(meta.get(key) or "").strip():
            raise KnowledgeBaseError(f"{where}: front matter needs '{key}'")
    if meta["intent"] not in INTENTS:
        raise KnowledgeBaseError(f"{where}: intent {meta['intent']!r} is not in the taxonomy")
    platforms = tuple(str(p).lower() for p in meta.get("platforms") or ["all"])
    unknown = set(platforms) - PLATFORMS
    if unknown:
        raise KnowledgeBaseError(f"{where}: unknown platforms {sorted(unknown)}; use {sorted(PLATFORMS)}")
    body = match.group(2).strip()
    bad = {name for name in _PLACEHOLDER.findall(body + str(meta.get("title"))) if name not in PLACEHOLDERS}
    if bad:
        raise KnowledgeBaseError(f"{where}: unknown placeholders {sorted(bad)}; known: {sorted(PLACEHOLDERS)}")
    return Article(
        id=str(meta["id"]).strip(),
        intent=str(meta["intent"]),
        title=str(meta["title"]).strip(),
        platforms=platforms,
        keywords=tuple(str(k).lower() for k in meta.get("keywords") or ()),
        examples=tuple(str(e) for e in meta.get("examples") or ()),
        body=body,
        path=path,
        draft=bool(meta.get("draft", False)),
    )


class KnowledgeBase:
    """All articles, indexed by id and by intent."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = articles
        self._by_id: dict[str, Article] = {}
        for article in articles:
            if article.id in self._by_id:
                raise KnowledgeBaseError(f"duplicate article id {article.id!r} ({article.path})")
            self._by_id[article.id] = article

    def __len__(self) -> int:
        return len(self.articles)

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def for_intent(self, intent: str) -> list[Article]:
        return [a for a in self.articles if a.intent == intent]


def load_kb(directory: Path, *, include_drafts: bool = False) -> KnowledgeBase:
    """Load every ``*.md`` article under ``directory`` (sorted, so order is stable)."""
    if not directory.is_dir():
        raise KnowledgeBaseError(f"knowledge base folder {directory} does not exist (set ITBOT_KB_DIR)")
    articles = [parse_article(p.read_text(encoding="utf-8"), path=p) for p in sorted(directory.rglob("*.md"))]
    articles = [a for a in articles if include_drafts or not a.draft]
    if not articles:
        raise KnowledgeBaseError(f"knowledge base folder {directory} has no articles")
    return KnowledgeBase(articles)
