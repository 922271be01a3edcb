"""Write the bot's replies: pure functions from a decision and articles to text.

Replies use Markdown-style ``**bold**`` and numbered lists; the Slack layer
converts them to mrkdwn.
"""

from __future__ import annotations

from llm.kb import Article
from llm.org import OrgProfile
from llm.taxonomy import INTENT_LABELS, IT_INTENTS

__all__ = [
    "answer_text", "clarify_text", "reject_text", "escalate_text", "password_warning", "DEFAULT_CHOICES",
    "PLATFORM_NAMES", "truncation_note",
]

DEFAULT_CHOICES = ("password_reset", "mfa", "wifi", "vpn", "email", "software_issue")
PLATFORM_NAMES = {"windows": "Windows", "macos": "macOS", "ios": "iPhone/iPad", "android": "Android", "linux": "Linux"}
CAPABILITIES = "passwords, locked accounts, MFA, Wi-Fi, VPN, email, phishing, printers, software, slow computers, " \
    "hardware, updates, files, work phones, meetings and access requests"


def answer_text(article: Article, org: OrgProfile, *, reason: str = "", platform: str | None = None) -> str:
    """The curated steps of ``article``, with a lead-in for follow-ups."""
    lead = ""
    if reason == "next steps":
        lead = "Sorry that didn't do it. Let's try this next:\n\n"
    elif reason == "platform follow-up" and platform in PLATFORM_NAMES:
        lead = f"Thanks! Here are the steps for {PLATFORM_NAMES[platform]}:\n\n"
    return f"{lead}**{article.render_title(org)}**\n\n{article.render(org)}"


def clarify_text(org: OrgProfile, *, reason: str, choices: list[str]) -> str:
    """Ask a focused question; the choices are shown as buttons (or a list on the console)."""
    if reason == "solved":
        return "Great, glad that's sorted! If anything else comes up, just ask."
    if reason == "greeting":
        return (f"Hi! I'm the IT assistant of {org.helpdesk_name}. I can help with {CAPABILITIES}. "
                "What's going on? Tell me what you see, for example the app and the error message.")
    options = ", ".join(INTENT_LABELS[c] for c in choices if c in IT_INTENTS)
    return ("I want to get this right: what is the problem about? "
            f"Pick the closest topic ({options}), or describe what you see, such as the app, the device and any error "
            "message.")


def reject_text(org: OrgProfile, *, injection: bool = False, harmful: bool = False) -> str:
    """Say politely that this is not something the bot does, and where to go instead."""
    if harmful:
        return ("I can't help with that: it could harm someone or get around security controls. If you think an account "
                f"or device is at risk, please tell {org.helpdesk_name} ({org.helpdesk_phone}). For IT problems of your "
                f"own, I can help with {CAPABILITIES}.")
    if injection:
        return ("I can't do that. I only help with IT support questions, I never share anyone's data or passwords, "
                f"and my rules don't change. If you have an IT problem, tell me about it: I can help with {CAPABILITIES}.")
    return ("Sorry, that's outside what I can help with: I'm the IT support assistant. "
            f"For HR, payroll, leave, benefits and other workplace questions, please use the HR portal: {org.hr_portal_url}. "
            f"I can help with {CAPABILITIES}.")


def escalate_text(org: OrgProfile, *, reason: str, article: Article | None = None) -> str:
    """Hand over to a person, with first safety steps when the article has them."""
    contact = f"call {org.helpdesk_phone} or email {org.helpdesk_email}"
    if reason == "needs a human now":
        steps = f"\n\nWhile you wait, do this now:\n\n{article.render(org)}" if article else ""
        return (f"This needs a person from {org.helpdesk_name} right away. Press **Talk to a human** below "
                f"(or {contact}) and mark it urgent.{steps}")
    if reason == "repeated failure":
        return (f"Sorry, we haven't fixed it yet. This one needs a person: press **Talk to a human** and someone from "
                f"{org.helpdesk_name} will pick it up with this conversation attached (or {contact}).")
    return (f"Sure, I'll connect you with a person from {org.helpdesk_name}. Press **Talk to a human** below and add "
            f"a short description, or {contact}.")


def password_warning(org: OrgProfile) -> str:
    """Gentle reminder after a user pasted a password, code or token."""
    return (":warning: Please never share passwords, codes or tokens with anyone, including IT. I've hidden it and it "
            f"is not stored. If it was real, change it now at {org.portal_url}.")


def truncation_note(limit: int) -> str:
    return f"(Your message was long, so I read only the first {limit:,} characters.)"
