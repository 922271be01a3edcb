"""Decide what to do with a routed question: answer, clarify, reject or escalate.

Pure functions over plain data, so every rule is easy to test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from answers.platforms import detect_platform
from answers.router import Route
from answers.taxonomy import INTENTS, IT_INTENTS, OTHER_INTENTS, Action, default_action

__all__ = ["Turn", "Decision", "Evidence", "decide", "looks_like_injection", "looks_like_abuse", "urgent_intent",
           "carries_a_problem", "without_device_aside", "CLARIFY_THRESHOLD"]

CLARIFY_THRESHOLD = 0.25
MAX_ANSWERS_BEFORE_ESCALATION = 2
OWN_DOUBT = 0.6  # below this "not IT" confidence, an organisation's article that covers a problem answers it
URGENT_CONFIDENCE = 0.5  # router confidence from which its "needs a human now" alone escalates
URGENT_WORDS = 4  # ... in a message this long ("laptop battery": it learnt "battery" from swollen ones)
_REPLY_PREFIX = re.compile(r"(?i)^\s*((re|fw|fwd)\s*:\s*)+")  # "RE: FW: laptop battery", a forwarded ticket title

# intent names no one writes in a message by accident ("label: printer" may be a sticker)
_LABELS = "|".join(sorted((i for i in INTENTS if "_" in i or i in ("greeting", "vague")), key=len, reverse=True))
_LABELS += r"|\w+__escalate|escalate"
_INJECTION = re.compile(
    r"(?i)("
    r"\b(ignore|disregard|forget|override|bypass)\b[^.?!\n]{0,40}\b(instructions?|rules|guidelines|prompts?|polic(y|ies)|guardrails|restrictions)\b"
    r"|\bsystem prompt\b|\bhidden (prompt|instructions)\b|\byour (initial |original )?(prompt|configuration)\b"
    # "I followed your instructions" is a follow-up, not an attack: only their hidden or whole text is
    r"|\byour (initial|original|hidden|secret|system|full|exact|real) (instructions|rules)\b"
    r"|\b(reveal|print|show|output|repeat|dump|display|paste|what are)\b[^.?!\n]{0,10}\byour\b[^.?!\n]{0,10}"
    r"\b(instructions|rules)\b(?!\s+(for|on|to|about|how)\b)"
    r"|\byou are now\b|\bdeveloper mode\b|\bjailbr[eo]ak|\bDAN\b|\bno (filters?|restrictions)\b"
    r"|\bpretend (you are|to be|you're)\b|\brole-?play as\b"
    r"|\b(other|another|all|every) (users?|employees?|people|person)'?s? (data|conversations?|messages|chats?|passwords?|tickets?|history)"
    r"|\b(everyone|everybody)'?s (passwords?|data|conversations?)"
    # someone else's sign-in data in bulk: "show me the MFA phone numbers registered for everyone in sales"
    r"|\b(show|list|give|send|export|dump|tell|share|print|display|pull)\b(?![^.?!\n]{0,20}\b(how|steps?|ways?)\b)"
    r"[^.?!\n]{0,30}\b(phone numbers?|numbers|"
    r"passwords?|passcodes?|recovery (codes?|keys?)|backup codes?|security (questions|answers)|pins?)\b[^.?!\n]{0,40}"
    r"\b(for|of|from) (everyone|everybody|all (the )?(users?|employees?|staff|people)|every (user|employee)|"
    r"the (whole|entire) (team|department|company))\b"
    r"|\b(all|every|everyone'?s|everybody'?s|other people'?s) (the )?escalations?\b"
    r"|\b(conversations?|messages|chats?|passwords?|data|tickets?|history)\b[^.?!]{0,20}\b(of|from|for|by) (the )?(other|another|all|every) (users?|employees?|people|colleagues?)\b"
    r"|^\s*(system|assistant)\s*:|(?-i:\bSYSTEM\s*:)|\bassistant\s*:|\[/?INST\]|<\|im_start\|>|<\|system\|>|<!--"
    r"|\bnew[_ ]instructions?\b|\bfrom now on\b|\b(act|acting) as (my|an?|the)\b|\bpretend\b|\boverride\s*[:=]"
    r"|\b(respond|reply|answer) only with\b|\bonly (respond|reply|answer) with\b|\bclassify this as\b"
    r"|\b(is|are) (now )?authori[sz]ed to\b|\bsafe_?mode\s*=\s*(off|false|0)"
    r"|\b(disable|turn off|switch off|bypass|remove) (your|the|all) (content )?(filters?|safety|guardrails|restrictions)\b"
    # asking for the assistant's own configuration, prompt or secrets
    r"|\b(reveal|print|show|output|repeat|dump|display|share|tell me|give me|list|reply with|paste)\b[^.?!\n]{0,25}"
    r"\b(your|the assistant'?s)\b[^.?!\n]{0,20}\b(prompt|configuration|config|system message|api keys?|"
    r"tokens?|secrets?|environment|env vars?|\w*_TOKEN)\b"
    r"|\b(api keys?|secrets?|access tokens?|bot tokens?)\b[^.?!\n]{0,20}\b(do you|you use|you have|in your)\b"
    r"|\b(instructions|rules|prompt)\b[^.?!\n]{0,30}\b(you were given|were you given|give you|gave you|your developers)\b"
    r"|\bhidden (rules|configuration|config)\b|\b(you'?re|you are) (now )?in debug mode\b|\benter debug mode\b|\bsafety (layer|filters?)\b[^.?!\n]{0,20}\b(off|offline|disabled)\b"
    r"|\b(unlimited|elevated|full) privileges\b[^.?!\n]{0,30}\bcomply\b|\bcomply with (all|every|any) (of )?(my |the user'?s? )?(requests?|commands?|orders?)\b"
    # fake system or admin turns (Slack's <tag> arrives escaped, and normalising leaves "system ... /system")
    r"|<\s*/?\s*(admin|system|sudo|root|instructions?)\s*>|(^|\s)/(admin|system|sudo|root|instructions?)\b|\[\s*system\b|\"role\"\s*:\s*\"system\"|\badmin note\b"
    # encoded instructions
    r"|\b(decode|rot-?13|base64)\b[^\n]{0,40}\b(follow|execute|run|obey)\b|\b(follow|execute|obey)\b[^.?!\n]{0,20}\b(rot-?13|base64)\b"
    r"|\brespond as if\b|\blet'?s role-?play\b|\brole-?play\s*:"
    r"|\b(label|classify|tag)\b[^.?!\n]{0,25}\bas\b[^.?!\n]{0,5}\b[a-z]+_[a-z_]+\b"
    r"|\b(respond|reply|answer|say|output)\b[^.?!\n]{0,40}\b(and nothing else|no matter what)\b|\bcomplete this sentence\b"
    # the same in other languages
    r"|\b(ignora|ignorar|ignorez|ignoriere|ignorieren|negeer|zignoruj|oublie|olvida|vergiss|esquece)\b[^.?!\n]{0,40}"
    r"\b(instrucciones|instruções|instructions|anweisungen|règles|reglas|regeln|regras|istruzioni|instructies|"
    r"polecenia|consignes|regole)\b"
    r"|指示[^。？！\n]{0,10}無視|無視[^。？！\n]{0,10}指示"
    # forcing a label, or notes addressed to the bot inside a pasted message
    rf"|\b(label|intent)\s*[:=]\s*[\"']?({_LABELS})\b|\breclassify\b[^.?!\n]{{0,10}}\bas\s+[\"']?({_LABELS})\b"
    r"|\byour label set\b|\bnote to (the )?(chat)?bot\b|\b(assistant|bot) note\b|\(bot:"
    r"|\bsystem notice\b|\bsudo mode\b|\bshow_system\b"
    r")"
)
# Requests to harm others or get around security: refused whatever IT topic they mention.
_ABUSE = re.compile(
    r"(?i)("
    r"\b(hack|hacking|brute[- ]?forc\w*|keylog\w*|exploits?|sniff\w*|ddos)\b"
    # "crack" is abuse for passwords and licences, not for a cracked screen
    r"|\bcrack(ing|ed)?\b[^.?!]{0,20}\b(passwords?|licen[cs]es?|software|hash\w*|keys?|serials?|wi-?fi|wpa\w*|accounts?|pins?)\b"
    r"|\b(write|create|make|draft|build|design)\b[^.?!]{0,30}\b(phishing|scam|fake (login|invoice|email|page))\b"
    r"|\b(passwords?|credentials|logins?|pin|mfa|codes?) (of|for|from) (my )?(neighbou?rs?|colleagues?|co-?workers?|other people)\b"
    r"|\b(neighbou?r|colleague|co-?worker)'?s (password|login|credentials|wi-?fi|mfa|codes?)\b"
    r"|\bwhat'?s (his|her|their) password\b|\bwithout (them|him|her|anyone|my (boss|manager|colleagues?)) know\w*"
    r"|\bsecretly\b|\bcovertly\b|\bfake (my )?(location|compliance)|\blook compliant\b"
    # at most two words between the verb and what it would switch off, none of them "and"/"but": "an app I can't
    # uninstall and Defender keeps flagging it" is a question about malware, not a request to disable Defender
    r"|\b(uninstall|disable|turn off|switch off|remove|kill)\s+(?:(?!and\b|but\b|or\b)\S+\s+){0,2}"
    r"(dlp|monitoring|antivirus|anti-virus|defender|edr|crowdstrike|firewall|security (software|agent|tools?))\b"
    r"|\b(bypass|get around|get past|circumvent|evade)\b[^.?!]{0,30}"
    r"\b(dlp|monitoring|web ?filter|content filter|proxy|antivirus|defender|edr|mfa|2fa|firewall|security)\b"
    # other people's accounts, codes and private data
    r"|\b(colleague|coworker|co-worker|teammate|ex-colleague|direct report|boss|manager|ceo|cfo|cto|coo|director)"
    r"'?s\b[^.?!\n]{0,30}"
    r"\b(password|passcode|authenticator|mfa code|private|browsing|salary|chat history|recovery key)\b"
    r"|\b(which|what) (of my )?(users|employees|colleagues|coworkers|co-workers|people)\b[^.?!\n]{0,30}"
    r"\b(reset|changed|clicked|opened|failed|visited|reported|haven'?t|have not|still|logged|signed)\b"
    r"|\bwho (on|in) (my|the|our) (floor|team|department|office)\b[^.?!\n]{0,30}\b(clicked|opened|failed|visited|reported)\b"
    r"|\b(pull|show|see|get|send|give)\b[^.?!\n]{0,20}\b(access|audit) logs?\b|\bwhat websites\b[^.?!\n]{0,40}\b(visit\w*|brows\w*)\b"
    r"|\b(log|sign) in as (him|her|them|another (user|person|employee)|someone else)\b"
    r"|\bon \w+'s account\b|\bhome addresses\b"
    r"|\b(tell|give|send|share)\b[^.?!\n]{0,15}\b(the|a)\b[^.?!\n]{0,10}\badmin(istrator)? password\b"
    r"|\bwithout (going through (it|the helpdesk|the service desk)|telling (them|him|her|anyone))\b"
    # pirated software and licence keys
    r"|\b(cracked|pirated)\s+(version|copy|copies|creative cloud|office|photoshop|windows)\b|\bkeygen\b|\bkms activator\b"
    r"|\bfree (licen[cs]e|serial|product|activation) (key|number)s?\b|\b(licen[cs]e|product|activation) keys?\b[^.?!\n]{0,20}\bfor free\b"
    # hiding from IT or its controls
    r"|\bwithout (it|the it team|security|the mdm|intune)\b[^.?!\n]{0,15}\b(finding out|knowing|getting an alert)\b"
    r"|\bnobody (needs|has) to know\b"
    r"|\bhide\b[^.?!\n]{0,30}\b(from (it|intune|company portal|the mdm|security|my employer)|root|jailbr\w+)\b"
    r"|\bappear compliant\b|\b(skips?|dodges?|gets? around) the (proxy|web filter)\b"
    r")"
)
_FAILED = re.compile(
    r"(?i)\b(still|didn'?t|did not|doesn'?t|does not|not work\w*|no luck|same (problem|issue|error|thing)|"
    r"tried (that|this|it|those|everything|all)|no change|nope|not (fixed|solved|helping|helpful)|isn'?t working|"
    r"no difference|nothing changed|keeps? happening|again)\b"
)
# "I followed your steps" points back at the bot's answer: a follow-up whatever the router makes of it
_REFERS_BACK = re.compile(r"(?i)\b(your|those|these|the|that) (instructions|steps|suggestions?|fix(es)?|advice|solutions?|answer)\b")
_SOLVED = re.compile(
    r"(?i)\b(that (fixed|solved|worked|did) it|it'?s? (fixed|working|sorted|solved)( now)?|works now|working now|"
    r"all good( now)?|problem solved|sorted,? thanks?|that worked|fixed it)\b"
)
# Safety net for "needs a human now": a missed escalation costs far more than an extra one.
_COMPROMISE = (
    re.compile(r"(?i)\b(entered|typed|put in|gave|given|submitted|shared|told|sent|read out)\b(?![^.!?]{0,40}\b(wrong|incorrect|too many|mistyped)\b)"
               r"[^.!?]{0,40}\b(password|credentials?|creds|login details|verification code|mfa code|one[- ]time code|"
               r"codes?|otp|bank details)\b(?![- ]protect)"),
    re.compile(r"(?i)\b(gave|granted|allowed|let)\b[^.!?]{0,30}\bremote (access|control|session)\b"),
    re.compile(r"(?i)\bapproved\b[^.!?]{0,40}\b(mfa|push|prompts?|requests?|sign-?ins?|duo|okta)\b"
               r"[^.!?]{0,60}\b(didn'?t|did not|wasn'?t|not me|by accident|accidentally|worried|wouldn'?t stop)\b"),
    re.compile(r"(?i)\b(sent|sending|sends)\b[^.!?]{0,30}\b(emails?|messages?|spam)\b[^.!?]{0,40}"
               r"\b(didn'?t|did not|never|by itself|on its own|without me)\b"),
    re.compile(r"(?i)\b(ran|opened|installed|enabled)\b[^.!?]{0,40}\b(attachment|macro|extension|program|app|file)\b"
               r"[^.!?]{0,40}\b(email|message|link|told|asked)\b[^.!?]{0,60}\b(now|since|weird|redirect\w*|pop-?ups?|encrypt\w*)\b"),
)
# An account someone else has taken over ("my work email got hacked", "our instagram account got hacked"): the
# security team acts now (sessions revoked, password reset), whatever article matches the words. One's own consumer
# accounts are not the helpdesk's (``about_personal_life``); "how do I know if ..." asks, it does not report.
_TAKEN_OVER = re.compile(
    r"(?i)^(?!.*\bhow (do|can|would) (i|you|we) (know|tell|check|find out)\b)(?:.*\b(account|e-?mail|mailbox|inbox|"
    r"login|page|profile|website|channel|handle|instagram|facebook|linkedin|twitter|tiktok|youtube)\s+"
    r"(?:\w+\s+){0,2}?(?:was|were|is|are|got|gets|has been|have been|has got|been)\s+(?:\w+\s+)?"
    r"(hacked|compromised|taken over|hijacked|breached)\b"
    r"|.*\b(hacked|hijacked|took over|broke into|broken into|got into) (my|our|the|the company'?s|a|an)"
    r"(?: [\w-]+){0,2} (account|e-?mail|mailbox|page|profile|website|channel)\b)"
)
_DANGER = re.compile(
    r"(?i)\b(smok(e|ed|es|ing)|burning smell|smells? (like |of )?burn\w*|sparks?|sparking|swell\w*|swollen|bulg\w*|"
    r"on fire|melt\w*|spill\w*|spilt|poured\b[^.!?]{0,20}\b(coffee|water|tea|wine|juice|soda|drink)|got wet|"
    r"water damage\w*|dropped (it )?in(to)? (the )?(water|toilet|sink|bath|pool|sea|lake|river))\b"
)
_DEVICE = r"(laptop|macbook|notebook|computer|phone|iphone|android|ipad|tablet|device)"
# What a device can lose or miss without being lost itself: "lost all my contacts on my phone", "my phone is
# missing a button", "missing icons on my iPad".
_PART_OF_IT = (r"(all |my |the |some |its |his |her |a |an )*(contacts|data|files|photos|pictures|messages|texts|"
               r"emails|apps?|icons?|buttons?|keys?|connection|signal|wi-?fi|internet|sound|audio|charge|battery|"
               r"settings|notes|screen|updates?|features?)\b")
_MISSES_A_PART = re.compile(
    rf"(?i)\b(lost|missing|lose|losing)\b {_PART_OF_IT}|\b(is|are) missing (a|an|the|its|some|one|two)\b"
)
_LOSS = re.compile(
    rf"(?i)\b(stolen|stole|lost|left|missing|theft|robbed|snatched)\b(?! {_PART_OF_IT})[^.!?]{{0,40}}"
    rf"\b{_DEVICE}\b"
    r"(?!\s*(charger|bag|case|cable|adapter|sleeve|stand|pen|mouse|dongle|password))"
    # "... and the Toughbook is gone"; "the phone is missing a button" is not
    r"|\b(laptop|macbook|notebook|toughbook|computer|phone|iphone|ipad|tablet|device)\b "
    r"(((is|was|are|were|got) )?(gone|missing|stolen)|(has|have) been (stolen|taken|nicked))\b"
    r"(?! (a|an|the|its|some|any|one|two|all|every)\b)"
)


# Something does not work: with the name of a system, that is an IT problem even if no article names the system.
_BROKEN = re.compile(
    r"(?i)(\b(broken|down|crash\w*|error\w*|fail\w*|stuck|not (work\w*|load\w*|open\w*|start\w*|"
    r"respond\w*|sync\w*)|won'?t (work|load|open|start|launch|sync|let me)|doesn'?t (work|load|open|start)|"
    r"isn'?t (working|loading)|can'?t (log|sign) ?in|(login|sign-?in) (fails|failed|loop)|keeps? (crash\w*|"
    r"logging me out|freezing)|access denied|unauthori[sz]ed|timed? ?out|times out)\b)"
)

# Asking for a person names one, or a way to reach one ("a human", "someone", "call", "open a ticket"). "Can you
# help me with my email" names neither: it asks for help with a topic, which the knowledge base gives.
_NAMES_A_PERSON = re.compile(
    r"(?i)\b(human|person|people|some ?(one|body)|any ?(one|body)|who(ever)?\b|agent|tech|engineer|guy|staff|team|"
    r"desk|helpdesk|servicedesk|support|operator|represent|colleague|admin|real|live|call|phone|ring|speak|talk|chat|contact|reach|"
    r"escalat|ticket|incid|inced|hand ?off|case|manager|bot\b|robot|machine|walk|book|appoint|hours|duty|status|"
    r"update on|raise|log (this|it)|p[1-4]\b|inc\d|req\d|ritm|open|issue|mensch|mitarbeiter|t[eé]cnic|soporte|"
    r"servicio|parlar|llam|tel[eé]f|ext\b|extension|number|weekend|hold of|erreichbar|pessoal)|\d{5,}"
)

# "How do I message whoever is on call for ortho": how to reach someone else (a colleague, a rota, a customer) through
# the organisation's systems is a question for its articles, not a request for a person from the helpdesk.
_REACHES_SOMEONE_ELSE = re.compile(
    r"(?i)\bhow (do|can|could|should|would) (i|we)\b[^.!?]{0,20}\b(msg|message|page|text|contact|reach|ping|email|"
    r"get hold of)\b(?![^.!?]{0,30}\b(it|i\.t\.?|helpdesk|help ?desk|service ?desk|support|tech\w*|you|human|"
    r"(a |real |live )?(person|agent)|some(one|body) (in|from|at) (it|i\.t\.?|the helpdesk|support))\b)"
)

# A message that reports a problem or asks for something concrete: it gets an answer, not "tell me more".
_PROBLEM = re.compile(
    r"(?i)\b(not|n't|never|cannot|can ?not|unable|(ca|could|did|has|have|was|were|wo|does|is|are)n'?t|"
    r"broken|broke|down|fail\w*|error\w*|"
    r"crash\w*|stuck|frozen|freez\w*|slow|blocked|locked|expired|missing|lost|forgot\w*|reset|issues?|problems?|troubles?|"
    r"help with|how (do|can|to)|where (do|can|is)|need|want|request|install|set ?up|connect\w*|access|login|log ?in|"
    r"sign ?in|keeps?|stopped|no longer|wrong|denied|black|blank|flicker\w*|no (sound|signal|internet|audio|video))\b"
)


# Asking the bot to act as a personal assistant on one's own mail or calendar ("do I have any new emails from Sam",
# "what's on my calendar tomorrow", "delete the dentist from my calendar"): not IT support, unless a problem is named.
_ASSISTANT_REQUEST = re.compile(
    r"(?i)^\W*(?:(?:please|pls|hey|hi|ok|can you|could you|would you)\W+)*(?:"
    r"(?:read|show|check|open|list)(?: me)? (?:my|the) (?:(?:latest|last|newest|new|recent|unread) )?"
    r"(?:e-?mails?|inbox|mail|messages?|calendar|agenda|schedule|meetings?)\b"
    r"|(?:do|did) i (?:have|get|got) (?:any )?(?:new |unread |more )?(?:e-?mails?|mail|messages?|meetings?)\b"
    r"|any (?:new |unread )?(?:e-?mails?|mail|messages?) (?:from|about|regarding)\b"
    r"|what(?:'?s| is) (?:on )?my (?:calendar|agenda|schedule)\b"
    r"|is [^?.!]{1,40} (?:on|in) my (?:calendar|agenda|schedule)\b"
    r"|(?:when|what time) is my (?:next )?(?:meeting|appointment|call)\b"
    r"|(?:add|put|schedule|book|move|cancel|delete|erase|remove|clear)\b[^.?!]{0,40}\b(?:to|from|on|in|off) my "
    r"(?:calendar|agenda|schedule)\b|clear my (?:calendar|agenda|schedule)\b"
    r")"
)


# One's own life rather than work: a consumer service, a household device, one's bank ("forgot my psn password",
# "fridge keeps making a clicking noise", "banking app won't accept my fingerprint"). Not IT support unless the
# message also says it is about work ("outlook on my own phone", "a customer's online banking", "our instagram") or
# the organisation's own article covers it. Whose device someone writes from ("locked out, writing from my wife's
# phone") says nothing: a locked-out employee often has only a family member's phone or a personal laptop.
_PERSONAL_LIFE = re.compile(
    r"(?i)\b(?:netflix|spotify|disney ?\+|disney plus|hulu|hbo|prime video|playstation|ps[345]|psn|xbox|nintendo|"
    r"steam account|roblox|fortnite|minecraft|twitch|ebay|etsy|vinted|amazon (?:order|parcel|delivery|prime|seller)|"
    r"online banking|banking app|my bank\b|bank card|credit card|debit card|paypal|venmo|revolut|instagram|facebook|"
    r"tiktok|snapchat|whatsapp|hotmail|yahoo mail|icloud|fridge|freezer|tumble dryer|washing machine|dishwasher|"
    r"microwave|boiler|thermostat|tv remote|smart tv|doorbell|sonos|alexa|echo dot|google home|fitbit|smartwatch|"
    r"apple watch|garmin|kindle|airpods|my car\b|personal gmail)"
)
_ABOUT_WORK = re.compile(
    r"(?i)\b(?:work|job|company|office|corporate|business|employer|employee|customers?|clients?|patients?|"
    r"colleagues?|co-?workers?|manager|staff|shift|teams|outlook|vpn|mfa|sso|citrix|onedrive|sharepoint|slack|zoom|"
    r"helpdesk|(?-i:IT)|enterprise|payroll|boss|director|ceo|admin(?:istrator)?|authenticator|okta|2fa|"
    r"verification codes?|bitlocker|guest (?:wi-?fi|network)|junk|spam|(?:mid-)?calls?|meetings?|training|"
    r"network|proxy|firewall|our|keyboard|mouse|monitor|dock(?:ing station)?|"
    r"(?<!home )(?<!personal )(?<!own )laptops?)\b"
)


# Which device someone writes from, as an aside: "cant get into my account, using my husband's phone to write this".
# A locked-out employee often has only a family member's phone to hand; the router learnt such phones from questions
# about the phones themselves, so the aside would turn the message away. It says nothing of the problem.
_KIN = (r"(?:husband|wife|partner|boyfriend|girlfriend|fianc[eé]e?|son|daughter|kid|child|mum|mom|mother|dad|father|"
        r"brother|sister|friend|neighbou?r|flatmate|roommate|housemate|colleague|co-?worker|boss|manager|family)")
_ASIDE_DEVICE = (rf"(?:my |a |the )?{_KIN}'?s'? (?:phone|mobile|cell(?:phone)?|iphone|android|laptop|ipad|tablet|"
                 r"computer|pc|mac|device)\b(?: to (?:write|send|type|message|text|contact|reach|ask)"
                 r"(?: (?:this|you|it|the helpdesk|for help))?)?(?: (?:right now|at the moment|for now|atm))?\s*\)?")
_DEVICE_ASIDE = re.compile(
    r"(?i)(?:"
    # "..., using my husband's phone", "(on my mum's laptop)", "and I'm on my daughter's ipad"
    r"(?:^|[,;(]|\s-|\b(?:and|but|so)\b)\s*(?:i'?m |i am |am )?(?:currently |now |just )?(?:using|on) "
    # "writing this from my wife's phone", "typing from a friend's laptop"
    r"|\b(?:i'?m |i am )?(?:writing|typing|texting|sending|messaging)(?: (?:this|you|it))?(?: (?:from|on|with))? "
    r"|\b(?:i'?m|i am) (?:currently |now |just )?(?:using|on) "
    rf"){_ASIDE_DEVICE}"
)


def without_device_aside(text: str) -> str:
    """``text`` without an aside saying whose device it was written from (the whole text if that is all it says)."""
    stripped = _DEVICE_ASIDE.sub(" ", text)
    stripped = re.sub(r"\s{2,}", " ", stripped)
    stripped = re.sub(r"\s+([,.!?])", r"\1", re.sub(r"(?:\s-|[,;])\s*(?=[,.!?;]|$)", "", stripped)).strip(" ,;-")
    return stripped if len(stripped.split()) >= 2 else text


@dataclass(frozen=True, slots=True)
class Evidence:
    """What retrieval found for a message: how well the knowledge base covers it."""

    topic: str | None = None  # topic of the best article
    score: float = 0.0  # its fused retrieval score
    covered: bool = False  # good enough to answer from
    strong: bool = False  # so clearly about an article that it is IT whatever the router thinks
    content: bool = False  # the article shares a word with the message beyond "broken", "help", "again"
    unknown_name: bool = False  # the message names a system (not an English word) that no article mentions
    own: bool = False  # the best article is the organisation's own (its topic is not one the router learnt)
    fit: float = 0.0  # when own: how well it fits the message (``AnswerEngine.own_fit``)
    # when own: how much nearer (cosine) the message is to the article than to the everyday questions the router learnt
    # "not IT" from (negative: nearer those; ``AnswerEngine._nearer_than_everyday``)
    nearer: float = 0.0


def asks_an_assistant(text: str) -> bool:
    """True for a request to read, search or edit one's own mail or calendar that names no problem."""
    return bool(_ASSISTANT_REQUEST.search(text)) and not carries_a_problem(text)


def about_personal_life(text: str) -> bool:
    """True for a message about one's own consumer accounts or household devices that says nothing of work."""
    return bool(_PERSONAL_LIFE.search(text)) and not _ABOUT_WORK.search(text)


def carries_a_problem(text: str) -> bool:
    """True when a message names a problem or a request, however tersely ("mouse not working")."""
    return bool(_PROBLEM.search(text))


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a conversation, as the engine needs it."""

    role: str  # "user" or "assistant"
    text: str
    intent: str | None = None
    action: str | None = None
    sources: tuple[str, ...] = ()  # article ids shown


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine will do, and why."""

    action: Action
    intent: str
    confidence: float
    reason: str
    platform: str | None = None
    follow_up: bool = False
    exclude: frozenset[str] = frozenset()


def it_outweighs(route: Route) -> bool:
    """The IT topics together are likelier than "not IT", which leads only as the likeliest single label.

    "User account disabled - returning from maternity leave": not IT 0.49 against locked account 0.26, password
    0.12 and the other topics, 0.51 in all. Such a message is asked about, not turned away.
    """
    return sum(p for intent, p in route.ranked if intent in IT_INTENTS) > route.probability("out_of_scope")


def looks_like_injection(text: str) -> bool:
    """True for attempts to change the assistant's rules or reach other people's data."""
    return bool(_INJECTION.search(text))


def looks_like_abuse(text: str) -> bool:
    """True for requests to harm others or get around security controls."""
    return bool(_ABUSE.search(text))


def urgent_intent(text: str, route: Route) -> str | None:
    """The intent of a message that needs a person now (compromise, danger, loss), else None."""
    # "entered my password ..." is only a compromise when phishing is in the air at all
    first, *specific = _COMPROMISE
    if any(pattern.search(text) for pattern in specific) or (route.probability("phishing") >= 0.1 and first.search(text)):
        return "phishing"
    if _TAKEN_OVER.search(text) and not about_personal_life(text):
        return "phishing"
    if route.intent in ("hardware", "mobile_device", "slow_computer", "meetings_av"):
        if _DANGER.search(text) or _LOSS.search(text):
            return route.intent if route.intent in ("hardware", "mobile_device") else "hardware"
    return None


def _current_topic(history: Sequence[Turn]) -> tuple[str | None, int, frozenset[str], str | None]:
    """The IT intent the conversation is about, answers given on it, articles shown, platform named."""
    topic, answers, shown, platform = None, 0, set(), None
    for turn in history:
        if turn.role == "user":
            platform = detect_platform(turn.text) or platform
            continue
        if turn.intent and turn.intent not in OTHER_INTENTS and turn.action in (Action.ANSWER, Action.ESCALATE):
            if turn.intent != topic:
                topic, answers, shown = turn.intent, 0, set()
            answers += turn.action == Action.ANSWER
            shown.update(turn.sources)
    return topic, answers, frozenset(shown), platform


def decide(text: str, route: Route, history: Sequence[Turn] = (), *, threshold: float = CLARIFY_THRESHOLD,
           evidence: Evidence | None = None) -> Decision:
    """Choose the action for ``text`` given its route, what the knowledge base holds, and the conversation so far.

    Args:
        text: The user's normalised, redacted message.
        route: The router's verdict (safety, greeting, vague, human request, not IT, built-in topic).
        history: Earlier turns of this conversation, oldest first.
        threshold: Below this confidence an IT intent is clarified, not answered.
        evidence: What retrieval found; without it the router alone decides.
    """
    if looks_like_injection(text):
        return Decision(Action.REJECT, "out_of_scope", max(route.confidence, 0.99), "prompt injection")
    if looks_like_abuse(text):
        return Decision(Action.REJECT, "out_of_scope", max(route.confidence, 0.99), "harmful request")

    if asks_an_assistant(text):
        return Decision(Action.REJECT, "out_of_scope", route.confidence, "assistant request")

    platform = detect_platform(text)
    topic, answers, shown, history_platform = _current_topic(history)
    if topic is not None:
        # an IT topic, or one of the organisation's own (only a topic picked from the buttons routes there)
        new_topic = (route.intent in IT_INTENTS or route.intent not in INTENTS) and route.intent != topic \
            and route.confidence >= threshold
        if evidence is not None and evidence.strong and evidence.topic not in (None, topic):
            new_topic = True
        words = len(text.split())
        if _SOLVED.search(text) and not new_topic:
            return Decision(Action.CLARIFY, "greeting", route.confidence, "solved", follow_up=True)
        if platform and words <= 8 and not new_topic:
            return Decision(Action.ANSWER, topic, route.confidence, "platform follow-up", platform=platform,
                            follow_up=True)
        if (_FAILED.search(text) and not new_topic and route.intent != "human_request"
                and (route.intent != "out_of_scope" or _REFERS_BACK.search(text))):
            if answers >= MAX_ANSWERS_BEFORE_ESCALATION:
                return Decision(Action.ESCALATE, topic, route.confidence, "repeated failure", follow_up=True)
            return Decision(Action.ANSWER, topic, route.confidence, "next steps", follow_up=True,
                            platform=platform or history_platform, exclude=shown)

    # The router's own sense of urgency, without a rule to back it, only when it is sure of the topic: an unsure
    # "needs a human now" was mostly an unfamiliar system's fault ("the invoice tile isn't showing").
    # Nor when the organisation's own article clearly answers it: the router learnt urgency from the built-in topics.
    urgent = urgent_intent(text, route) or (
        route.intent if route.urgent and route.confidence >= max(threshold, URGENT_CONFIDENCE)
        and len(_REPLY_PREFIX.sub("", text).split()) >= URGENT_WORDS  # a couple of words say no emergency
        and not _MISSES_A_PART.search(text)  # the router learnt "missing" from lost phones, not missing buttons
        and not (evidence is not None and evidence.own and evidence.strong) else None)
    if urgent:
        return Decision(Action.ESCALATE, urgent, route.confidence, "needs a human now", platform=platform)
    if about_personal_life(text) and not (evidence is not None and evidence.own and evidence.covered):
        return Decision(Action.REJECT, "out_of_scope", route.confidence, "personal")
    action = default_action(route.intent)
    platform = platform or history_platform
    if evidence is None:
        if action in (Action.ANSWER, Action.REJECT) and route.confidence < threshold:
            return Decision(Action.CLARIFY, route.intent, route.confidence, "low confidence", platform=platform)
        return Decision(action, route.intent, route.confidence, route.intent, platform=platform)
    return _decide_with_evidence(text, route, action, evidence, threshold=threshold, platform=platform)


def _decide_with_evidence(text: str, route: Route, action: Action, evidence: Evidence, *, threshold: float,
                          platform: str | None) -> Decision:
    """The three-way scope decision: covered IT is answered, uncovered IT is said so, non-IT is declined."""
    confident = route.confidence >= threshold and not (route.intent == "out_of_scope" and it_outweighs(route))
    problem = carries_a_problem(text)
    topic = evidence.topic or route.intent
    # "Zorblax is broken": a system the KB does not know, with a fault. IT, just not covered.
    unknown_fault = Decision(Action.ESCALATE, "software_issue", route.confidence, "not covered", platform=platform) \
        if evidence.unknown_name and _BROKEN.search(text) else None
    if route.intent == "out_of_scope":
        if unknown_fault and not evidence.covered:
            return unknown_fault
        if evidence.strong:  # the organisation's own KB clearly answers it ("the HR portal shows a blank page")
            return Decision(Action.ANSWER, topic, route.confidence, "knowledge base", platform=platform)
        # The router learnt "not IT" from everyday questions, not from an organisation's own systems: unless it is
        # sure, a problem that one of the organisation's articles covers is answered from it.
        if confident and not (evidence.own and route.confidence < OWN_DOUBT):
            return Decision(Action.REJECT, route.intent, route.confidence, route.intent, platform=platform)
        if evidence.covered and evidence.content and problem:
            return Decision(Action.ANSWER, topic, route.confidence, "terse", platform=platform)
        return Decision(Action.CLARIFY, route.intent, route.confidence, "low confidence", platform=platform)
    if route.intent in ("greeting", "vague") or (route.intent in IT_INTENTS and not confident):
        if evidence.covered and evidence.content and (problem or evidence.strong):
            return Decision(Action.ANSWER, topic, route.confidence, "terse", platform=platform)
        if unknown_fault:
            return unknown_fault
        if route.intent == "greeting" and confident:
            return Decision(Action.CLARIFY, route.intent, route.confidence, route.intent, platform=platform)
        return Decision(Action.CLARIFY, route.intent, route.confidence, "low confidence", platform=platform)
    if route.intent == "human_request" and not _REACHES_SOMEONE_ELSE.search(text):
        # help with a topic, not a person (or, as far as the router can tell, a problem the organisation's own article
        # covers): answer it, or ask which problem
        if not _NAMES_A_PERSON.search(text) or (evidence.own and evidence.covered and route.confidence < OWN_DOUBT):
            if evidence.covered and evidence.content and (problem or evidence.strong):
                return Decision(Action.ANSWER, topic, route.confidence, "terse", platform=platform)
            return Decision(Action.CLARIFY, "vague", route.confidence, "low confidence", platform=platform)
        return Decision(action, route.intent, route.confidence, route.intent, platform=platform)
    if not evidence.covered:  # IT, but no article answers it: say so, give first steps, offer a person
        return Decision(Action.ESCALATE, route.intent, route.confidence, "not covered", platform=platform)
    return Decision(Action.ANSWER, topic, route.confidence, route.intent, platform=platform)
