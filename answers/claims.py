"""The checkable details of a text: what a reader could act on, and a model could invent.

==========  =================================================================
url         ``https://…``, ``www.…`` and bare domains (``outlook.office.com``)
email       ``helpdesk@example.com``
phone       seven or more digits (compared digit by digit)
number      any other number, except list markers (``14`` characters)
command     inline code, code blocks, shell commands and their flags
path        menu paths, ``Settings > Apps > Installed apps``
label       short bold text (three words at most) and quoted text (six):
            buttons, menus, messages; longer bold text is emphasis, and a
            bold line is a heading: only the names in them are checked
name        capitalised words inside a sentence, CamelCase, acronyms,
            shortcuts (``F9``, ``Ctrl+Q``), and product names wherever they
            stand (``Sony``, ``reddit``)
==========  =================================================================

A capitalised word at the start of a sentence, list item or heading is prose
("Open", "Then") unless it looks like a name on its own: CamelCase, a digit,
a shortcut, or a known product name (:data:`PRODUCT_NAMES`, plus the proper
nouns of the knowledge base, :func:`vocabulary`). Each detail is taken out of
the text once found, so a URL's words are not checked again as names.

:mod:`answers.grounding` looks each claim up in the sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterable

__all__ = ["Claim", "Facts", "Vocabulary", "extract_claims", "facts", "vocabulary", "squash", "unify", "url_key",
           "digits", "at_sentence_start", "PRODUCT_NAMES", "ALLOWED_NAMES"]

# Brands and products a model may bring in from its pre-training; checked wherever they stand, in any case.
# Words that are also ordinary English ("edge", "teams", "word", "box") are left out: they are checked only
# when capitalised inside a sentence, like any other name.
PRODUCT_NAMES = frozenset("""
    acer adobe airdrop amazon amd anydesk anyconnect apple asus avast aws azure bing
    bitdefender bitwarden bluejeans chatgpt chrome chromebook cisco citrix dell discord docusign dropbox duo
    eset evernote facebook firefox fortinet gemini github gitlab globalprotect gmail google gotomeeting hotmail
    hp huawei icloud instagram intel intune itunes jamf jira kaspersky keepass lastpass lenovo libreoffice
    linkedin logitech macbook malwarebytes mcafee microsoft mozilla netflix norton nordvpn nvidia
    okta onedrive onenote openvpn opera outlook paloalto paypal quora reddit safari salesforce samsung
    sharepoint skype snapchat sony spotify stackoverflow symantec teamviewer telegram thunderbird
    tiktok trello twitter ubuntu webex whatsapp wikipedia wireguard xiaomi yahoo youtube zendesk
""".split())

# Capitalised words that are never news: platforms, common acronyms, the pronoun "I", days and months.
ALLOWED_NAMES = frozenset("""
    i i'm i'll i've i'd ok okay it pc mac macos ios ipados iphone ipad android linux windows wi-fi wifi vpn mfa
    pin url usb id hr faq slack monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december
""".split())

# Bold or quoted words a model uses to structure an answer, not as a label it found somewhere.
_STRUCTURE = re.compile(r"(?i)^(?:note|tip|tips|important|warning|caution|summary|next steps?|steps?(?: \d+)?|"
                        r"option \d+|if that doesn't work|still not working\??|please note|remember)[:.!]?$")

_CODE_BLOCK = re.compile(r"```[^\n]*\n?(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>()\[\]{}\"'`|*]+")
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_DOMAIN = re.compile(r"(?i)(?<![\w@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
                     r"(?:com|org|net|io|co|uk|de|fr|es|it|nl|eu|edu|gov|us|info|biz|app|dev|me|ai|tv|ly|cloud|"
                     r"online|site|local|corp|internal)(?![\w-]|\.[a-z0-9])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d \t().-]{5,}\d(?!\w)")
_SHELL = re.compile(
    r"(?i)(?<![\w/-])(?:sudo\s+)?(?:ipconfig|nslookup|tracert|traceroute|netsh|gpupdate|gpresult|sfc|dism|chkdsk|"
    r"regedit|msconfig|taskkill|killall|diskutil|defaults\s+(?:write|delete|read)|brew|apt-get|wmic|systemctl|"
    r"launchctl|pmset|tccutil|dscacheutil|networksetup|ifconfig|net\s+(?:use|user|stop|start)|"
    r"(?-i:(?:Get|Set|Remove|Restart|Start|Stop|Reset|Clear|New)-[A-Z][A-Za-z]+))(?![\w-])"
    r"(?:[ \t]+(?:--?[\w-]+|/[\w-]+|[\w.\\:-]*[\\:.][\w.\\:-]*|\*))*")
_FLAG = re.compile(r"(?<![\w/.:\\-])(?:--?[a-z][\w-]+|/[a-z]{3,}\b)(?![/.\w])")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__"
                   r"|(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![*\w])")
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|“([^”\n]{1,80})”|‘([^’\n]{1,60})’"
                     r"|(?<![\w'])'([^'\n]{1,60})'(?![\w'])")
_PATH = re.compile(r"[\w&().'%+-]+(?:[ \t]+[\w&().'%+-]+)*(?:[ \t]*>[ \t]*[\w&().'%+-]+(?:[ \t]+[\w&().'%+-]+)*)+")
_ARROW = re.compile(r"\s*(?:->|→|›|»|⟩|>)\s*")
_TOKEN = re.compile(r"(?<![\w§])[A-Za-z][A-Za-z0-9]*(?:['’+&.-][A-Za-z0-9]+)*")
_NUMBER = re.compile(r"(?<![\w.§])\d+(?:[.,:]\d+)*(?![\w§])")
_LIST_MARK = re.compile(r"(?m)^[ \t]*(?:[-*•]|\d+[.)])[ \t]+")
_HEADING = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]+(.*)$")
_SHORTCUT_PLUS = re.compile(r"(?<=[A-Za-z0-9])[ \t]*\+[ \t]*(?=[A-Za-z])")
_SENTENCE_END = re.compile(r"(?:\A|[.!?:;\n]|\A[ \t]*\d+\)|\n[ \t]*\d+\))\Z")
_SPLIT_PATH = re.compile(r"\*\*[ \t]*(>|->|→|›)[ \t]*\*\*")
_LEAD = re.compile(r"[ \t*_\"'“”‘’(\[#>•-]+\Z")
_PLACE = "§"  # stands in for a detail already taken out, so nothing is counted twice
LABEL_WORDS = 6  # quoted text longer than this is prose, not a label or a message
BOLD_LABEL_WORDS = 3  # bold text longer than this (or alone on its line) is a heading or emphasis, not a label
_STEP_LEAD = re.compile(r"(?i)^(?:step \d+|note|tip|important|warning|option \d+)\s*[:.)-]\s*")


@dataclass(frozen=True, slots=True)
class Claim:
    """One checkable detail of an answer."""

    kind: str  # url, email, phone, number, command, path, label, name
    text: str

    def __str__(self) -> str:
        return f"{self.kind} {self.text!r}"


def unify(text: str) -> str:
    """One spelling for things written several ways: quotes, arrows, ``Ctrl + Q``, spaces."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').replace("\u00a0", " ")
    text = _SHORTCUT_PLUS.sub("+", text)
    return text


def squash(text: str) -> str:
    """Markup off, arrows as ``>``, spaces collapsed: the form phrases are compared in."""
    text = unify(text).replace("**", "").replace("__", "").replace("`", "")
    text = _ARROW.sub(" > ", text)
    return re.sub(r"\n\s*\n\s*", "\n", re.sub(r"[ \t]+", " ", text)).strip()


def url_key(url: str) -> str:
    """A URL or domain as compared: no scheme, no ``www.``, no trailing slash, lower case."""
    url = url.rstrip(".,;:!?)]*_'\"").lower()
    url = re.sub(r"^https?://", "", url)
    url = re.sub(r"^www\.", "", url)
    return url.rstrip("/")


def digits(text: str) -> str:
    """The digits of a phone number."""
    return re.sub(r"\D", "", text)


def _capitalised(token: str) -> bool:
    return any(c.isupper() for c in token)


def _name_like(token: str, names: Collection[str]) -> bool:
    """A token that is a name wherever it stands."""
    lower = token.lower()
    if lower in ALLOWED_NAMES:
        return False
    camel = any(c.isupper() for c in token[1:]) and not token.isupper()  # GlobalProtect, iCloud
    acronym = token.isupper() and len(token) >= 2 and token.isalpha()  # SSO, LAN
    shortcut = "+" in token or any(c.isdigit() for c in token)  # Ctrl+Q, F9
    return lower in names or lower in PRODUCT_NAMES or camel or acronym or shortcut


def _in_heading(text: str, position: int) -> bool:
    line_start = text.rfind("\n", 0, position) + 1
    return re.match(r"[ \t]*#{1,6}[ \t]", text[line_start:position + 1]) is not None


def at_sentence_start(text: str, position: int, *, headings: bool = True) -> bool:
    """Whether the word at ``position`` opens a sentence or a list item (or, with ``headings``, is in a heading)."""
    if headings and _in_heading(text, position):
        return True
    return bool(_SENTENCE_END.search(_LEAD.sub("", text[max(0, position - 80):position])))


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int, str]]:
    found = []
    for match in pattern.finditer(text):
        inner = next((g for g in match.groups() if g is not None), match.group(0)) if match.groups() else match.group(0)
        found.append((match.start(), match.end(), inner))
    return found


def _blank(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """Replace each span by the stand-in, keeping the rest of the text where it was."""
    pieces, last = [], 0
    for start, end, inner in sorted(spans):
        if start < last:
            continue
        end_mark = inner.rstrip()[-1:] if inner.rstrip()[-1:] in (".", "!", "?", ":") else ""
        pieces += [text[last:start], _PLACE + end_mark]  # "**Still not working?** Contact …" opens a sentence
        last = end
    return "".join(pieces) + text[last:]


def extract_claims(text: str, *, names: Collection[str] = frozenset()) -> list[Claim]:
    """The checkable details of ``text``, each once, in the order they are taken out of it.

    Code first (its words are commands, not names), then URLs, emails and phone numbers, shell commands, bold and
    quoted text, menu paths, names, and the numbers left over.

    Args:
        text: A generated answer (Markdown allowed).
        names: Extra product names, lower case, checked even at the start of a sentence.
    """
    claims: list[Claim] = []
    text = unify(text)
    for kind, pattern in (("command", _CODE_BLOCK), ("command", _INLINE_CODE), ("url", _URL), ("email", _EMAIL),
                          ("url", _DOMAIN)):
        found = [span for span in _spans(pattern, text) if span[2].strip()]
        claims += [Claim(kind, inner.strip().rstrip(".,;:!?)]*_'\"")) for _, _, inner in found]
        text = _blank(text, found)
    phones = [(s, e, m) for s, e, m in _spans(_PHONE, text) if len(digits(m)) >= 7]
    claims += [Claim("phone", m.strip()) for _, _, m in phones]
    text = _blank(text, phones)
    commands = _spans(_SHELL, text)
    commands += [flag for flag in _spans(_FLAG, text) if not any(s <= flag[0] < e for s, e, _ in commands)]
    claims += [Claim("command", re.sub(r"\s+", " ", m).strip().rstrip(".,;:")) for _, _, m in sorted(commands)]
    text = _blank(text, commands)
    text = _SPLIT_PATH.sub(r" \1 ", text)  # "**File** > **Info**" is the path "File > Info"
    for pattern in (_BOLD, _QUOTED):
        found, text = _marked(text, pattern, names)
        claims += found
    text = _ARROW.sub(" > ", text.replace("**", "").replace("__", ""))
    paths = [(s, e, m) for s, e, m in _spans(_PATH, text) if _PLACE not in m]
    claims += [Claim("path", _trim_path(m)) for _, _, m in paths]
    text = _blank(text, paths)
    claims += _names(text, names)
    claims += [Claim("number", m.group()) for m in _NUMBER.finditer(_LIST_MARK.sub(" ", text))]
    return list(dict.fromkeys(claims))


def _marked(text: str, pattern: re.Pattern[str], names: Collection[str]) -> tuple[list[Claim], str]:
    """The claims of bold (or quoted) text, and ``text`` without the spans they came from."""
    claims: list[Claim] = []
    taken = []
    for start, end, inner in _spans(pattern, text):
        inner = inner.strip()
        if _PLACE in inner or not re.search(r"\w", inner):
            continue
        lead = _STEP_LEAD.match(inner)
        words = inner[lead.end():] if lead else inner
        if _STRUCTURE.match(inner):
            pass
        elif ">" in words or "→" in words:
            claims.append(Claim("path", squash(words)))
        elif pattern is _BOLD and (lead or len(words.split()) > BOLD_LABEL_WORDS or _alone(text, start, end)
                                   or text[end:end + 1] == ":" or words.endswith(":")):
            # "**Step 1: Connect To The Internet**", "**Enter the portal**: …": a heading or a lead-in, whose
            # names are checked, not its wording
            claims += [Claim("name", w) for w in _TOKEN.findall(words) if _name_like(w, names)]
        elif len(words.split()) <= LABEL_WORDS and (pattern is _QUOTED or _capitalised(words)
                                                     or any(c.isdigit() for c in words)):
            claims.append(Claim("label", words))
        else:
            continue  # lower-case emphasis: its words stay in the text, for names and numbers
        taken.append((start, end, inner))
    return claims, _blank(text, taken)


def _alone(text: str, start: int, end: int) -> bool:
    """Whether the span fills its line (after a list marker): a heading made bold."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    before, after = text[line_start:start], text[end:len(text) if line_end < 0 else line_end]
    return not _LIST_MARK.sub("", before).strip() and not after.strip(" \t:.")


_CONNECTOR = re.compile(r"(?i)^(?:and|or|then|to|in|on|for|with|from|if|when|under|until|so|but|is|are)$")


def _trim_path(path: str) -> str:
    """A menu path found in prose, without the words of the sentence around it (for the report)."""
    parts = [p.strip() for p in squash(path).split(" > ")]
    first, last = parts[0].split(), parts[-1].split()
    starts = [i for i, w in enumerate(first) if w[:1].isupper() and (i == 0 or not first[i - 1][:1].isupper())]
    first = first[starts[-1]:] if starts else first[-1:]
    cut = next((i for i, w in enumerate(last) if i and _CONNECTOR.match(w)), len(last))
    last = last[:cut]
    tail = " ".join(last).rstrip(".,;:!?")
    if tail.count(")") > tail.count("("):  # "(Windows: Start > Power > Restart)"
        tail = tail[:tail.rindex(")")].rstrip(".,;:!? ")
    return " > ".join([" ".join(first), *parts[1:-1], tail])


def _names(text: str, names: Collection[str]) -> list[Claim]:
    tokens = list(_TOKEN.finditer(text))
    claims: list[Claim] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        if not run:
            return
        words = [m.group() for m in run]
        if _in_heading(text, run[0].start()):  # Title Case Headings: only what looks like a name on its own
            claims.extend(Claim("name", w) for w in words if _name_like(w, names))
            run.clear()
            return
        if at_sentence_start(text, run[0].start()) and not _name_like(words[0], names):
            words = words[1:]
        while words and words[0].lower() in ALLOWED_NAMES:
            words = words[1:]
        while words and words[-1].lower() in ALLOWED_NAMES:
            words = words[:-1]
        if words:
            claims.append(Claim("name", " ".join(words)))
        run.clear()

    for match in tokens:
        word = match.group()
        if _capitalised(word):
            if run and text[run[-1].end():match.start()] != " ":
                close()
            run.append(match)
            continue
        close()
        if word.lower() in PRODUCT_NAMES:  # "ask on reddit"
            claims.append(Claim("name", word))
    close()
    return claims


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What a knowledge base says about words, lower case (see :func:`vocabulary`)."""

    names: frozenset[str] = frozenset()  # always capitalised inside a sentence: names wherever they stand
    words: frozenset[str] = frozenset()  # written in lower case somewhere: ordinary words, never a user's app name


def vocabulary(texts: Iterable[str]) -> Vocabulary:
    """The proper nouns (Outlook, Intune, Cisco) and the ordinary words of ``texts``: computed once per KB.

    A product named in another article is then recognised at the start of a sentence too. Words capitalised only
    at the start of sentences or inside bold or quoted labels ("**Restore**") are not names.
    """
    capital, lower = set(), set()
    for text in texts:
        text = _QUOTED.sub(_PLACE, _BOLD.sub(_PLACE, unify(text)))
        for match in _TOKEN.finditer(text):
            word = match.group()
            if not word[0].isupper():
                lower.add(word)
            elif not at_sentence_start(text, match.start()):
                capital.add(word.lower())
    names = frozenset(w for w in capital - lower if len(w) > 2 and w not in ALLOWED_NAMES and w.isalpha())
    return Vocabulary(names=names, words=frozenset(lower))


@dataclass(frozen=True, slots=True)
class Facts:
    """The details a source states, in the form claims are compared with (see :func:`facts`)."""

    urls: frozenset[str]  # url_key form, including the domains of email addresses
    emails: frozenset[str]  # lower case
    phones: frozenset[str]  # digits only
    numbers: frozenset[str]
    labels: frozenset[str]  # bold and quoted text, headings and each step of a menu path, squashed, lower case


def facts(text: str) -> Facts:
    """What ``text`` (the sources of an answer, joined) states, for :mod:`answers.grounding`."""
    text = unify(text)
    emails = _EMAIL.findall(text)
    labels = {squash(inner).lower() for _, _, inner in _spans(_BOLD, text) + _spans(_QUOTED, text)}
    labels |= {squash(heading).lower() for heading in _HEADING.findall(text)}
    labels |= {part.strip() for label in list(labels) for part in label.split(" > ")}
    return Facts(
        urls=frozenset({url_key(m) for m in _URL.findall(text) + _DOMAIN.findall(text)}
                       | {url_key(m.split("@", 1)[1]) for m in emails}),
        emails=frozenset(m.lower() for m in emails),
        phones=frozenset(digits(m) for m in _PHONE.findall(text) if len(digits(m)) >= 7),
        numbers=frozenset(re.findall(r"\d+(?:[.,:]\d+)*", text) + re.findall(r"\d+", text)),
        labels=frozenset(labels),
    )
