"""The answer engine: one pipeline for Slack, ``itbot chat``, ``itbot ask`` and ``itbot eval``.

normalise -> redact secrets -> route -> decide -> retrieve -> compose (KB or model)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from llm import compose
from llm.errors import ModelError
from llm.kb import Article, KnowledgeBase, load_kb
from llm.normalize import MAX_INPUT_CHARS, normalize_slack_text, truncate
from llm.org import OrgProfile
from llm.policy import CLARIFY_THRESHOLD, Decision, Turn, decide
from llm.redact import redact
from llm.retrieval import Retriever
from llm.router import IntentRouter, Route, load_or_train_router
from llm.taxonomy import IT_INTENTS, Action

__all__ = ["EngineConfig", "Source", "Answer", "AnswerEngine", "Generator", "build_engine", "Turn"]

log = logging.getLogger(__name__)


class Generator(Protocol):
    """A text generator the engine can hand grounded prompts to (see ``llm.service``)."""

    name: str

    def generate(self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None = None) -> str:
        """Return the assistant reply; raise :class:`~llm.errors.ModelError` on failure."""
        ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine needs from the settings."""

    kb_dir: Path
    train_files: tuple[Path, ...]
    cache_dir: Path | None
    org: OrgProfile = field(default_factory=OrgProfile)
    answer_mode: str = "kb"
    clarify_threshold: float = CLARIFY_THRESHOLD
    hybrid_min_retrieval: float = 6.0


@dataclass(frozen=True, slots=True)
class Source:
    """A knowledge-base article an answer is based on."""

    id: str
    title: str


@dataclass(slots=True)
class Answer:
    """The engine's reply to one message."""

    text: str  # the user's message, normalised and redacted: safe to store and log
    intent: str
    confidence: float
    action: str
    answer: str
    sources: list[Source]
    latency_ms: float
    choices: list[str] = field(default_factory=list)
    platform: str | None = None
    redacted: tuple[str, ...] = ()
    truncated: bool = False
    generated_by: str = "kb"
    notice: str | None = None
    reason: str = ""
    grounding: list[str] = field(default_factory=list)  # ids of the articles a model would be given

    def public(self) -> dict:
        """The fields of ``itbot ask --json`` and of evaluation results."""
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "action": self.action,
            "answer": self.answer,
            "sources": [s.title for s in self.sources],
            "latency_ms": round(self.latency_ms, 2),
        }


class AnswerEngine:
    """Routes, decides and answers. Thread-safe: it holds no per-request state."""

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        router: IntentRouter,
        org: OrgProfile,
        answer_mode: str = "kb",
        generator: Generator | None = None,
        clarify_threshold: float = CLARIFY_THRESHOLD,
        hybrid_min_retrieval: float = 6.0,
    ) -> None:
        self.kb = kb
        self.router = router
        self.org = org
        self.answer_mode = answer_mode
        self.generator = generator
        self.clarify_threshold = clarify_threshold
        self.hybrid_min_retrieval = hybrid_min_retrieval
        self.retriever = Retriever(kb)

    def answer(
        self,
        text: str,
        history: Sequence[Turn] = (),
        *,
        mode: str | None = None,
        on_token: Callable[[str], None] | None = None,
        route: Route | None = None,
    ) -> Answer:
        """Answer one user message in the context of ``history``.

        Args:
            text: The raw message (Slack formatting allowed).
            history: Earlier turns of the conversation, oldest first.
            mode: Override of the configured answer mode (``kb``, ``llm``, ``hybrid``).
            on_token: Called with each generated piece of text when a model answers.
            route: A known route (gold labels when building reference answers) instead of the router's.
        """
        started = time.perf_counter()
        clean, truncated = truncate(normalize_slack_text(text))
        redaction = redact(clean)
        safe = redaction.text
        if route is None and not safe.strip():
            route = Route(intent="vague", label="vague", confidence=1.0, ranked=(("vague", 1.0),))
        elif route is None:
            route = self.router.route(safe)
        decision = decide(safe, route, history, threshold=self.clarify_threshold)
        reply = self._compose(safe, decision, route, history, mode or self.answer_mode, on_token)
        if redaction.password_shared:
            reply.answer = f"{compose.password_warning(self.org)}\n\n{reply.answer}"
        if truncated:
            reply.answer = f"{compose.truncation_note(MAX_INPUT_CHARS)}\n\n{reply.answer}"
        reply.text = safe
        reply.redacted = redaction.kinds
        reply.truncated = truncated
        reply.latency_ms = (time.perf_counter() - started) * 1000
        return reply

    # -- composition -------------------------------------------------------------------------

    def _compose(
        self,
        text: str,
        decision: Decision,
        route: Route,
        history: Sequence[Turn],
        mode: str,
        on_token: Callable[[str], None] | None,
    ) -> Answer:
        org = self.org

        def reply(action: Action, body: str, sources: list[Article] = (), choices: list[str] = ()) -> Answer:
            return Answer(
                text=text, intent=decision.intent, confidence=decision.confidence, action=action.value, answer=body,
                sources=[Source(a.id, a.render_title(org)) for a in sources], latency_ms=0.0, choices=list(choices),
                platform=decision.platform, reason=decision.reason,
            )

        if decision.action is Action.REJECT:
            return reply(Action.REJECT, compose.reject_text(org, injection=decision.reason == "prompt injection",
                                                                  harmful=decision.reason == "harmful request"))
        if decision.action is Action.CLARIFY:
            reason = {"greeting": "greeting", "solved": "solved"}.get(decision.reason, "vague")
            choices = [] if reason == "solved" else self._choices(route, greeting=reason == "greeting")
            return reply(Action.CLARIFY, compose.clarify_text(org, reason=reason, choices=choices), choices=choices)
        if decision.action is Action.ESCALATE:
            article = None
            if decision.reason == "needs a human now":
                hits = self.retriever.search(text, intent=decision.intent, platform=decision.platform, limit=1)
                article = hits[0].article if hits and hits[0].article.intent == decision.intent else None
            sources = [article] if article else []
            return reply(Action.ESCALATE, compose.escalate_text(org, reason=decision.reason, article=article), sources)

        query = text if not decision.follow_up else " ".join([t.text for t in history if t.role == "user"][-2:] + [text])
        hits = self.retriever.search(query, intent=decision.intent, platform=decision.platform, exclude=decision.exclude)
        hits = [h for h in hits if h.article.intent == decision.intent] or hits
        if not hits or (decision.exclude and hits[0].article.intent != decision.intent):
            escalation = Decision(Action.ESCALATE, decision.intent, decision.confidence, "repeated failure")
            return self._compose(text, escalation, route, history, mode, on_token)
        article = hits[0].article
        answer = reply(Action.ANSWER, compose.answer_text(article, org, reason=decision.reason,
                                                          platform=decision.platform), [article])
        grounding = [h.article for h in hits[:2]]
        answer.grounding = [a.id for a in grounding]
        use_model = mode == "llm" or (mode == "hybrid" and self.retriever.best_raw_score(query) < self.hybrid_min_retrieval)
        if use_model:
            self._generate_into(answer, text, grounding, history, on_token)
        return answer

    def _generate_into(
        self,
        answer: Answer,
        text: str,
        articles: list[Article],
        history: Sequence[Turn],
        on_token: Callable[[str], None] | None,
    ) -> None:
        """Replace the KB answer with a grounded generation; keep the KB answer if the model fails."""
        from llm.prompting import build_messages

        if self.generator is None:
            answer.notice = "The language model is not loaded, so here are the curated steps."
            return
        messages = build_messages(text, articles, self.org,
                                  history=[(t.role, t.text) for t in history[-4:]])
        try:
            generated = self.generator.generate(messages, on_token=on_token)
        except ModelError as error:
            log.warning("model failed, answering from the knowledge base: %s", error)
            answer.notice = "The language model is busy or unavailable right now, so here are the curated steps."
            return
        if generated.strip():
            answer.answer = generated.strip()
            answer.sources = [Source(a.id, a.render_title(self.org)) for a in articles]
            answer.generated_by = self.generator.name

    def _choices(self, route: Route, *, greeting: bool) -> list[str]:
        if greeting:
            return list(compose.DEFAULT_CHOICES)
        ranked = [intent for intent, _ in route.ranked if intent in IT_INTENTS]
        return (ranked + [c for c in compose.DEFAULT_CHOICES if c not in ranked])[:4]


def build_engine(config: EngineConfig, *, generator: Generator | None = None) -> AnswerEngine:
    """Load the knowledge base and the (cached) router, and assemble the engine."""
    from data.utterances import read_jsonl
    from llm.embedder import SentenceEmbedder

    kb = load_kb(config.kb_dir)
    rows = [row for path in config.train_files for row in read_jsonl(path)]
    router = load_or_train_router(rows, cache_dir=config.cache_dir, embedder=SentenceEmbedder())
    return AnswerEngine(
        kb=kb, router=router, org=config.org, answer_mode=config.answer_mode, generator=generator,
        clarify_threshold=config.clarify_threshold, hybrid_min_retrieval=config.hybrid_min_retrieval,
    )
