"""manifest.yml asks for every scope, event and command the code uses, and for no more.

"Used" comes from the code itself: every Slack Web API method named on a client in ``bot/`` (each mapped to its
scopes by Slack's reference, ``tests/fakeslack/scopes.py``), every ``app.event`` and ``app.command`` listener in
``bot/listeners/``, and every shortcut listener there (``app.message_shortcut`` / ``global_shortcut``), which
must be declared under ``features.shortcuts`` with its type and needs the ``commands`` scope.
An end-to-end run checks the scan: each method the running bot called must be one the scan found. Every other
end-to-end test runs the bot on a fake Slack installed from manifest.yml, so a call beyond its scopes fails there
with ``missing_scope``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import yaml

from bot import blocks
from tests.fakeslack import scopes
from tests.slackbot import AGENT, HELPDESK, MANIFEST

BOT = Path(__file__).resolve().parents[1] / "bot"
# Methods called with the app-level token or needing no bot scope.
NO_BOT_SCOPE = {"auth.test", "apps.connections.open", "views.open", "views.update", "views.publish", "views.push",
                "chat.getPermalink"}
# One ``message`` listener, three subscriptions: DM questions, and agents' replies in the escalation channel,
# public or private.
MESSAGE_SUBSCRIPTIONS = {"message.im", "message.channels", "message.groups"}
# Methods whose scope depends on the conversation: what the code may call them on.
BY_CONVERSATION = {
    "conversations.history": {"D": "im:history", "C": "channels:history", "G": "groups:history"},
    "conversations.replies": {"D": "im:history", "C": "channels:history", "G": "groups:history"},
}
# slack_sdk helpers that call several methods.
HELPERS = {"files.upload.v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
API_NAME = re.compile(r"^[a-z]+(_[a-zA-Z0-9]+)+$")  # chat_postMessage, usergroups_users_list


def _slack_method(name: str) -> str:
    return name.replace("_", ".")


def code_uses(root: Path = BOT) -> tuple[set[str], set[str], set[str]]:
    """(Web API methods, event listeners, slash commands) named in the code under ``root``."""
    from slack_sdk import WebClient

    methods, events, commands = set(), set(), set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and API_NAME.match(node.attr) and node.attr != "api_call" \
                    and callable(getattr(WebClient, node.attr, None)):
                name = _slack_method(node.attr)
                methods.update(HELPERS.get(name, (name,)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                owner = node.func.value
                if path.parent.name != "listeners":  # the CLI's Typer app has commands too
                    continue
                if isinstance(owner, ast.Name) and owner.id == "app" and node.func.attr == "event":
                    events.add(node.args[0].value)
                if isinstance(owner, ast.Name) and owner.id == "app" and node.func.attr == "command":
                    commands.add(node.args[0].value)
    return methods, events, commands


SHORTCUT_TYPES = {"message_shortcut": "message", "global_shortcut": "global"}


def code_shortcuts(root: Path = BOT) -> set[tuple[str, str]]:
    """(callback_id, type) of every shortcut listener in ``root``'s listeners, its id a string or a module constant."""
    found = set()
    for path in (root / "listeners").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                     for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "app":
                kind = SHORTCUT_TYPES.get(node.func.attr)
                assert node.func.attr != "shortcut", f"{path.name}: say which shortcut, message_ or global_"
                argument = node.args[0]
                callback = argument.value if isinstance(argument, ast.Constant) else \
                    constants.get(argument.id) if isinstance(argument, ast.Name) else None
                if kind:
                    assert isinstance(callback, str), f"{path.name}: a shortcut's callback_id must be a constant"
                    found.add((callback, kind))
    return found


def needed_scopes(methods: set[str]) -> list[tuple[str, ...]]:
    """For each method: the scopes that allow it (any one of them), per conversation kind where it depends."""
    groups = []
    for method in sorted(methods - NO_BOT_SCOPE):
        if method in BY_CONVERSATION:
            groups += [(scope,) for scope in BY_CONVERSATION[method].values()]
        elif method == "conversations.list":
            groups += scopes.needed(method, {"types": "public_channel,private_channel"})
        else:
            assert method in scopes.METHOD_SCOPES, f"{method}: add its scopes to tests/fakeslack/scopes.py"
            groups += scopes.needed(method, {})
    return groups


def subscriptions(events: set[str]) -> set[str]:
    return {name for event in events for name in (MESSAGE_SUBSCRIPTIONS if event == "message" else {event})}


def problems(manifest: dict, methods: set[str], events: set[str], commands: set[str],
             shortcuts: set[tuple[str, str]] = frozenset()) -> list[str]:
    """What is wrong with ``manifest`` for code that uses these methods, events, commands and shortcuts
    ((callback_id, type) pairs); empty when nothing."""
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    declared = {c["command"] for c in manifest["features"].get("slash_commands") or []}
    declared_shortcuts = {(s["callback_id"], s["type"]) for s in manifest["features"].get("shortcuts") or []}
    used_events = subscriptions(events)
    groups = needed_scopes(methods) + [(scopes.EVENT_SCOPES[e],) for e in used_events if scopes.EVENT_SCOPES[e]]
    if commands or shortcuts:  # Slack's shortcuts need the commands scope too
        groups.append(("commands",))
    found = list(dict.fromkeys(f"missing scope {group[0]}" + (f" (or {', '.join(group[1:])})" if group[1:] else "")
                               for group in groups if not granted.intersection(group)))
    justified = {scope for group in groups for scope in group}
    found += [f"scope {scope} is asked for but nothing uses it" for scope in sorted(granted - justified)]
    found += [f"missing event {e}" for e in sorted(used_events - subscribed)]
    found += [f"event {e} is subscribed but nothing listens" for e in sorted(subscribed - used_events)]
    found += [f"slash command {c} differs" for c in sorted(declared ^ commands)]
    found += [f"{kind} shortcut {callback} differs" for callback, kind in sorted(declared_shortcuts ^ set(shortcuts))]
    if "assistant:write" in granted and "agent_view" not in manifest["features"]:
        found.append("assistant:write needs features.agent_view")
    if "views.publish" in methods and not (manifest["features"].get("app_home") or {}).get("home_tab_enabled"):
        found.append("views.publish needs features.app_home.home_tab_enabled")  # Slack answers not_enabled
    return found


def test_the_manifest_holds_every_scope_event_and_command_the_code_uses_and_no_more():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    methods, events, commands = code_uses()
    assert {"assistant.threads.setStatus", "assistant.threads.setSuggestedPrompts", "reactions.add"} <= methods
    assert code_shortcuts() == {("ask_it_about_this", "message")}
    assert problems(manifest, methods, events, commands, code_shortcuts()) == []


def test_the_home_tab_the_code_publishes_is_enabled_and_the_messages_tab_stays():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    methods, events, commands = code_uses()
    assert "views.publish" in methods and "app_home_opened" in events
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    manifest["features"]["app_home"]["home_tab_enabled"] = False
    assert problems(manifest, methods, events, commands, code_shortcuts()) == [
        "views.publish needs features.app_home.home_tab_enabled"]


def test_a_shortcut_must_be_declared_with_its_type_and_keeps_the_commands_scope_needed():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    methods, events, _commands = code_uses()
    del manifest["features"]["slash_commands"]  # without /itsupport, the shortcut alone needs the commands scope
    declared = manifest["features"].pop("shortcuts")
    assert problems(manifest, methods, events, set(), code_shortcuts()) == [
        "message shortcut ask_it_about_this differs"]
    manifest["features"]["shortcuts"] = [{**declared[0], "type": "global"}]
    assert problems(manifest, methods, events, set(), code_shortcuts()) == [
        "global shortcut ask_it_about_this differs", "message shortcut ask_it_about_this differs"]
    manifest["features"]["shortcuts"] = declared  # neither a command nor a shortcut: commands is not needed
    assert "scope commands is asked for but nothing uses it" in problems(manifest, methods, events, set(), set())


def test_the_check_fails_for_a_scope_too_few_a_scope_too_many_and_an_unheard_event():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    methods, events, commands = code_uses()
    manifest["oauth_config"]["scopes"]["bot"] = [s for s in manifest["oauth_config"]["scopes"]["bot"]
                                                 if s != "reactions:write"] + ["users:read"]
    manifest["settings"]["event_subscriptions"]["bot_events"] = ["app_mention", "message.im", "message.channels",
                                                                 "message.groups", "reaction_added"]
    assert problems(manifest, methods, events, commands, code_shortcuts()) == [
        "missing scope reactions:write", "scope users:read is asked for but nothing uses it",
        "missing event app_home_opened", "event reaction_added is subscribed but nothing listens"]


def test_every_method_a_representative_run_calls_is_one_the_scan_found(make_bot):
    """The scan must not miss a method: drive every surface, then compare with what the fake recorded."""
    bot = make_bot(agent_usergroup="S0AGENTS01", agent_user_ids=())
    fake = bot.fake
    fake.set_usergroup("S0AGENTS01", [AGENT.id])
    fake.wait_for_ack(fake.push(fake.payloads.app_home_opened()))
    fake.wait_for_ack(fake.open_home())
    event, answer = bot.ask("my vpn won't connect at all, error 412")
    bot.click(blocks.ACTION_FEEDBACK, answer, feedback="negative")
    post = bot.escalate(event)
    bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    fake.push(fake.payloads.message("try restarting", user=AGENT.id, channel=HELPDESK, thread_ts=post["ts"]))
    fake.wait_until(lambda: any("try restarting" in m.get("text", "") for m in bot.thread(event)), timeout=10,
                    what="the relay")
    mention = fake.payloads.app_mention("the printer on floor 2 is offline", channel="C0GENERAL")
    fake.push(mention)
    mentioned = bot.final_answer(mention["payload"]["event"])
    bot.click(blocks.ACTION_FEEDBACK, mentioned, feedback="positive")
    fake.wait_for_call("reactions.add", count=2, timeout=10)
    fake.push(fake.payloads.slash_command("status"))
    fake.wait_for_call("chat.postEphemeral", lambda c: "open requests" in json.dumps(c.params), timeout=10)
    pasted = fake.payloads.message("VPN error 809 on my laptop", user=AGENT.id, channel="C0GENERAL")
    fake.push(pasted)
    fake.push(fake.payloads.message_shortcut(fake.message("C0GENERAL", pasted["payload"]["event"]["ts"]),
                                             callback_id="ask_it_about_this"))
    fake.wait_until(lambda: any("You asked about this message" in m.get("text", "")
                                for m in fake.messages(fake.dm_channel())), timeout=10, what="the shortcut's DM")
    bot.settle()

    called = {c.method for c in fake.calls()} - {"upload", "response_url"}
    assert not [c for c in fake.calls() if c.error == "missing_scope"]
    methods, _events, _commands = code_uses()
    assert called - methods - NO_BOT_SCOPE == set()
    assert {"assistant.threads.setSuggestedPrompts", "reactions.add", "usergroups.users.list",
            "conversations.open", "views.publish"} <= called
