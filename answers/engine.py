"""The answer engine: one pipeline for Slack, ``itbot chat``, ``itbot ask`` and ``itbot eval``.

normalise -> redact secrets -> route -> decide -> retrieve -> compose (KB or model)
"""

from __future__ import annotations

import heapq
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from answers import compose
from answers.claims import vocabulary
from answers.grounding import Grounding, GuardedStream
from llm.errors import ModelError
from answers.kb import Article, KnowledgeBase, load_kb
from answers.normalize import MAX_INPUT_CHARS, normalize_slack_text, truncate
from answers.org import OrgProfile
from answers.policy import CLARIFY_THRESHOLD, Decision, Evidence, Turn, decide, without_device_aside
from answers.redact import redact
from answers.retrieval import ADAPTER_PATH, Hit, Retriever, load_adapter
from answers.router import IntentRouter, Route, load_or_train_router
from answers.taxonomy import IT_INTENTS, Action

__all__ = ["EngineConfig", "Source", "Answer", "AnswerEngine", "Generator", "build_engine", "Turn", "UNGROUNDED"]

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
    query_adapter: Path | None = ADAPTER_PATH  # None: match the organisation's sentences with the encoder alone


@dataclass(frozen=True, slots=True)
class Source:
    """A knowledge-base article an answer is based on."""

    id: str
    title: str
    url: str | None = None  # the article's intranet page, when the KB gives one


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
    article: str | None = None  # id of the article the answer comes from
    # Details of the model's answer that neither its articles nor the user's message contain (the grounding guard);
    # unless the engine only reports them (``withhold_ungrounded=False``), the curated steps were shown instead.
    ungrounded: tuple[str, ...] = ()

    def public(self) -> dict:
        """The fields of ``itbot ask --json`` and of evaluation results (``intent`` holds the topic)."""
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "action": self.action,
            "answer": self.answer,
            "sources": [s.title for s in self.sources],
            "article": self.article,
            "latency_ms": round(self.latency_ms, 2),
        }


UNGROUNDED = "ungrounded"  # the reason stored with the curated steps shown in place of a withheld model answer
UNGROUNDED_NOTICE = ("The language model's answer mentioned details that are not in our articles, so here are the "
                     "curated steps.")

# A model answers from the one article the curated answer shows: the prompt stays short (about 450 tokens with
# SmolLM2's tokenizer) and is the format the embedded adapter was trained on (training/sft_data.py).
GROUNDING_ARTICLES = 1

# Retrieval-first scope decision (bench/public_bench.py measures these on data written elsewhere).
TOPIC_PRIOR = 0.20  # weight of the router's probability of an article's built-in topic
# Something in the message that looks wrong or asks for a report: without it, an unsure router's phishing guess for
# "there's a problem with my email" gives no bonus (it still wins when confident, or on the words of an article).
_SUSPICION = re.compile(
    r"(?i)\b(phish\w*|scam\w*|spam\w*|fake|fraud\w*|suspicious|sus|weird|strange|odd|off|dodgy|shady|fishy|spoof\w*|"
    r"impersonat\w*|pretend\w*|claim\w*|hack\w*|breach\w*|virus|malware|attack\w*|clicked|click|link|attachment|"
    r"qr|gift cards?|wire|invoice|urgent|verify|report\w*|unknown|random|strangers?|out of the blue|legit\w*|real|"
    r"really|genuine|one of ours|from (you|it|us)|asking (me )?(for|to)|wants? me to|call(ed|er)?|texts?|sms)\b"
)
WORDLESS_MARGIN = 0.15  # cosine by which an article using all the question's words beats a wordless topic article
TERSE_WORDS = 6  # an answer to a message this short offers other topics as buttons, in case it guessed wrong
ROUTER_TRUST = 0.5  # router confidence from which its built-in topic wins (bonus TOPIC_WIN)
TOPIC_WIN = 1.0
NAMED = 3.0  # IDF mass of distinctive words shared with the question from which an article "names the system"
NAMED_WIN = 1.4  # bonus of an organisation's article that names the system: above the router's built-in topic
COVERED = 0.45  # cosine similarity from which a built-in article answers on its own
TOPIC_COVERED = 0.30  # ... an article of the topic the router picked, however unsure
# An organisation's article answers when it fits the question. Its match is cosine similarity plus this weight times
# the share of the question's own words it uses ("book a meeting room" shares only "book" with the travel-booking
# article); its fit, what decides, reads the best single sentence of the article instead of the best unit (does it say
# what the question asks, not only what it is about) and adds the match's lead over the organisation's next article
# (a question that could as well be about two articles is about neither, usually). Chosen in session 14 on five
# companies' sets (docs/answer-engine.md).
COVERAGE_WEIGHT = 0.3
LEAD_CAP = 0.2  # a lead counts up to this much: with few articles of its own, an organisation's leads are all large
OWN_FIT = 0.7  # fit from which an organisation's article covers an IT question
STRONG_FIT = 0.75  # ... from which it makes a message IT whatever the router says
NAMED_STRONG_FIT = 0.7  # ... when it also names the system
OWN_FIRST = 0.85  # ... from which it answers in place of a built-in article that matches better (its own steps)
OWN_SWAP = 0.8  # ... in place of another of the organisation's articles that ranks first (names the same system)
MIGHT_HELP = 0.55  # ... from which a question it does not cover is pointed to it ("the closest article I have")
# ... below which it answers saying it may not be what was asked: on the seven development sets, of the answers from
# an organisation's article with a fit of 0.7-0.8, 14 of 49 were wrong (another article, or a question nothing
# covers); 0.8-0.85: 10 of 42; 0.85-0.9: 5 of 36; from 0.9: 17 of 340 (0.8 until the two sets rich in near misses).
OWN_SURE = 0.85
# OWN_FIRST and OWN_SWAP weigh the best-fitting of the organisation's this many best-matching articles (and a hedged
# answer offers the others among them that come close).
OWN_CANDIDATES = 3
# A message nearer an organisation's article (its best unit) than the router's everyday lines by FAMILIAR_MARGIN is
# covered by it from a fit of FAMILIAR_FIT (session 19, the seven development sets: 425 -> 431 right, 43 -> 44 of 240
# uncovered answered; CLINC150 and the built-in sets unchanged)
FAMILIAR_FIT = 0.5
FAMILIAR_MARGIN = 0.1
EVERYDAY_MARGIN = 0.35  # ... and from this much nearer the everyday questions, it is not IT for sharing words with it
EVERYDAY_SURE_FIT = 0.9  # unless it fits the article this well ("how do i submit expenses")
# A decline names the organisation's article that comes close (fit from MIGHT_HELP) as a button when the message is at
# most this much nearer the everyday questions (development sets: the right article one click away for 6 of the 18
# covered questions declined; a button under 16 of 3,850 everyday questions, 7 of 240 uncovered ones)
POINTER_MARGIN = 0.1


def _match(hit: Hit) -> float:
    """An organisation article's match with a question: cosine plus ``COVERAGE_WEIGHT`` times its word share."""
    return hit.dense + COVERAGE_WEIGHT * hit.coverage


class AnswerEngine:
    """Routes, retrieves, decides and answers. Thread-safe: it holds no per-request state."""

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
        retriever: Retriever | None = None,
        withhold_ungrounded: bool = True,
    ) -> None:
        self.kb = kb
        self.router = router
        self.org = org
        self.answer_mode = answer_mode
        self.generator = generator
        self.clarify_threshold = clarify_threshold
        self.hybrid_min_retrieval = hybrid_min_retrieval
        self.retriever = retriever or Retriever(kb, org=org)
        self.withhold_ungrounded = withhold_ungrounded  # False: show a model's answer anyway, its details reported
        self._topics = {a.topic for a in kb.articles}
        # The KB's product names (Outlook, Cisco, Intune) and ordinary words, for the grounding guard.
        self._vocabulary = vocabulary(f"{a.render_title(org)}\n{a.render(org)}" for a in kb.articles)

    def warm_up(self) -> None:
        """Load the model and compute the prompt's shared rules once (a local ONNX model keeps them), so the first
        question after a start pays only for its article and itself. Raises what the generator raises."""
        if self.generator is None:
            return
        load = getattr(self.generator, "load", None)
        if load is not None:
            load()
        warm = getattr(self.generator, "warm", None)
        if warm is not None:
            from answers.prompts import build_messages

            warm(build_messages("", [], self.org))

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
            route: A known route (a topic the user picked, gold labels) instead of the router's.
        """
        started = time.perf_counter()
        clean, truncated = truncate(normalize_slack_text(text))
        redaction = redact(clean)
        safe = without_device_aside(redaction.text)  # what it asks, without whose phone it was written on
        picked = route is not None
        vector = self.retriever.embed(safe) if safe.strip() else None
        if route is None and not safe.strip():
            route = Route.certain("vague")
        elif route is None:
            route = self.router.route(safe, dense=vector)
        scored = self.retriever.score(safe, vector=vector)  # once per message: ranking below only re-weighs it
        hits = self._rank(scored, route, picked=picked, text=safe)
        evidence = self._evidence(hits, route, safe, scored, vector)
        decision = decide(safe, route, history, threshold=self.clarify_threshold, evidence=evidence)
        if picked and route.intent in self._topics and decision.action is not Action.REJECT \
                and decision.reason != "needs a human now" and not decision.follow_up:
            decision = Decision(Action.ANSWER, route.intent, 1.0, "picked topic", platform=decision.platform)
        # The organisation's article that comes close, named when nothing covers the question or when it is unclear
        # (offered first among the topics to pick: one click to the article a long question just missed).
        closest = hits[0].article if evidence.own and evidence.fit >= MIGHT_HELP else None
        related = closest if decision.reason == "not covered" or (
            decision.action is Action.CLARIFY and decision.reason not in ("greeting", "solved")) or (
            # declined as not IT, though one of the organisation's articles comes close: it may be the company's
            # business in words the router never saw, one click away (not for a plainly everyday question)
            decision.action is Action.REJECT and decision.reason == "out_of_scope"
            and evidence.nearer >= -POINTER_MARGIN) else None
        unsure = hits[0].article if decision.action is Action.ANSWER and evidence.own and evidence.fit < OWN_SURE \
            and not decision.follow_up and decision.reason != "picked topic" else None
        reply = self._compose(safe, decision, route, history, mode or self.answer_mode, on_token, vector, scored,
                              related=related, unsure=unsure,
                              alternatives=self._alternatives(scored, unsure) if unsure is not None else ())
        if redaction.password_shared:
            reply.answer = f"{compose.password_warning(self.org)}\n\n{reply.answer}"
        if truncated:
            reply.answer = f"{compose.truncation_note(MAX_INPUT_CHARS)}\n\n{reply.answer}"
        reply.text = redaction.text
        reply.redacted = redaction.kinds
        reply.truncated = truncated
        reply.latency_ms = (time.perf_counter() - started) * 1000
        return reply

    # -- retrieval ---------------------------------------------------------------------------

    def _bonus(self, hit: Hit, route: Route, it_probability: float, *, suspicious: bool = True,
               exact: float = -1.0) -> float:
        """The router's topic preference for one article.

        A confident router picks the built-in topic. The router knows nothing of the organisation's own topics, so
        their articles compete with its pick on retrieval alone, as far as the router believes the question is IT
        at all, and win when they name the system the question names (distinctive words).
        """
        article = hit.article
        if article.intent is not None:
            # The router's topic names a drawer, not an article: one that uses none of the question's own words gets
            # no bonus when another uses them all (cosine ``exact``) and matches clearly better ("webcam not
            # working": no hardware article mentions a webcam, the meetings camera article does).
            if hit.coverage == 0.0 and exact >= hit.dense + WORDLESS_MARGIN:
                return 0.0
            if article.intent == route.intent and route.confidence >= ROUTER_TRUST:
                return TOPIC_WIN
            if article.intent == "phishing" and not suspicious:
                return 0.0  # the router's faint "phishing" for any email trouble: only when something looks wrong
            # Among IT topics, as the router ranks them even when it thinks the message vague or not IT.
            return TOPIC_PRIOR * route.probability(article.intent) / max(it_probability, 0.05)
        bonus = TOPIC_WIN * min(1.0, it_probability / ROUTER_TRUST)
        return bonus + (NAMED_WIN - TOPIC_WIN if hit.anchored >= NAMED or hit.names else 0.0)

    def _rank(self, scored: list[Hit], route: Route, *, picked: bool = False, platform: str | None = None,
              limit: int = 5, text: str = "") -> list[Hit]:
        """Scored articles, best first, their scores including the router's preference."""
        hits = self.retriever.rank(scored, platform=platform, limit=len(scored))
        if picked:  # a topic the user chose: its articles first, the best match among them
            ranked = [replace(h, score=h.score + (1.0 if route.intent in (h.article.topic, h.article.intent) else 0.0))
                      for h in hits]
        else:
            it_probability = sum(p for intent, p in route.ranked if intent in IT_INTENTS)
            suspicious = bool(_SUSPICION.search(text))
            exact = max((h.dense for h in hits if h.coverage >= 1.0), default=-1.0)  # best that uses all its words
            ranked = [replace(h, score=h.score + self._bonus(h, route, it_probability, suspicious=suspicious,
                                                             exact=exact)) for h in hits]
        ranked.sort(key=lambda h: -h.score)
        if not picked:
            ranked = self._own_first(ranked, scored)
        return ranked[:limit]

    @staticmethod
    def own_fit(best: Hit, scored: Sequence[Hit]) -> float:
        """How well an organisation's article fits a question: its best sentence, the share of the question's words
        it uses, and its lead over the organisation's next best article, up to ``LEAD_CAP``."""
        others = [_match(h) for h in scored if h.article.intent is None and h.article.id != best.article.id]
        if not others:  # the organisation's only article: its lead over the built-in ones
            others = [_match(h) for h in scored if h.article.id != best.article.id]
        lead = min(_match(best) - max(others), LEAD_CAP) if others else 0.0
        sentence = best.sentence if best.sentence > -1.0 else best.dense
        return sentence + COVERAGE_WEIGHT * best.coverage + lead

    def _alternatives(self, scored: Sequence[Hit], answered: Article) -> list[str]:
        """Topics of the organisation's other articles that come close to a question ``answered`` only just fits (of
        its few best matches, those fitting from ``MIGHT_HELP``, on another topic): on the development sets the right
        article was one of them for 5 of the 6 questions answered from a wrong one, and 3 of 71 hedged right answers
        had any."""
        topics: list[str] = []
        for hit in self._best_matching_own(scored, besides=answered.id):
            if hit.article.topic not in (answered.topic, *topics) and self.own_fit(hit, scored) >= MIGHT_HELP:
                topics.append(hit.article.topic)
        return topics

    @staticmethod
    def _best_matching_own(scored: Sequence[Hit], *, besides: str = "") -> list[Hit]:
        """The organisation's ``OWN_CANDIDATES`` articles (other than ``besides``) that match the question best."""
        own = (h for h in scored if h.article.intent is None and h.article.id != besides)
        return heapq.nlargest(OWN_CANDIDATES, own, key=_match)

    def _own_first(self, hits: list[Hit], scored: Sequence[Hit]) -> list[Hit]:
        """The organisation's best-fitting article first when another leads: a built-in article (when it fits very
        well: the organisation's steps name its own portal, VPN client and phone number) or another of its own (when
        it fits well, or covers the question and the one that leads does not)."""
        if not hits or not self.retriever.dense:
            return hits
        candidates = self._best_matching_own(scored)
        if not candidates:
            return hits
        # Of the few it matches best (title, examples, passages), the one whose sentences fit the question best: a
        # question can match the wrong article's units and the right one's sentence ("my lesson swap still says
        # pending" matched the shift-swap article's title, the lesson-swap article says what "pending" means).
        fit, best = max(((self.own_fit(h, scored), h) for h in candidates), key=lambda pair: pair[0])
        if hits[0].article.id == best.article.id:
            return hits
        if hits[0].article.intent is None:
            # Ahead of another of the organisation's articles when it fits well (the ranking's word counts can favour
            # an article that only names the same system), or when it covers the question and that one does not
            # ("been sat available for 20 mins and not had a single call": the CRM article ranked first).
            ahead = fit >= OWN_SWAP or (fit >= OWN_FIT and self.own_fit(hits[0], scored) < OWN_FIT)
        else:  # ahead of a built-in one when it fits very well (the organisation's steps name its own tools)
            ahead = fit >= OWN_FIRST
        if not ahead:
            return hits
        ranked = {h.article.id: h for h in hits}
        return [ranked.get(best.article.id, best)] + [h for h in hits if h.article.id != best.article.id]

    def _evidence(self, hits: list[Hit], route: Route, text: str, scored: Sequence[Hit] = (),
                  vector: np.ndarray | None = None) -> Evidence:
        if not hits:
            return Evidence()
        best = hits[0]
        if not self.retriever.dense:  # words only: BM25; the router decides
            trusted = best.article.intent == route.intent
            return Evidence(topic=best.article.topic, score=best.lexical, covered=trusted or best.lexical >= 12.0,
                            strong=best.lexical >= 12.0, content=best.content)
        trusted = best.article.intent == route.intent and route.confidence >= ROUTER_TRUST
        named = best.anchored >= NAMED or best.names
        # The router learnt the built-in topics, not the organisation's own: for those, the KB's word counts.
        own = best.article.intent is None
        # An article of the router's topic covers the question unless it is hardly related at all.
        on_topic = best.article.intent == route.intent and best.dense >= TOPIC_COVERED
        fit = self.own_fit(best, scored or hits) if own else 0.0
        if own:
            # how much nearer the message is to the article than to the everyday questions the router learnt "not IT"
            # from (negative: nearer those)
            nearer = self._nearer_than_everyday(best, vector)
            familiar = best.content and fit >= FAMILIAR_FIT and nearer >= FAMILIAR_MARGIN
            everyday = fit < EVERYDAY_SURE_FIT and nearer <= -EVERYDAY_MARGIN
            covered = fit >= OWN_FIT or familiar
            strong = familiar or best.content and not everyday and (
                fit >= STRONG_FIT or (named and fit >= NAMED_STRONG_FIT))
        else:
            covered = trusted or on_topic or best.dense >= COVERED
            strong = False
            nearer = 0.0
        return Evidence(topic=best.article.topic, score=best.dense, covered=covered, strong=strong,
                        content=best.content, unknown_name=bool(self.retriever.unknown_names(text)), own=own, fit=fit,
                        nearer=nearer)

    def _nearer_than_everyday(self, best: Hit, vector: np.ndarray | None) -> float:
        """How much nearer (cosine) a message is to the organisation's article ``best`` than to the everyday questions
        the router learnt "not IT" from (the mean of the nearest few); 0.0 when the router keeps none.

        From ``FAMILIAR_MARGIN`` nearer, it is the company's own business ("found 3 crushed boxes while picking, what
        do I do with them"), which the router, never having seen it, calls not IT. From ``EVERYDAY_MARGIN`` farther,
        the words it shares with the article do not make it IT: "what month is my card expired in" shares "card" and
        "expire" with the expenses article, and is one of the everyday questions about one's own bank card."""
        likeness = self.router.everyday_likeness(vector) if vector is not None else None
        return 0.0 if likeness is None else best.dense - likeness

    # -- composition -------------------------------------------------------------------------

    def _compose(
        self,
        text: str,
        decision: Decision,
        route: Route,
        history: Sequence[Turn],
        mode: str,
        on_token: Callable[[str], None] | None,
        vector=None,
        scored: list[Hit] | None = None,
        *,
        related: Article | None = None,
        unsure: Article | None = None,
        alternatives: Sequence[str] = (),
    ) -> Answer:
        """The reply for ``decision``; ``related``: the closest article to a question no article covers or that is
        unclear; ``unsure``: an article that answers it only just (said so when the answer is from it), and
        ``alternatives`` the topics of the organisation's other articles that come close (offered as buttons)."""
        org = self.org
        if scored is None:
            scored = self.retriever.score(text, vector=vector)

        def reply(action: Action, body: str, sources: list[Article] = (), choices: list[str] = (),
                  intent: str | None = None) -> Answer:
            return Answer(
                text=text, intent=intent or decision.intent, confidence=decision.confidence, action=action.value,
                answer=body, sources=[Source(a.id, a.render_title(org), a.url) for a in sources], latency_ms=0.0,
                choices=list(choices), platform=decision.platform, reason=decision.reason,
                article=sources[0].id if action is Action.ANSWER and sources else None,
            )

        if decision.action is Action.REJECT:
            body = compose.reject_text(org, injection=decision.reason == "prompt injection",
                                       harmful=decision.reason == "harmful request",
                                       assistant=decision.reason == "assistant request",
                                       personal=decision.reason == "personal")
            if related is None:
                return reply(Action.REJECT, body)
            pointer = compose.closest_pointer(related.render_title(org), related.topic)
            return reply(Action.REJECT, f"{body}\n\n{pointer}", choices=[related.topic])
        if decision.action is Action.CLARIFY:
            reason = {"greeting": "greeting", "solved": "solved"}.get(decision.reason, "vague")
            choices = [] if reason == "solved" else self._choices(route, greeting=reason == "greeting")
            if related is not None:
                choices = [related.topic] + [c for c in choices if c != related.topic][:3]
            closest = related.render_title(org) if related is not None else None
            return reply(Action.CLARIFY, compose.clarify_text(org, reason=reason, choices=choices, closest=closest),
                         choices=choices)
        if decision.action is Action.ESCALATE:
            article = None
            if decision.reason == "needs a human now":
                hits = self.retriever.rank(scored, prior={
                    a.id: 1.0 for a in self.kb.articles if a.intent == decision.intent}, platform=decision.platform,
                    limit=1)
                article = hits[0].article if hits and hits[0].article.intent == decision.intent else None
            if decision.reason == "not covered":
                closest = related.render_title(org) if related is not None else None
                # its topic as a button: the article's steps one click away (a Markdown article may have no link)
                choices = [related.topic] if related is not None else []
                text = compose.not_covered_text(org, intent=route.intent, closest=closest,
                                                closest_topic=related.topic if related is not None else None)
                return reply(Action.ESCALATE, text, [related] if related is not None else [], choices)
            sources = [article] if article else []
            return reply(Action.ESCALATE, compose.escalate_text(org, reason=decision.reason, article=article), sources)

        query = text if not decision.follow_up else " ".join([t.text for t in history if t.role == "user"][-2:] + [text])
        if decision.follow_up:
            prior = {a.id: 1.0 for a in self.kb.articles if decision.intent in (a.topic, a.intent)}
            query_vector = self.retriever.embed(query) if query != text else vector
            hits = self.retriever.search(query, vector=query_vector, prior=prior, platform=decision.platform,
                                         exclude=decision.exclude, limit=5)
            hits = [h for h in hits if decision.intent in (h.article.topic, h.article.intent)]
        else:
            picked = decision.reason == "picked topic"
            hits = self._rank(scored, route, picked=picked, platform=decision.platform, text=text,
                              limit=len(self.kb) if picked else 5)
            if picked:
                hits = [h for h in hits if decision.intent in (h.article.topic, h.article.intent)][:5] or hits[:5]
        if not hits:
            escalation = Decision(Action.ESCALATE, decision.intent, decision.confidence, "repeated failure")
            return self._compose(text, escalation, route, history, mode, on_token, vector, scored)
        article = hits[0].article
        terse = decision.reason == "terse" or (not decision.follow_up and len(text.split()) <= TERSE_WORDS)
        choices = self._switch_choices(route, article) if terse else []
        hedged = unsure is not None and article.id == unsure.id
        if hedged and alternatives:  # "it may not be exactly what you asked": the other close articles first
            choices = [*alternatives, *(c for c in choices if c not in alternatives)][:3]
        answer = reply(Action.ANSWER, compose.answer_text(article, org, reason=decision.reason,
                                                          platform=decision.platform, unsure=hedged),
                       [article], choices, intent=article.topic)
        grounding = [h.article for h in hits[:GROUNDING_ARTICLES]]
        answer.grounding = [a.id for a in grounding]
        use_model = mode == "llm" or (mode == "hybrid" and self.retriever.best_raw_score(query) < self.hybrid_min_retrieval)
        if use_model:
            self._generate_into(answer, text, grounding, history, on_token)
            if hedged and answer.generated_by != "kb" and not answer.notice:
                answer.notice = compose.UNSURE  # the generated text replaced the lead-in
        return answer

    def _generate_into(
        self,
        answer: Answer,
        text: str,
        articles: list[Article],
        history: Sequence[Turn],
        on_token: Callable[[str], None] | None,
    ) -> None:
        """Replace the KB answer with a grounded generation.

        The KB answer stays, with a notice, when there is no model, when it fails, and when the grounding guard
        (:mod:`answers.grounding`) finds a detail in the generation that neither the articles nor the user's
        message contain.
        """
        from answers.prompts import build_messages

        if self.generator is None:
            answer.notice = "The language model is not loaded, so here are the curated steps."
            return
        messages = build_messages(text, articles, self.org,
                                  history=[(t.role, t.text) for t in history[-4:]])
        grounding = self._grounding(messages)
        stream = GuardedStream(on_token, grounding) if on_token is not None and self.withhold_ungrounded else on_token
        try:
            generated = self.generator.generate(messages, on_token=stream).strip()
        except ModelError as error:
            log.warning("model failed, answering from the knowledge base: %s", error)
            answer.notice = "The language model is busy or unavailable right now, so here are the curated steps."
            return
        if not generated:
            return
        answer.ungrounded = tuple(str(claim) for claim in grounding.check(generated).unsupported)
        if answer.ungrounded and self.withhold_ungrounded:
            log.info("grounding guard withheld the model's answer: %s", ", ".join(answer.ungrounded))
            answer.notice = UNGROUNDED_NOTICE
            answer.reason = UNGROUNDED
            return
        answer.answer = generated
        answer.sources = [Source(a.id, a.render_title(self.org), a.url) for a in articles]
        answer.generated_by = self.generator.name

    def _grounding(self, messages: list[dict[str, str]]) -> Grounding:
        """What a generated answer may draw on: the prompt, the organisation's details, the bot's own offer of a
        person; and the user's words."""
        sources = [m["content"] for m in messages if m["role"] != "user"]
        sources += [*self.org.values().values(), compose.escalate_text(self.org, reason="")]
        question = "\n".join(m["content"] for m in messages if m["role"] == "user")
        return Grounding(sources, question, known=self._vocabulary)

    def _choices(self, route: Route, *, greeting: bool) -> list[str]:
        defaults = [c for c in compose.DEFAULT_CHOICES if c in self._topics] or sorted(self._topics)[:6]
        if greeting:
            return defaults
        ranked = [intent for intent, _ in route.ranked if intent in IT_INTENTS and intent in self._topics]
        return (ranked + [c for c in defaults if c not in ranked])[:4]

    def _switch_choices(self, route: Route, article: Article) -> list[str]:
        """Other likely topics, offered as buttons under an answer to a terse message."""
        return [c for c in self._choices(route, greeting=False) if c != article.topic][:3]


def build_engine(config: EngineConfig, *, generator: Generator | None = None,
                 withhold_ungrounded: bool = True) -> AnswerEngine:
    """Load the knowledge base and the (cached) router, and assemble the engine.

    ``withhold_ungrounded=False`` shows model answers the grounding guard would withhold, with the unsupported
    details in :attr:`Answer.ungrounded` (benchmarks that measure what a model writes).
    """
    from data.utterances import read_jsonl
    from answers.embedder import SentenceEmbedder

    kb = load_kb(config.kb_dir, strict=False)
    from data.public_sets import router_rows

    rows = [row for path in config.train_files for row in read_jsonl(path)] + router_rows()
    embedder = SentenceEmbedder(cache_dir=config.cache_dir)  # ONNX Runtime, exported once into the cache
    router = load_or_train_router(rows, cache_dir=config.cache_dir, embedder=embedder)
    retriever = Retriever(kb, embedder=embedder, cache_dir=config.cache_dir, org=config.org,
                          adapter=load_adapter(config.query_adapter))
    return AnswerEngine(
        kb=kb, router=router, org=config.org, answer_mode=config.answer_mode, generator=generator,
        clarify_threshold=config.clarify_threshold, hybrid_min_retrieval=config.hybrid_min_retrieval,
        retriever=retriever, withhold_ungrounded=withhold_ungrounded,
    )
