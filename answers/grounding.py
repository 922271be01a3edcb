"""The grounding guard: a generated answer may state only what its sources say.

A small model paraphrases well and invents confidently: an app "by Sony", "ask
on a Reddit forum", a "Work tab" in Outlook. The guard does not judge prose; it
takes the checkable details out of a generated answer (:mod:`answers.claims`:
URLs, emails, phone numbers, numbers, commands, menu paths, labels, names) and
looks each one up in the sources (the prompt: the articles with the
organisation's details filled in, earlier turns) and in the user's own words.

One changed character is enough to fail: URLs, emails and commands must appear
as they are (the scheme aside; a shorter URL that leads to a source's is fine),
phone numbers digit for digit, numbers as they are. Menu paths must appear as
one path. Labels and names are matched without regard to case against the
sources' own labels (bold, quoted, headings) and the user's message, and as
written elsewhere in the sources' text, where an occurrence at the start of a
sentence does not count: "Work" is supported where a source writes "Work
Offline", not by "Work through these steps". A word the user typed supports a
name unless it is an ordinary word of the knowledge base ("it doesn't work" is
no Work tab, "figma" is the user's app).

:class:`Grounding` indexes the sources once for several checks (the final
answer and the streamed preview, :class:`GuardedStream`); the knowledge base's
:func:`~answers.claims.vocabulary` is computed once, by the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from answers.claims import (
    ALLOWED_NAMES, Claim, Vocabulary, at_sentence_start, digits, extract_claims, facts, squash, unify, url_key,
)

__all__ = ["GroundingResult", "Grounding", "GuardedStream", "check_grounding"]

_BREAK = re.compile(r"\n|[.!?](?=\s)\s*")  # where a streamed preview may pause: the end of a line or sentence


@dataclass(frozen=True, slots=True)
class GroundingResult:
    """What the guard found: the details no source supports, and how many it checked."""

    unsupported: tuple[Claim, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.unsupported


class Grounding:
    """The sources of one answer, indexed once: :meth:`check` a generated text against them.

    Args:
        sources: What the model was given: the articles (rendered), the organisation's details, earlier turns.
        question: The user's message (and earlier user turns): details the user named are fine to repeat.
        known: The knowledge base's :func:`~answers.claims.vocabulary`: its product names are checked at the start
            of a sentence too, and its ordinary words are not taken for a name the user gave ("it doesn't work" is
            no Work tab).
    """

    def __init__(self, sources: Sequence[str], question: str = "", *, known: Vocabulary = Vocabulary()) -> None:
        self.names = known.names
        self._ordinary = known.words
        joined = "\n\n".join(unify(s) for s in sources)
        self._text = squash(joined)
        self._lower = self._text.lower()
        self._question_cased = squash(question)
        self._question = self._question_cased.lower()
        self._facts = facts(f"{joined}\n\n{question}")

    def check(self, answer: str) -> GroundingResult:
        """Every checkable detail of ``answer`` that neither the sources nor the question support."""
        claims = extract_claims(answer, names=self.names)
        unsupported = tuple(claim for claim in claims if not self.supports(claim))
        return GroundingResult(unsupported=unsupported, checked=len(claims))

    def supports(self, claim: Claim) -> bool:
        """Whether a source (or the question) states ``claim``."""
        kind, text = claim.kind, claim.text
        if kind == "url":
            key = url_key(text)
            return any(known == key or known.startswith(key + "/") for known in self._facts.urls)
        if kind == "email":
            return text.lower() in self._facts.emails
        if kind == "phone":  # the same number, with or without its country or area code
            number = digits(text)
            return any(known.endswith(number) or number.endswith(known) for known in self._facts.phones)
        if kind == "number":
            return text in self._facts.numbers
        if kind == "command":
            command = squash(text).lower()
            return self._phrase(command, self._lower) or self._phrase(command, self._question)
        if kind == "path":
            return self._path(text)
        return self._label(squash(text), name=kind == "name")

    @staticmethod
    def _phrase(phrase: str, text: str) -> bool:
        if not phrase:
            return True
        return re.search(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])", text) is not None

    def _named(self, phrase: str) -> bool:
        """Whether the sources write ``phrase`` as written, somewhere other than at the start of a sentence."""
        pattern = re.compile(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])")
        return any(not at_sentence_start(self._text, m.start(), headings=False) for m in pattern.finditer(self._text))

    def _asked(self, phrase: str) -> bool:
        """Whether the user named ``phrase``: as written, or in any case when it is no ordinary word of the sources
        ("figma" is the user's app; "work" in "it doesn't work" is not a Work tab)."""
        if self._phrase(phrase, self._question_cased):
            return True
        lower = phrase.lower()
        return self._phrase(lower, self._question) and not self._phrase(lower, self._text) and not all(
            word in self._ordinary for word in lower.split())

    def _label(self, label: str, *, name: bool) -> bool:
        lower = label.lower()
        if (lower in self._facts.labels or self._asked(label) or self._named(label)
                or (len(label.split()) >= 2 and self._phrase(lower, self._lower))):
            return True
        if not name:
            return False
        if label.islower() and self._phrase(label, self._lower):  # "outlook", as a product written in lower case
            return True
        return all(w.lower() in ALLOWED_NAMES or self._named(w) or self._asked(w) for w in label.split())

    def _path(self, path: str) -> bool:
        """A menu path the sources write the same way; its ends may carry a word or two of the sentence."""
        parts = [p.strip() for p in path.lower().split(" > ")]
        if any(not p for p in parts):
            return False
        if self._phrase(" > ".join(parts), self._lower) or self._phrase(" > ".join(parts), self._question):
            return True
        first, last = parts[0].split(), parts[-1].split()
        middle = parts[1:-1]
        for i in range(len(first)):
            for j in range(1, len(last) + 1):
                candidate = " > ".join([" ".join(first[i:]), *middle, " ".join(last[:j])])
                if self._phrase(candidate, self._lower):
                    return True
        return False


def check_grounding(answer: str, sources: Sequence[str], question: str = "", *,
                    known: Vocabulary = Vocabulary()) -> GroundingResult:
    """Check a generated answer against its sources: ``result.ok`` when every checkable detail is supported.

    Args:
        answer: The generated answer.
        sources: The texts the answer must come from (rendered articles, the organisation's details).
        question: The user's message.
        known: The knowledge base's :func:`~answers.claims.vocabulary`.
    """
    return Grounding(sources, question, known=known).check(answer)


class GuardedStream:
    """Passes a model's streamed text on a sentence at a time, and only while the text so far is grounded.

    The preview a user watches must not show what the final check would withhold: text is held back until its
    sentence or line ends and everything so far passes; from the first unsupported detail on, nothing more is
    passed (the final answer, or the curated steps, replace the preview).
    """

    def __init__(self, on_token: Callable[[str], None], grounding: Grounding) -> None:
        self._on_token, self._grounding = on_token, grounding
        self._text = ""
        self._shown = 0
        self.blocked = False

    def __call__(self, piece: str) -> None:
        if self.blocked:
            return
        self._text += piece
        end = max((m.end() for m in _BREAK.finditer(self._text, self._shown)), default=0)
        if end <= self._shown:
            return
        if not self._grounding.check(self._text[:end]).ok:
            self.blocked = True
            return
        self._on_token(self._text[self._shown:end])
        self._shown = end
