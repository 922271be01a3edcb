"""Post-checks on generated text, before it reaches anyone.

Pure functions, applied in this order by :func:`clean_generation`:

1. :func:`strip_markup` drops chat-template leftovers (``<|im_start|>assistant``,
   ``[INST]``, ``</s>``, a leading ``Assistant:``), control characters and
   undecodable bytes, and cuts the text where the model starts writing the next
   user or system turn itself;
2. :func:`cut_at_stop` cuts at the first stop sequence;
3. :func:`cut_repetition` keeps one copy of a looping sentence, line or phrase;
4. :func:`trim_unfinished` drops a sentence cut off by the token limit;
5. :func:`find_credential` refuses the whole answer when it contains something
   that looks like a credential.

Credential policy: refuse, never mask. A masked model answer ("your code is
[REDACTED]") is worse than the curated knowledge-base answer the engine falls
back to, and no legitimate Level 0 answer contains a secret: user messages
are redacted before the model sees them, so a credential in the output is
invented or leaked from somewhere it should not be. To avoid refusing good
answers, the prose patterns of :mod:`answers.redact` ("password: …", "token is …")
only count when the value itself looks like a secret (digits, symbols or
mixed case, at least 6 characters): "your password: choose a passphrase" is fine.
"""

from __future__ import annotations

import re
from typing import Sequence

from answers.redact import MASK, redact

__all__ = [
    "clean_generation",
    "strip_markup",
    "cut_at_stop",
    "cut_repetition",
    "trim_unfinished",
    "find_credential",
]

# The model starts another turn: everything from here on is not part of the answer.
_NEXT_TURN = re.compile(
    r"<\|im_start\|>\s*(?:user|system)\b|<\|start_header_id\|>\s*(?:user|system)\b|<start_of_turn>\s*user\b"
    r"|<\|(?:user|system)\|>|\[INST\]|<<SYS>>|^[ \t]*(?:user|human|system)[ \t]*:"
    r"|<\|im_end\|>|<\|eot_id\|>|<\|endoftext\|>|<end_of_turn>|</s>",
    re.I | re.M,
)
_LEADING_ROLE = re.compile(
    r"\A\s*(?:<s>\s*)?(?:<\|im_start\|>|<\|start_header_id\|>|<start_of_turn>|<\|assistant\|>)?\s*"
    r"(?:assistant|model)?(?:<\|end_header_id\|>)?\s*(?::|\n)",
    re.I,
)
_LEFTOVER = re.compile(r"<\|[a-z_]+\|>|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>", re.I)
_NOISE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")  # control characters, undecodable bytes
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?]+(?=\s|$)|(?=\n)|$)")
_LIST_MARK = re.compile(r"^(?:\d+[.)]|[-*•])\s*")
_WORD = re.compile(r"\S+")
_DANGLING = re.compile(r"(?:\A|\n)[ \t]*(?:\d+[.)]|[-*•])[ \t]*\Z")  # "2." left alone on the last line
_PROSE_KINDS = frozenset({"password", "api_key"})


def clean_generation(text: str, *, stop: Sequence[str] = (), hit_limit: bool = False) -> str | None:
    """Apply every post-check; ``None`` means "do not show this, answer from the KB".

    Args:
        text: The decoded generation (special tokens may or may not be skipped).
        stop: Stop sequences; the text is cut at the first one.
        hit_limit: Generation stopped at ``max_new_tokens`` (an unfinished last sentence is dropped).
    """
    text = cut_at_stop(strip_markup(text), stop)
    text = cut_repetition(text)
    if hit_limit:
        text = trim_unfinished(text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text or find_credential(text):
        return None
    return text


def strip_markup(text: str) -> str:
    """Remove role tags and chat-template tokens; cut where the model starts a new turn."""
    previous = None
    while previous != text:  # "<s> <|im_start|>assistant\nAssistant: …" needs more than one pass
        previous = text
        text = _LEADING_ROLE.sub("", text, count=1) if _LEADING_ROLE.match(text) else text
    match = _NEXT_TURN.search(text)
    if match:
        text = text[:match.start()]
    return _NOISE.sub("", _LEFTOVER.sub("", text)).strip()


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop sequence."""
    cut = min((index for index in (text.find(s) for s in stop if s) if index >= 0), default=len(text))
    return text[:cut]


def _norm(unit: str) -> str:
    return re.sub(r"\s+", " ", _LIST_MARK.sub("", unit.strip())).lower()


def cut_repetition(text: str, *, max_period: int = 4, max_words: int = 12) -> str:
    """Keep one copy of a loop; leave text without loops unchanged.

    Three rules, the earliest cut wins: a run of 1 to ``max_period`` sentences
    repeated three times in a row; any sentence of 12+ characters seen a third
    time; a phrase of up to ``max_words`` words repeated three times in a row
    (four for a single word), as in "click OK click OK click OK".
    """
    cuts = [len(text)]
    units = [(m.start(), _norm(m.group())) for m in _SENTENCE.finditer(text)]
    units = [(start, norm) for start, norm in units if re.search(r"\w", norm)]
    norms = [norm for _, norm in units]
    for i in range(len(units)):
        for p in range(1, max_period + 1):
            if i + 3 * p <= len(units) and norms[i:i + p] == norms[i + p:i + 2 * p] == norms[i + 2 * p:i + 3 * p]:
                cuts.append(units[i + p][0])
                break
    seen: dict[str, int] = {}
    for start, norm in units:
        seen[norm] = seen.get(norm, 0) + 1
        if seen[norm] == 3 and len(norm) >= 12:
            cuts.append(start)
            break
    words = [(m.start(), m.group().lower().strip(".,;:!?")) for m in _WORD.finditer(text)]
    tokens = [w for _, w in words]
    for i in range(len(words)):
        found = False
        for p in range(1, max_words + 1):
            copies = 4 if p == 1 else 3
            if i + copies * p > len(words):
                break
            gram = tokens[i:i + p]
            if not any(re.search(r"\w", w) for w in gram):
                continue
            if all(tokens[i + k * p:i + (k + 1) * p] == gram for k in range(1, copies)):
                cuts.append(words[i + p][0])
                found = True
                break
        if found:
            break
    cut = min(cuts)
    if cut == len(text):
        return text
    return _DANGLING.sub("", text[:cut].rstrip()).rstrip()


def trim_unfinished(text: str) -> str:
    """Drop a trailing sentence that was cut off mid-way (keep the text if nothing would remain)."""
    stripped = _DANGLING.sub("", text.rstrip()).rstrip()
    if not stripped or stripped[-1] in ".!?)":
        return stripped
    ends = [m.end() for m in re.finditer(r"[.!?)](?=\s)|\n", stripped)]
    if not ends:
        return stripped
    return _DANGLING.sub("", stripped[:ends[-1]].rstrip()).rstrip()


def _masked_values(original: str, masked: str) -> list[str]:
    """The substrings of ``original`` that :func:`answers.redact.redact` replaced by the mask, in order."""
    segments = masked.split(MASK)
    values, position = [], len(segments[0])
    for segment in segments[1:]:
        end = original.find(segment, position) if segment else len(original)
        if end < 0:
            end = len(original)
        values.append(original[position:end])
        position = end + len(segment)
    return values


def _looks_like_secret(value: str) -> bool:
    bare = value.strip().strip("\"'`").strip(".,;:)(!?")
    if len(bare) < 6 or bare == MASK:
        return False
    has_digit = any(c.isdigit() for c in bare)
    has_symbol = any(not c.isalnum() for c in bare)
    mixed_case = any(c.isupper() for c in bare[1:]) and any(c.islower() for c in bare)
    return has_digit or has_symbol or mixed_case


def find_credential(text: str) -> str | None:
    """The kind of credential ``text`` appears to contain (``"aws_key"``, ``"password"`` …), or ``None``."""
    result = redact(text)
    strong = [kind for kind in result.kinds if kind not in _PROSE_KINDS]
    if strong:
        return strong[0]
    if result.found and any(_looks_like_secret(v) for v in _masked_values(text, result.text)):
        return next(kind for kind in result.kinds if kind in _PROSE_KINDS)
    return None
