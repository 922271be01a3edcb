"""The grounding guard: a model's answer reaches an employee only when its details come from the articles it was
given (or from the employee's own message); otherwise the employee gets the curated steps and an honest notice.

The generations below are hand-written the way a small model writes: faithful paraphrases that must pass, and
near-misses that must not (one character of a URL, one digit of a phone number, a product of another article).
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from answers.engine import UNGROUNDED, UNGROUNDED_NOTICE, AnswerEngine
from answers.claims import Claim, extract_claims, vocabulary
from answers.grounding import Grounding, GuardedStream, check_grounding
from answers.kb import load_kb
from answers.org import OrgProfile
from tests.slackbot import llm_mode

REPO = Path(__file__).resolve().parents[1]
KB = load_kb(REPO / "data" / "kb")
ORG = OrgProfile()
KNOWN = vocabulary(f"{a.render_title(ORG)}\n{a.render(ORG)}" for a in KB.articles)


def articles(*ids: str) -> list[str]:
    """What the model is given: the articles as the prompt renders them, and the organisation's details."""
    rendered = [f"### {KB.get(i).render_title(ORG)}\n{KB.get(i).render(ORG)}" for i in ids]
    return rendered + list(ORG.values().values())


def check(answer: str, *ids: str, question: str = ""):
    return check_grounding(answer, articles(*ids), question, known=KNOWN)


# -- faithful answers pass --------------------------------------------------------------------------------------

FAITHFUL = {
    "reworded steps, the same portal address, numbered list and bold": (
        ["vpn-globalprotect", "vpn-disconnecting-or-slow"], "how do I connect to the vpn from home?",
        "Here's how to connect with GlobalProtect:\n\n"
        "1. Make sure you're online first, and finish any hotel Wi-Fi sign-in page.\n"
        "2. Click the **GlobalProtect** globe icon in the taskbar (it may hide behind the **^** arrow) or in the "
        "Mac menu bar.\n"
        "3. When it asks for a portal, type **vpn.example.com** and click **Connect**.\n"
        "4. Sign in with your work account and approve the MFA prompt.\n"
        "5. You're done when it says **Connected**.\n\n"
        "If you see a certificate warning, cancel and call the IT Helpdesk on +1 555 0100 or email "
        "helpdesk@example.com."),
    "the same URL, the password length, and sentence openers": (
        ["password-reset-self-service", "password-requirements"], "i forgot my password",
        "No problem, you can reset it yourself. First, open a browser and go to https://selfservice.example.com. "
        "Then choose the forgotten password option and enter your work email address. Verify it's you with your "
        "authenticator app or a text code. Finally, pick a new passphrase of at least 14 characters that you "
        "haven't used before. Afterwards, lock your computer and sign in with the new password. Never send your "
        "password to anyone, including the IT Helpdesk."),
    "the user's own app name, in their spelling": (
        ["software-app-crash-windows", "software-install-windows"], "figma keeps crashing on my windows laptop",
        "Sorry Figma keeps crashing! Try this:\n"
        "- Save your work, then press **Ctrl + Shift + Esc** to open **Task Manager** and end Figma with "
        "**End task**.\n"
        "- Restart via **Start > Power > Restart**.\n"
        "- Install updates in **Settings > Windows Update**.\n"
        "- If Figma still crashes, reinstall it from Company Portal.\n"
        "If that doesn't help, contact the IT Helpdesk with a screenshot (**Windows+Shift+S**)."),
    "menu paths in bold and plain, labels in quotes": (
        ["meetings-camera-mic-windows", "meetings-echo-call-quality"], "teams can't find my camera",
        "1. Check the camera shutter and that you aren't muted.\n"
        "2. Go to Settings > Privacy & security > Camera and turn on \"Camera access\" and "
        "**Let desktop apps access your camera**.\n"
        "3. In Teams, open **Settings and more (...) > Settings > Devices**, pick the right camera and use "
        "**Make a test call**.\n"
        "4. Plug USB webcams straight into the laptop, not a hub, then restart the computer."),
    "a product named at the start of sentences, a second article's facts": (
        ["vpn-cisco-secure-client", "vpn-disconnecting-or-slow"], "anyconnect won't connect",
        "Cisco Secure Client (it used to be called Cisco AnyConnect) is the VPN app.\n\n"
        "1. Open Cisco Secure Client from the Start menu and enter vpn.example.com in the VPN box.\n"
        "2. Click **Connect**, sign in and approve the MFA request.\n"
        "3. If it says **Untrusted Server**, don't connect; contact the IT Helpdesk.\n"
        "4. If the VPN keeps dropping, move closer to your router or try a phone hotspot.\n"
        "Cisco Secure Client shows a small padlock when you're connected."),
    "a mailbox clean-up in Markdown with a heading": (
        ["email-mailbox-full", "email-outlook-not-syncing"], "outlook says my mailbox is full",
        "### Free up space in your mailbox\n\n"
        "* In classic Outlook, check **File > Info** under **Mailbox Settings**.\n"
        "* Empty **Deleted Items** and **Junk Email**.\n"
        "* Sort **Sent Items** by size and delete big emails after saving attachments.\n"
        "* Move older mail to your **Online Archive** if you have one.\n\n"
        "**Note:** Don't export mail to PST files unless the IT Helpdesk asks you to."),
}


@pytest.mark.parametrize("case", FAITHFUL, ids=list(FAITHFUL))
def test_a_faithful_paraphrase_of_the_articles_is_shown(case):
    ids, question, answer = FAITHFUL[case]
    result = check(answer, *ids, question=question)
    assert result.ok, result.unsupported
    assert result.checked >= 3  # there was something to check


# -- invented details are caught, down to one character ---------------------------------------------------------

UNFAITHFUL = {
    "a URL with one character changed": (
        ["password-reset-self-service"], "Go to https://selfservice.exampel.com and choose reset password.",
        Claim("url", "https://selfservice.exampel.com")),
    "a real site with an invented page": (
        ["password-reset-self-service"], "Open https://selfservice.example.com/reset-password to start.",
        Claim("url", "https://selfservice.example.com/reset-password")),
    "a phone number with one digit changed": (
        ["vpn-globalprotect"], "If that fails, call the IT Helpdesk on +1 555 0110.", Claim("phone", "+1 555 0110")),
    "an email address that is almost the helpdesk's": (
        ["vpn-globalprotect"], "Email help@example.com with the status message.", Claim("email", "help@example.com")),
    "a product name from another article": (
        ["vpn-globalprotect", "vpn-disconnecting-or-slow"],
        "1. Open Cisco Secure Client from the Start menu.\n2. Enter vpn.example.com and click **Connect**.",
        Claim("name", "Cisco Secure Client")),
    "an app by Sony (seen in the wild)": (
        ["meetings-camera-mic-windows"], "Install the camera app by Sony, which uses your camera for meetings.",
        Claim("name", "Sony")),
    "a Reddit forum (seen in the wild), in lower case too": (
        ["software-app-crash-windows"], "You can also ask on a reddit forum for help with crashes.",
        Claim("name", "reddit")),
    "a Work tab in Outlook that does not exist (seen in the wild)": (
        ["email-mailbox-full", "email-shared-mailbox-calendar"],
        "Open Outlook, go to the Work tab and select Storage to see how full it is.", Claim("name", "Work")),
    "a bold menu path that is not in the article": (
        ["email-mailbox-full"], "1. In classic Outlook, open **File > Options > Mail** and look at the quota.",
        Claim("path", "File > Options > Mail")),
    "a plain menu path that goes one step wrong": (
        ["software-app-crash-windows"], "Repair it from Settings > Apps > Default apps and restart.",
        Claim("path", "Settings > Apps > Default apps")),
    "an invented command in code": (
        ["vpn-disconnecting-or-slow"], "Open a command prompt and run `ipconfig /flushdns`, then reconnect.",
        Claim("command", "ipconfig /flushdns")),
    "an invented shell command in plain text": (
        ["software-app-crash-windows"], "Open PowerShell as admin and run sfc /scannow to repair Windows.",
        Claim("command", "sfc /scannow")),
    "a password rule with the wrong length": (
        ["password-requirements"], "Make it at least 12 characters long and use a passphrase.", Claim("number", "12")),
    "a button label in quotes that the article does not have": (
        ["vpn-globalprotect"], 'Open GlobalProtect and click "Reset VPN", then **Connect**.',
        Claim("label", "Reset VPN")),
    "a keyboard shortcut that is not the article's": (
        ["software-app-crash-windows"], "Press **Ctrl+Alt+Esc** to open Task Manager and end the app.",
        Claim("label", "Ctrl+Alt+Esc")),
}


@pytest.mark.parametrize("case", UNFAITHFUL, ids=list(UNFAITHFUL))
def test_an_invented_detail_is_caught(case):
    ids, answer, invented = UNFAITHFUL[case]
    result = check(answer, *ids, question="it doesn't work, can you help?")
    assert not result.ok
    assert invented in result.unsupported, result.unsupported


# What the embedded SmolLM2-135M (base, no adapter) wrote through the engine, verbatim (96 new tokens, greedy).
EMBEDDED_MODEL_WROTE = {
    "vpn from home": (
        ["vpn-cisco-secure-client", "vpn-globalprotect"], "how do I connect to the vpn from home?",
        "To connect to the VPN from home using a VPN service like Virtual Private Network (VPN), follow these "
        "steps:\n\n"
        "1. Download and install the VPN service available through your local area network (LAN). You can find VPNs "
        "listed on websites like [www.virtualprivacy.net](http://www.virtualprivacy.net)).\n\n"
        "2. Once installed, navigate to the VPN server that supports your local network.",
        Claim("url", "www.virtualprivacy.net")),
    "camera in teams": (
        ["meetings-camera-mic-windows", "meetings-permissions-mac"], "my camera doesn't work in teams",
        "The issue may lie within the settings of your device. Make sure you're using the correct version of the "
        "software you're using to enable TeamMeeting. You've already checked the options to enable TeamMeeting but "
        "there could be issues with the software itself.\n\nHere's how to troubleshoot:\n\n"
        "1. Open the TeamMeeting settings by clicking the three horizontal lines next to the TeamMeeting icon.\n"
        "2. Click on the TeamMeeting icon.",
        Claim("name", "TeamMeeting")),
    "mailbox full": (
        ["email-mailbox-full", "email-shared-mailbox-calendar"], "outlook says my mailbox is full",
        "The mailbox is currently fully filled. It seems that you're trying to create a shared mailbox but haven't "
        "been able to. This happens when you don't allow others to share your mailbox.\n\nTo fix this issue, you'll "
        "need to enable the ability to share your mailbox in your Outlook account. Here's how to do it:\n\n"
        "1. Click the Mail icon in the top left corner of your Outlook window.",
        Claim("name", "Mail")),
    "forgotten password": (
        ["password-reset-self-service", "password-requirements"], "i forgot my password",
        "I'm sorry for your loss. I'll be happy to assist you again. Please find the details about how to reset your "
        "password here: [https://www.techhelpdesk.example.co/reset_password]"
        "(https://www.techhelpdesk.example.co/reset_password)\n\nRemember, always remember to keep your devices "
        "updated and secure them. You can download the latest version of the latest antivirus programs.",
        Claim("url", "https://www.techhelpdesk.example.co/reset_password")),
}


@pytest.mark.parametrize("case", EMBEDDED_MODEL_WROTE, ids=list(EMBEDDED_MODEL_WROTE))
def test_what_the_embedded_base_model_really_wrote_is_withheld(case):
    ids, question, answer, invented = EMBEDDED_MODEL_WROTE[case]
    result = check(answer, *ids, question=question)
    assert invented in result.unsupported, result.unsupported


def test_only_the_invented_details_are_reported():
    result = check("1. Open **GlobalProtect** and enter **vpn.example.com**.\n2. If it fails, ask on a Reddit forum "
                   "or call +1 555 0199.", "vpn-globalprotect")
    assert result.unsupported == (Claim("phone", "+1 555 0199"), Claim("name", "Reddit"))


def test_what_the_user_named_may_be_repeated_but_not_changed():
    answer = "Close Figma, reopen it and check https://status.figma.com for an outage."
    assert check(answer, "software-app-crash-windows",
                 question="figma crashes, status page https://status.figma.com says all good").ok
    assert not check(answer, "software-app-crash-windows", question="figma crashes").ok


def test_the_claims_of_an_answer_are_the_details_a_reader_could_act_on():
    claims = extract_claims("Hi!\n1. Open **Settings > Apps**.\n2. Run `gpupdate /force`.\n3. Visit www.example.com "
                            "or mail it@example.com, or call 020 7946 0958. Then open OneDrive and press F9 twice.",
                            names=KNOWN.names)
    assert sorted(claims, key=str) == sorted([
        Claim("command", "gpupdate /force"), Claim("email", "it@example.com"), Claim("url", "www.example.com"),
        Claim("phone", "020 7946 0958"), Claim("path", "Settings > Apps"), Claim("name", "OneDrive"),
        Claim("name", "F9")], key=str)


def test_the_knowledge_base_names_products_not_sentence_openers():
    assert {"outlook", "globalprotect", "intune", "cisco", "sharepoint"} <= KNOWN.names
    assert not {"open", "restart", "settings", "still", "if", "contact"} & KNOWN.names
    assert {"work", "open", "restart"} <= KNOWN.words


def _steps(body: str) -> list[str]:
    return [re.sub(r"^\d+\.\s*", "", line) for line in body.splitlines() if re.match(r"\d+\.", line)]


def _first_sentence(step: str) -> str:
    return re.match(r"(.+?[.!?])(?:\s|$)|.+", step).group(1) or step


REWORDINGS = {
    "without bold": lambda body: body.replace("**", ""),
    "condensed to first sentences": lambda body: "Sure, here's what to try:\n" + "\n".join(
        f"- {_first_sentence(step)}" for step in _steps(body)) + "\nLet me know if that helps!",
    "as bold steps": lambda body: "\n".join(f"**Step {number}:** {_first_sentence(step)}" for number, step in
                                            enumerate(_steps(body), 1))
    + f"\n\nIf you're still stuck, contact {ORG.helpdesk_name} at {ORG.helpdesk_phone}.",
}


@pytest.mark.parametrize("rewording", REWORDINGS, ids=list(REWORDINGS))
def test_rewordings_of_every_article_pass(rewording):
    """Each article, reworded, against itself and the next article (two articles, as in the prompt)."""
    failed = []
    for index, article in enumerate(KB.articles):
        neighbour = KB.articles[(index + 1) % len(KB.articles)]
        answer = REWORDINGS[rewording](article.render(ORG))
        result = check(answer, article.id, neighbour.id, question=article.examples[0] if article.examples else "")
        if not result.ok:
            failed.append((article.id, result.unsupported))
    assert not failed


# -- the streamed preview shows nothing the final check would withhold ------------------------------------------

def test_the_streamed_preview_stops_before_an_invented_sentence():
    shown: list[str] = []
    stream = GuardedStream(shown.append, Grounding(articles("vpn-globalprotect"), "vpn", known=KNOWN))
    text = ("1. Click the **GlobalProtect** icon.\n2. Enter **vpn.example.com** and click **Connect**.\n"
            "3. Still stuck? Ask on a Reddit forum.\n4. Or call +1 555 0100.\n")
    for word in text.split(" "):
        stream(word + " ")
    assert "".join(shown) == ("1. Click the **GlobalProtect** icon.\n2. Enter **vpn.example.com** and click "
                              "**Connect**.\n3. Still stuck? ")
    assert stream.blocked


# -- the engine shows the curated steps instead, and says why ---------------------------------------------------

class CannedModel:
    """A stand-in for the model service (which has its own tests): streams and returns fixed text."""

    name = "canned"

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def generate(self, messages, *, on_token=None) -> str:
        self.calls += 1
        if on_token is not None:
            for piece in self.text.split(" "):
                on_token(piece + " ")
        return self.text


QUESTION = "my vpn keeps disconnecting every few minutes"
FAITHFUL_VPN = ("1. Disconnect the VPN and open a normal website to test your internet.\n"
                "2. Move closer to your router, or try a phone hotspot.\n"
                "3. Update your VPN app from Company Portal and restart your computer.\n"
                "Still dropping? Contact the IT Helpdesk at +1 555 0100 or helpdesk@example.com.")
UNFAITHFUL_VPN = ("1. Disconnect the VPN and open a normal website.\n"
                  "2. Download the free NordVPN app by Sony and run it next to the company VPN.\n"
                  "3. Call +1 555 0199 if it still drops.")


def _ask(engine: AnswerEngine, model: CannedModel):
    shown: list[str] = []
    answer = llm_mode(engine, model).answer(QUESTION, on_token=shown.append)
    return answer, "".join(shown)


def test_an_invented_model_answer_is_withheld_and_the_curated_steps_shown_with_a_notice(engine):
    curated = engine.answer(QUESTION)
    model = CannedModel(UNFAITHFUL_VPN)
    answer, preview = _ask(engine, model)
    assert model.calls == 1
    assert answer.answer == curated.answer and answer.generated_by == "kb"
    assert answer.notice == UNGROUNDED_NOTICE and "curated steps" in answer.notice
    assert answer.reason == UNGROUNDED  # stored on the message: the digest counts it
    assert set(answer.ungrounded) == {"name 'NordVPN'", "name 'Sony'", "phone '+1 555 0199'"}
    assert "Sony" not in preview and "NordVPN" not in preview


def test_an_invented_answer_over_slack_shows_the_curated_steps_and_is_counted_in_the_metrics(make_bot, engine):
    bot = make_bot(engine=llm_mode(engine, CannedModel(UNFAITHFUL_VPN)))
    _, event = bot.dm(QUESTION)
    answer = bot.final_answer(event)
    assert "Sony" not in str(answer) and "curated steps" in str(answer["blocks"])
    bot.settle()
    assert b"itbot_answers_withheld_total 1.0" in bot.services.metrics.render()


def test_a_faithful_model_answer_is_shown_as_generated(engine):
    answer, preview = _ask(engine, CannedModel(FAITHFUL_VPN))
    assert answer.answer == FAITHFUL_VPN and answer.generated_by == "canned"
    assert answer.notice is None and answer.ungrounded == () and answer.reason != UNGROUNDED
    assert preview.strip() == FAITHFUL_VPN  # streamed a sentence at a time


# -- the digest counts what the guard withheld ------------------------------------------------------------------

def test_the_digest_counts_model_answers_withheld_by_the_guard(tmp_path):
    from bot.digest import build_digest
    from bot.digest_blocks import digest_message, digest_text
    from storage import repository as repo
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade
    from storage.stats import operations_stats
    from storage.types import utcnow

    url = f"sqlite:///{tmp_path / 'itbot.db'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        conversation = repo.get_or_create_conversation(session, team_id="T1", channel_id="D1", thread_ts="1.0",
                                                       user_id="U0ALICE01", source="dm")
        for model, reason in (("smollm2", "terse"), ("smollm2", ""), ("kb", UNGROUNDED), ("kb", "")):
            repo.append_message(session, conversation_id=conversation.id, role="user", text=QUESTION)
            repo.append_message(session, conversation_id=conversation.id, role="assistant", text="Steps…",
                                intent="vpn", action="answer", reason=reason or None, model=model)
    with sessions.begin() as session:
        ops = operations_stats(session, until=utcnow() + timedelta(minutes=1))
    assert (ops.model_answers, ops.model_withheld) == (2, 1)
    digest = build_digest(day=utcnow().date(), ops=ops, metrics={"intent_accuracy": 0.9}, previous=None)
    assert re.search(r"Model answers withheld +1 of 3 by the grounding guard", digest_text(digest))
    assert "*Model answers withheld*\\n1 of 3" in json.dumps(digest_message(digest)["blocks"])


def test_the_digest_says_nothing_of_the_guard_where_no_model_answers():
    from bot.digest import build_digest
    from bot.digest_blocks import digest_text
    from storage.stats import OperationsStats
    from storage.types import utcnow

    ops = OperationsStats(since=utcnow() - timedelta(days=1), until=utcnow(), conversations=3)
    assert "grounding guard" not in digest_text(build_digest(day=utcnow().date(), ops=ops, metrics={}, previous=None))


# -- false positives on the SFT references ----------------------------------------------------------------------

def _sft_rows():
    for split in ("validation", "test"):
        with gzip.open(REPO / "data" / "sft" / f"{split}.jsonl.gz", "rt", encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines)


def test_the_reference_answers_of_the_sft_set_pass_the_guard():
    """The references are written from the prompt's articles, so the guard must let (nearly) all of them through.

    Only ``answer`` rows: the engine never asks a model to write a clarification, refusal or escalation, and the
    references of urgent escalations quote an article the prompt does not contain."""
    rows = [row for row in _sft_rows() if row["action"] == "answer"]
    passed = 0
    for row in rows:
        sources = [m["content"] for m in row["messages"] if m["role"] == "system"] + list(ORG.values().values())
        question = "\n".join(m["content"] for m in row["messages"] if m["role"] == "user")
        passed += check_grounding(row["reference"], sources, question, known=KNOWN).ok
    assert len(rows) > 500 and passed / len(rows) >= 0.95
