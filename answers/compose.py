"""Write the bot's replies: pure functions from a decision and articles to text.

Replies use Markdown-style ``**bold**`` and numbered lists; the Slack layer
converts them to mrkdwn.
"""

from __future__ import annotations

from collections.abc import Sequence

from answers.kb import Article
from answers.org import OrgProfile
from answers.taxonomy import topic_label

__all__ = [
    "answer_text", "clarify_text", "reject_text", "escalate_text", "password_warning", "DEFAULT_CHOICES",
    "PLATFORM_NAMES", "truncation_note", "not_covered_text", "contact_line", "UNSURE", "SWITCH_PROMPT",
    "CLOSEST_PROMPT", "offered_choices",
]

DEFAULT_CHOICES = ("password_reset", "mfa", "wifi", "vpn", "email", "software_issue")
PLATFORM_NAMES = {"windows": "Windows", "macos": "macOS", "ios": "iPhone/iPad", "android": "Android", "linux": "Linux"}
CAPABILITIES = "passwords, locked accounts, MFA, Wi-Fi, VPN, email, phishing, printers, software, slow computers, " \
    "hardware, updates, files, work phones, meetings and access requests"


# Said first when an article answers a question only just ("unsure"): more of those answers miss than the others.
UNSURE = ("This is the closest article I have; it may not be exactly what you asked. If it doesn't fit, press "
          "**Talk to a human**.")


def answer_text(article: Article, org: OrgProfile, *, reason: str = "", platform: str | None = None,
                unsure: bool = False) -> str:
    """The curated steps of ``article``, with a lead-in for follow-ups, or saying it may not be what was asked
    (``unsure``)."""
    lead = ""
    if unsure:
        lead = f"{UNSURE}\n\n"
    elif reason == "next steps":
        lead = "Sorry that didn't do it. Let's try this next:\n\n"
    elif reason == "platform follow-up" and platform in PLATFORM_NAMES:
        lead = f"Thanks! Here are the steps for {PLATFORM_NAMES[platform]}:\n\n"
    return f"{lead}**{article.render_title(org)}**\n\n{article.render(org)}"


def contact_line(org: OrgProfile) -> str:
    """Where to get a person when the steps do not help (the end of a model-written answer)."""
    return f"If this doesn't solve it, contact {org.helpdesk_name} at {org.helpdesk_phone} or {org.helpdesk_email}."


# Above the buttons of the other likely topics under an answer to a terse message (Slack and the web chat), and
# above the button of the closest article under "I don't have an article about this".
SWITCH_PROMPT = "Not what you meant? Pick the topic:"
CLOSEST_PROMPT = "The closest article I have:"


def offered_choices(action: str, choices: Sequence[str]) -> tuple[list[str], str | None]:
    """The topics a reply shows as buttons (Slack and the web chat alike) and the line above them: a question back
    offers up to five (its text asks); an answer the other likely topics or close articles; "I don't have an article
    about this" and a decline the closest article's; other replies none."""
    shown = list(choices[:{"clarify": 5, "answer": 3, "escalate": 1, "reject": 1}.get(action, 0)])
    prompt = {"answer": SWITCH_PROMPT, "escalate": CLOSEST_PROMPT, "reject": CLOSEST_PROMPT}.get(action) \
        if shown else None
    return shown, prompt


def clarify_text(org: OrgProfile, *, reason: str, choices: list[str], closest: str | None = None) -> str:
    """Ask a focused question; the choices are shown as buttons (or a list on the console). ``closest``: the title of
    the organisation's article that comes close, whose topic is the first choice."""
    if reason == "solved":
        return "Great, glad that's sorted! If anything else comes up, just ask."
    if reason == "greeting":
        return (f"Hi! I'm the IT assistant of {org.helpdesk_name}. I can help with {CAPABILITIES}. "
                "What's going on? Tell me what you see, for example the app and the error message.")
    options = ", ".join(topic_label(c) for c in choices)
    if closest and choices:
        others = ", ".join(topic_label(c) for c in choices[1:])
        return (f"I want to get this right. The closest article I have is \"{closest}\": pick "
                f"{topic_label(choices[0])} if that's it" + (f", or another topic ({others})" if others else "")
                + ", or describe what you see, such as the app, the device and any error message.")
    return ("I want to get this right: what is the problem about? "
            f"Pick the closest topic ({options}), or describe what you see, such as the app, the device and any error "
            "message.")


def closest_pointer(title: str, topic: str) -> str:
    """Under a decline: the organisation's article that comes close, in case the question is about it after all."""
    return (f"If this is about your work after all, the closest article I have is \"{title}\": pick "
            f"{topic_label(topic)} to see it.")


def reject_text(org: OrgProfile, *, injection: bool = False, harmful: bool = False, assistant: bool = False,
                personal: bool = False) -> str:
    """Say politely that this is not something the bot does, and where to go instead."""
    if personal:
        return ("That sounds like your own account or device rather than a work one, so it's outside what I can help "
                "with: the service's or the maker's own support is the place for it. If it is about a work account or "
                f"a device the company gave you, say so and I'll help. I can help with {CAPABILITIES}.")
    if assistant:
        return ("I can't read, send or change your mail or calendar: Outlook (or Outlook on the web) does that. If "
                "something in it isn't working, tell me what happens and I'll help you fix it. "
                f"I can help with {CAPABILITIES}.")
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


# First steps for a kind of problem no article covers: safe, generic, and true on any system.
_FIRST_STEPS = {
    "sign_in": ("Check that Caps Lock is off and that you use your work account (not a personal one).",
                "Try signing in from a private (incognito) browser window, which rules out old cookies.",
                "If the account says it is locked or the password expired, reset it at {portal_url}."),
    "app": ("Close the app completely and open it again; if that does not help, restart the computer.",
            "Try the same thing in the web version or on another device, to see whether only this device is "
            "affected.",
            "Note the exact error message (a screenshot helps) and when it started."),
    "network": ("Check whether other sites and apps work, and whether colleagues see the same.",
                "Turn Wi-Fi off and on again, or unplug and replug the network cable; then restart the device.",
                "If you work remotely, connect to the VPN and try again."),
    "device": ("Restart the device and check that cables, power and batteries are in place.",
               "Try another port, charger or accessory if you have one.",
               "Note the device's name or asset tag and what you see (lights, messages)."),
    "request": ("Look for it in {software_catalog} or on the self-service portal ({portal_url}) first.",
                "Ask your manager if the request needs their approval.",
                "Have ready what you need, for whom and by when."),
}
_KIND = {"password_reset": "sign_in", "account_lockout": "sign_in", "mfa": "sign_in", "wifi": "network",
         "vpn": "network", "browser": "app", "email": "app", "software_issue": "app", "meetings_av": "app",
         "printer": "device", "hardware": "device", "mobile_device": "device", "slow_computer": "device",
         "os_update": "device", "software_install": "request", "access_request": "request", "file_access": "request"}


def not_covered_text(org: OrgProfile, *, intent: str | None, closest: str | None = None,
                     closest_topic: str | None = None) -> str:
    """Say honestly that no article covers this, give safe first steps for its kind, and offer a person; name the
    ``closest`` article (linked as the source, its ``closest_topic`` a button) when there is one worth a look."""
    from answers.org import fill_placeholders

    steps = _FIRST_STEPS[_KIND.get(intent or "", "app")]
    numbered = "\n".join(f"{i}. {fill_placeholders(step, org)}" for i, step in enumerate(steps, 1))
    opening = "I don't have an article about this yet, so I can't give you exact steps."
    if closest:
        where = f"press **{topic_label(closest_topic)}** below to see it" if closest_topic else "under Sources"
        opening = (f"I don't have an article that answers this exactly; the closest one I have is \"{closest}\" "
                   f"({where}), in case it helps.")
    return (f"{opening} A few general first steps "
            f"that often help:\n\n{numbered}\n\nIf that doesn't sort it, press **Talk to a human** and someone from "
            f"{org.helpdesk_name} will take it from here (or call {org.helpdesk_phone}, email {org.helpdesk_email}).")
