"""The fake Slack against the real slack_bolt App, slack_sdk WebClient and builtin Socket Mode client."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from . import SLACK_ACK_DEADLINE_S, FakeSlack, Payloads, views


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str, text: str = "Go") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text}}


# -- the five scenarios the fake exists for ------------------------------------


def test_dm_event_is_acked_and_answered_in_its_thread(fake: FakeSlack) -> None:
    app = App(token=fake.bot_token, client=WebClient(base_url=fake.api_url, token=fake.bot_token))

    @app.event("message")
    def answer(event: dict[str, Any], say: Any) -> None:
        say(text=f"You said: {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    handler = SocketModeHandler(app, fake.app_token)
    handler.connect()
    try:
        envelope = fake.payloads.message("my laptop will not boot")
        ack = fake.wait_for_ack(fake.push(envelope), timeout=SLACK_ACK_DEADLINE_S)
        reply = fake.wait_for_call("chat.postMessage")
    finally:
        fake.stop_handler(handler)

    event = envelope["payload"]["event"]
    assert ack.payload is None and not ack.late
    assert reply.ok and reply.token == fake.bot_token
    assert reply.params["channel"] == event["channel"] == fake.dm_channel()
    assert reply.params["thread_ts"] == event["ts"]
    thread = fake.messages(fake.dm_channel(), thread_ts=event["ts"])
    assert [m["text"] for m in thread] == ["my laptop will not boot", "You said: my laptop will not boot"]
    assert thread[1]["bot_id"] == fake.workspace.bot_id
    assert [c.method for c in fake.calls()] == ["auth.test", "apps.connections.open", "chat.postMessage"]
    assert fake.calls("apps.connections.open")[0].token == fake.app_token


def test_slash_command_ack_body_is_recorded(fake: FakeSlack, app: App) -> None:
    @app.command("/itsupport")
    def itsupport(ack: Any, command: dict[str, Any]) -> None:
        ack(text=f"On it: {command['text']}", response_type="ephemeral")

    with fake.connect(app):
        ack = fake.wait_for_ack(fake.push(fake.payloads.slash_command("printer jammed")))

    assert ack.payload == {"text": "On it: printer jammed", "response_type": "ephemeral"}
    assert ack.latency is not None and ack.latency < SLACK_ACK_DEADLINE_S


@pytest.mark.parametrize(("content", "error"), [
    ({"text": "fallback", "blocks": [section(f"part {i}") for i in range(51)]}, "invalid_blocks"),
    ({"text": "fallback", "blocks": [section("x" * 3001)]}, "invalid_blocks"),
    ({"text": "fallback", "blocks": [{"type": "actions", "elements": [button("escalate", "v" * 2001)]}]},
     "invalid_blocks"),
    ({"text": "x" * 40_001}, "msg_too_long"),
], ids=["51-blocks", "section-3001", "button-value-2001", "text-40001"])
def test_slack_limits_raise_slack_api_error_in_the_real_client(fake: FakeSlack, content: dict[str, Any],
                                                              error: str) -> None:
    client = fake.web_client()

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=fake.dm_channel(), **content)

    assert raised.value.response["error"] == error
    assert fake.messages(fake.dm_channel()) == []


def test_rate_limited_post_is_retried_after_retry_after(fake: FakeSlack) -> None:
    client = fake.web_client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    fake.fail_next("chat.postMessage", status=429, retry_after=1)

    response = client.chat_postMessage(channel=fake.dm_channel(), text="hello")

    first, second = fake.calls("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited")
    assert response["ok"] and second.ok
    assert second.at - first.at >= 1.0
    assert [m["text"] for m in fake.messages(fake.dm_channel())] == ["hello"]


def test_client_reconnects_after_server_closes_the_socket(fake: FakeSlack, app: App) -> None:
    @app.event("message")
    def answer(event: dict[str, Any], say: Any) -> None:
        say(text="still here", thread_ts=event["ts"])

    # The builtin client reconnects after a close frame only when its monitor
    # next runs (every ping_interval), so keep that short here.
    with fake.connect(app, ping_interval=0.5):
        first = fake.connections()[0]
        fake.close_connections()
        second = fake.wait_for_connection(count=2)
        ack = fake.wait_for_ack(fake.push(fake.payloads.message("are you there?")))
        reply = fake.wait_for_call("chat.postMessage")

    assert first.id == 1 and fake.connections()[0].closed_at is not None
    assert ack.connection_id == second.id
    assert reply.params["text"] == "still here"
    opened = fake.calls("apps.connections.open")
    assert len(opened) == 2 and opened[0].response["url"] != opened[1].response["url"]


# -- Socket Mode details ---------------------------------------------------------


def test_disconnect_envelope_moves_the_client_to_a_new_connection(fake: FakeSlack, app: App) -> None:
    @app.event("message")
    def answer(say: Any) -> None:
        say(text="ok")

    with fake.connect(app):
        fake.send_disconnect(reason="refresh_requested")
        second = fake.wait_for_connection(count=2)
        ack = fake.wait_for_ack(fake.push(fake.payloads.message("hi")))

    assert ack.connection_id == second.id
    assert len(fake.calls("apps.connections.open")) == 2


def test_redelivery_keeps_the_event_id_and_sets_retry_headers(fake: FakeSlack, app: App) -> None:
    seen: list[tuple[str, str, str]] = []

    @app.event("message")
    def record(body: dict[str, Any], request: Any) -> None:
        headers = request.headers
        seen.append((body["event_id"], headers["x-slack-retry-num"][0], headers["x-slack-retry-reason"][0]))

    with fake.connect(app):
        first = fake.push(fake.payloads.message("hello"))
        fake.wait_for_ack(first)
        again = fake.redeliver(first, reason="timeout")
        fake.wait_for_ack(again)
        fake.wait_until(lambda: len(seen) == 2, what="both deliveries handled")

    event_id = fake.pushed(first).envelope["payload"]["event_id"]
    assert again != first
    assert seen == [(event_id, "0", ""), (event_id, "1", "timeout")]
    # The user sent one message, however many times Slack delivered it.
    assert len(fake.messages(fake.dm_channel())) == 1


def test_user_edits_and_deletes_reach_the_conversation(fake: FakeSlack, app: App) -> None:
    subtypes: list[str | None] = []

    @app.event("message")
    def record(event: dict[str, Any]) -> None:
        subtypes.append(event.get("subtype"))

    with fake.connect(app):
        fake.push(fake.payloads.message("pasword reset"))
        [original] = fake.messages(fake.dm_channel())
        fake.push(fake.payloads.message_changed(original, text="password reset"))
        [edited] = fake.messages(fake.dm_channel())
        fake.push(fake.payloads.message_deleted(edited))
        fake.wait_until(lambda: len(subtypes) == 3, what="three message events handled")

    assert edited["text"] == "password reset" and edited["edited"]["user"] == fake.workspace.user.id
    assert fake.messages(fake.dm_channel()) == []
    # Bolt runs listeners on a thread pool, so handling order is not delivery order under load.
    assert sorted(subtypes, key=str) == sorted([None, "message_changed", "message_deleted"], key=str)


def test_own_bot_message_echo_is_ignored_by_bolt(fake: FakeSlack, app: App) -> None:
    handled: list[str] = []

    @app.event("message")
    def record(event: dict[str, Any]) -> None:
        handled.append(event["text"])

    with fake.connect(app):
        echo = fake.push(fake.payloads.bot_message("I am the bot"))
        human = fake.wait_for_ack(fake.push(fake.payloads.message("I am human")))
        fake.wait_until(lambda: handled, what="the human message handled")

    assert handled == ["I am human"]
    assert human.latency is not None
    assert fake.acks(echo), "Bolt still acks the ignored echo"


def test_ws_ticket_works_once_and_server_says_hello(fake: FakeSlack) -> None:
    url = WebClient(base_url=fake.api_url, token=fake.app_token).apps_connections_open(app_token=fake.app_token)["url"]

    with ws_connect(url) as ws:
        hello = ws.recv(timeout=2)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url)

    assert '"type": "hello"' in hello and fake.workspace.app_id in hello
    assert refused.value.response.status_code == 401
    assert any("ticket" in w for w in fake.warnings)


# -- Web API details ---------------------------------------------------------------


def test_tokens_are_checked_like_slack(fake: FakeSlack) -> None:
    def error_of(call: Any) -> str:
        with pytest.raises(SlackApiError) as raised:
            call()
        return raised.value.response["error"]

    assert error_of(lambda: WebClient(base_url=fake.api_url, token="xoxb-wrong").auth_test()) == "invalid_auth"
    assert error_of(lambda: WebClient(base_url=fake.api_url, token=fake.app_token).chat_postMessage(
        channel="C1", text="x")) == "not_allowed_token_type"
    assert error_of(lambda: fake.web_client().apps_connections_open(app_token=fake.bot_token)) == \
        "not_allowed_token_type"
    assert error_of(lambda: fake.web_client().api_call("no.such.method")) == "unknown_method"
    assert fake.web_client().auth_test()["user_id"] == fake.workspace.bot_user_id


def test_chat_update_and_delete_change_what_the_user_sees(fake: FakeSlack) -> None:
    client = fake.web_client()
    channel = fake.dm_channel()
    posted = client.chat_postMessage(channel=channel, text="Thinking…", blocks=[section("Thinking…")])
    second = client.chat_postMessage(channel=channel, text="second")

    client.chat_update(channel=channel, ts=posted["ts"], text="Restart the VPN client.")
    client.chat_delete(channel=channel, ts=second["ts"])

    [shown] = fake.messages(channel)
    assert shown["text"] == "Restart the VPN client." and "blocks" not in shown and "edited" in shown
    assert float(second["ts"]) > float(posted["ts"])
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        client.chat_update(channel=channel, ts=posted["ts"], text="x", blocks=[section("x")] * 51)
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel=channel, ts=second["ts"], text="gone")


def test_reactions_permalinks_and_thread_reads(fake: FakeSlack) -> None:
    client = fake.web_client()
    channel = fake.dm_channel()
    parent = client.chat_postMessage(channel=channel, text="parent")
    client.chat_postMessage(channel=channel, text="reply", thread_ts=parent["ts"])

    client.reactions_add(channel=channel, timestamp=parent["ts"], name="eyes")

    assert fake.message(channel, parent["ts"])["reactions"] == [{"name": "eyes", "users": [fake.workspace.bot_user_id],
                                                                 "count": 1}]
    with pytest.raises(SlackApiError, match="already_reacted"):
        client.reactions_add(channel=channel, timestamp=parent["ts"], name="eyes")
    replies = client.conversations_replies(channel=channel, ts=parent["ts"])["messages"]
    assert [m["text"] for m in replies] == ["parent", "reply"] and replies[0]["reply_count"] == 1
    assert [m["text"] for m in client.conversations_history(channel=channel)["messages"]] == ["parent"]
    assert client.chat_getPermalink(channel=channel, message_ts=parent["ts"])["permalink"].endswith(
        "p" + parent["ts"].replace(".", ""))


def test_limits_are_inclusive(fake: FakeSlack) -> None:
    client = fake.web_client()
    at_limit = [section("x" * 3000), {"type": "actions", "elements": [button("a", "v" * 2000)]}]
    at_limit += [section(f"{i}") for i in range(48)]

    assert client.chat_postMessage(channel=fake.dm_channel(), text="x" * 40_000, blocks=at_limit)["ok"]


def test_server_error_is_retried_and_form_bodies_are_read(fake: FakeSlack) -> None:
    client = fake.web_client(retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)])
    fake.fail_next("chat.postEphemeral", status=500)

    # api_call with params= sends a form body, with blocks as a JSON string
    response = client.api_call("chat.postEphemeral", params={
        "channel": fake.dm_channel(), "user": fake.workspace.user.id, "text": "only you",
        "blocks": '[{"type": "section", "text": {"type": "mrkdwn", "text": "only you"}}]'})

    failed, answered = fake.calls("chat.postEphemeral")
    assert failed.status == 500 and answered.ok and response["message_ts"]
    assert answered.params["blocks"][0]["type"] == "section"
    [ephemeral] = fake.ephemeral_messages(fake.dm_channel(), user=fake.workspace.user.id)
    assert ephemeral["text"] == "only you"


def test_files_upload_v2_lands_in_the_thread(fake: FakeSlack) -> None:
    client = fake.web_client()
    parent = client.chat_postMessage(channel=fake.dm_channel(), text="Here are the logs")

    client.files_upload_v2(channel=fake.dm_channel(), thread_ts=parent["ts"], content="line 1\nline 2\n",
                           filename="vpn.log", title="VPN log", initial_comment="attached")

    [uploaded] = fake.files()
    assert uploaded["content"] == b"line 1\nline 2\n" and uploaded["title"] == "VPN log"
    assert [c.method for c in fake.calls()][-3:] == ["files.getUploadURLExternal", "upload",
                                                    "files.completeUploadExternal"]
    reply = fake.messages(fake.dm_channel(), thread_ts=parent["ts"])[-1]
    assert reply["files"][0]["id"] == uploaded["id"] and reply["text"] == "attached"


def test_directory_and_assistant_methods(fake: FakeSlack) -> None:
    client = fake.web_client()
    user = fake.workspace.user

    opened = client.conversations_open(users=user.id)
    info = client.users_info(user=user.id)
    client.assistant_threads_setStatus(channel_id=opened["channel"]["id"], thread_ts="1.000001",
                                       status="is thinking…")

    assert opened["channel"]["id"].startswith("D") and opened["channel"]["id"] == fake.dm_channel()
    assert info["user"]["profile"]["email"] == user.email
    assert fake.thread_status(fake.dm_channel(), "1.000001") == "is thinking…"
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U0NOBODY00")


def test_thread_status_is_checked_and_cleared_by_a_reply_or_an_empty_status(fake: FakeSlack) -> None:
    client, channel = fake.web_client(), fake.dm_channel()
    question = client.chat_postMessage(channel=channel, text="(stands in for the user's question)")["ts"]

    client.assistant_threads_setStatus(channel_id=channel, thread_ts=question, status="is thinking…",
                                       loading_messages=["Reading…", "Writing…"])
    assert fake.thread_status(channel, question) == "is thinking…"
    assert fake.calls("assistant.threads.setStatus")[0].params["loading_messages"] == ["Reading…", "Writing…"]
    client.chat_postMessage(channel=channel, thread_ts=question, text="the answer")
    assert fake.thread_status(channel, question) == ""  # Slack clears it when the app replies in the thread
    client.assistant_threads_setStatus(channel_id=channel, thread_ts=question, status="is thinking…")
    client.assistant_threads_setStatus(channel_id=channel, thread_ts=question, status="")
    assert fake.thread_status(channel, question) == ""
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.assistant_threads_setStatus(channel_id=channel, thread_ts=question, status="x",
                                           loading_messages=[f"{n}" for n in range(11)])
    with pytest.raises(SlackApiError, match="invalid_thread_ts"):
        client.api_call("assistant.threads.setStatus", params={"channel_id": channel, "status": "x"})


def test_suggested_prompts_take_at_most_four_and_are_ignored_with_a_thread_ts(fake: FakeSlack) -> None:
    client, channel = fake.web_client(), fake.dm_channel()
    prompts = [{"title": f"T{n}", "message": f"M{n}"} for n in range(5)]

    client.assistant_threads_setSuggestedPrompts(channel_id=channel, title="Try", prompts=prompts[:4])
    assert fake.suggested_prompts(channel) == {"title": "Try", "prompts": prompts[:4]}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.assistant_threads_setSuggestedPrompts(channel_id=channel, prompts=prompts)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.assistant_threads_setSuggestedPrompts(channel_id=channel, prompts=[{"title": "no message"}])
    client.assistant_threads_setSuggestedPrompts(channel_id=channel, thread_ts="1.000001", prompts=prompts[4:])
    assert fake.suggested_prompts(channel)["prompts"] == prompts[:4]  # ok, and nothing changed: as on Slack
    assert "thread_ts" in fake.warnings[-1]


def test_scopes_and_event_subscriptions_are_those_the_app_was_installed_with(monkeypatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSlack.start(scopes=["chat:write", "im:history"], bot_events=["message.im"]) as fake:
        client = fake.web_client()
        client.chat_postMessage(channel=fake.dm_channel(), text="hi")
        client.assistant_threads_setStatus(channel_id=fake.dm_channel(), thread_ts="1.000001", status="x")
        with pytest.raises(SlackApiError, match="missing_scope") as refused:
            client.reactions_add(channel=fake.dm_channel(), timestamp="1.000001", name="eyes")
        assert (refused.value.response["needed"], refused.value.response["provided"]) == (
            "reactions:write", "chat:write,im:history")
        with pytest.raises(SlackApiError, match="missing_scope"):
            client.conversations_replies(channel="C0GENERAL", ts="1.000001")
        client.conversations_replies(channel=fake.dm_channel(), ts=fake.messages(fake.dm_channel())[0]["ts"])
        with pytest.raises(ValueError, match="not subscribed to 'app_home_opened'"):
            fake.push(fake.payloads.app_home_opened())
        with pytest.raises(ValueError, match="message.channels"):
            fake.push(fake.payloads.message("in a channel", channel="C0GENERAL"))


def test_feedback_buttons_are_checked_and_a_click_sends_the_pressed_side(fake: FakeSlack) -> None:
    client = fake.web_client()
    side = {"text": {"type": "plain_text", "text": "👍"}, "value": "up"}
    element = {"type": "feedback_buttons", "action_id": "fb", "positive_button": side,
               "negative_button": {**side, "text": {"type": "plain_text", "text": "👎"}, "value": "down"}}
    posted = client.chat_postMessage(channel=fake.dm_channel(), text="answer",
                                     blocks=[{"type": "context_actions", "elements": [element]}])
    for bad in ([element] * 6, [{**element, "negative_button": None}], [button("b", "v")],
                [{**element, "positive_button": {**side, "value": "v" * 2001}}]):
        with pytest.raises(SlackApiError, match="invalid_blocks"):
            client.chat_postMessage(channel=fake.dm_channel(), text="x",
                                    blocks=[{"type": "context_actions", "elements": bad}])

    message = fake.message(fake.dm_channel(), posted["ts"])
    action = fake.payloads.block_actions(action_id="fb", message=message, feedback="negative")["payload"]["actions"][0]
    assert (action["type"], action["value"], action["text"]["text"]) == ("feedback_buttons", "down", "👎")
    with pytest.raises(ValueError, match="feedback="):
        fake.payloads.block_actions(action_id="fb", message=message)


def test_delay_next_slows_one_call(fake: FakeSlack) -> None:
    client = fake.web_client()
    fake.delay_next("auth.test", 0.3)

    started = time.monotonic()
    client.auth_test()
    slow = time.monotonic() - started
    started = time.monotonic()
    client.auth_test()

    assert slow >= 0.3 > time.monotonic() - started


# -- interactivity through Bolt --------------------------------------------------------


def test_button_click_opens_a_modal_and_submission_is_acked_with_errors(fake: FakeSlack, app: App) -> None:
    @app.event("message")
    def offer(say: Any) -> None:
        say(text="Escalate?", blocks=[section("Escalate?"), {"type": "actions", "block_id": "choices",
                                                              "elements": [button("escalate", "ticket-7")]}])

    @app.action("escalate")
    def open_modal(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view={
            "type": "modal", "callback_id": "escalation", "private_metadata": body["actions"][0]["value"],
            "title": {"type": "plain_text", "text": "Escalate"}, "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [{"type": "input", "block_id": "details", "label": {"type": "plain_text", "text": "Details"},
                        "element": {"type": "plain_text_input", "action_id": "text"}}]})

    @app.view("escalation")
    def submit(ack: Any, view: dict[str, Any]) -> None:
        text = view["state"]["values"]["details"]["text"]["value"]
        ack(response_action="errors", errors={"details": f"too short: {text!r} ({view['private_metadata']})"})

    with fake.connect(app):
        fake.push(fake.payloads.message("my account is locked"))
        posted = fake.wait_for_call("chat.postMessage")
        offer_message = fake.message(fake.dm_channel(), posted.response["ts"])
        fake.wait_for_ack(fake.push(fake.payloads.block_actions(action_id="escalate", message=offer_message)))
        opened = fake.wait_for_call("views.open")
        ack = fake.wait_for_ack(fake.push(fake.payloads.view_submission(opened.response["view"],
                                                                         values={"text": "help"})))

    assert opened.ok
    assert ack.payload == {"response_action": "errors", "errors": {"details": "too short: 'help' (ticket-7)"}}
    with pytest.raises(LookupError):
        fake.payloads.block_actions(action_id="not-there", message=offer_message)


def test_view_submission_fills_state_values_by_element_type() -> None:
    options = [{"text": {"type": "plain_text", "text": t}, "value": t.lower()} for t in ("Low", "High")]
    view = {"id": "V1", "type": "modal", "callback_id": "triage", "blocks": [
        {"type": "input", "block_id": "urgency", "label": {"type": "plain_text", "text": "Urgency"},
         "element": {"type": "static_select", "action_id": "level", "options": options}},
        {"type": "input", "block_id": "areas", "label": {"type": "plain_text", "text": "Areas"},
         "element": {"type": "checkboxes", "action_id": "picked", "options": options}},
        {"type": "input", "block_id": "who", "label": {"type": "plain_text", "text": "Who"},
         "element": {"type": "users_select", "action_id": "user"}},
        {"type": "input", "block_id": "notes", "label": {"type": "plain_text", "text": "Notes"},
         "element": {"type": "plain_text_input", "action_id": "text"}}]}

    payload = Payloads().view_submission(view, values={"level": "high", "picked": ["low"], "user": "U1"})["payload"]

    values = payload["view"]["state"]["values"]
    assert values["urgency"]["level"]["selected_option"]["value"] == "high"
    assert [o["value"] for o in values["areas"]["picked"]["selected_options"]] == ["low"]
    assert values["who"]["user"] == {"type": "users_select", "selected_user": "U1"}
    assert values["notes"]["text"] == {"type": "plain_text_input", "value": None}
    with pytest.raises(ValueError):
        Payloads().view_submission(view, values={"level": "urgent"})
    with pytest.raises(LookupError):
        Payloads().view_submission(view, values={"nope": "x"})


def test_views_open_rejects_unknown_reused_and_expired_triggers(fake: FakeSlack, app: App,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": [section("hi")]}
    client = fake.web_client()
    with fake.connect(app):
        first = fake.payloads.slash_command()
        second = fake.payloads.slash_command()
        fake.push(first)
        fake.push(second)

    assert client.views_open(trigger_id=first["payload"]["trigger_id"], view=view)["ok"]
    for trigger, error in [("1.2.3", "invalid_trigger_id"), (first["payload"]["trigger_id"], "exchanged_trigger_id")]:
        with pytest.raises(SlackApiError, match=error):
            client.views_open(trigger_id=trigger, view=view)
    monkeypatch.setattr(views, "TRIGGER_LIFETIME_S", 0.0)
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=second["payload"]["trigger_id"], view=view)


def test_respond_posts_to_the_response_url_on_the_fake(fake: FakeSlack, app: App) -> None:
    @app.command("/itsupport")
    def itsupport(ack: Any, respond: Any) -> None:
        ack()
        respond(text="Ticket created", response_type="in_channel")
        respond(text="Only you can see this")

    with fake.connect(app):
        fake.push(fake.payloads.slash_command("new laptop"))
        fake.wait_for_call("response_url", count=2)

    assert [c.status for c in fake.calls("response_url")] == [200, 200]
    assert [m["text"] for m in fake.messages(fake.dm_channel())] == ["Ticket created"]
    assert [m["text"] for m in fake.ephemeral_messages(fake.dm_channel())] == ["Only you can see this"]


def test_a_message_shortcut_carries_the_message_and_reaches_bolts_message_shortcut_listener(fake: FakeSlack,
                                                                                             app: App) -> None:
    seen: list[dict[str, Any]] = []

    @app.message_shortcut("ask_it")
    def ask_it(ack: Any, shortcut: dict[str, Any], respond: Any) -> None:
        ack()
        seen.append(shortcut)
        respond(text="Looking at it")

    posted = fake.payloads.message("VPN error 809", user="U0COLLEAGUE", channel="C0GENERAL")
    with fake.connect(app):
        fake.push(posted)
        message = fake.messages("C0GENERAL")[0]
        envelope = fake.payloads.message_shortcut(message, callback_id="ask_it")
        ack = fake.wait_for_ack(fake.push(envelope))
        fake.wait_for_call("response_url")

    payload = envelope["payload"]
    assert envelope["type"] == "interactive" and ack.payload is None and not ack.late
    assert payload["type"] == "message_action" and payload["callback_id"] == "ask_it"
    assert payload["channel"]["id"] == "C0GENERAL" and payload["message_ts"] == message["ts"]
    assert payload["user"]["id"] == fake.workspace.user.id and payload["team"]["id"] == fake.workspace.team_id
    assert payload["message"]["text"] == "VPN error 809" and payload["message"]["user"] == "U0COLLEAGUE"
    assert "channel" not in payload["message"] and payload["trigger_id"] and payload["action_ts"]
    assert [s["message"]["text"] for s in seen] == ["VPN error 809"]
    assert [m["text"] for m in fake.ephemeral_messages("C0GENERAL", user=fake.workspace.user.id)] == ["Looking at it"]
    assert fake.web_client().views_open(trigger_id=payload["trigger_id"], view={
        "type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": [section("hi")]})["ok"]


# -- hygiene ------------------------------------------------------------------------


def test_nothing_is_left_running_after_close(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    before = set(threading.enumerate())
    with FakeSlack.start() as fake:
        app = App(client=fake.web_client())
        app.event("message")(lambda say: say(text="hello"))
        with fake.connect(app):
            fake.wait_for_ack(fake.push(fake.payloads.message("hi")))
        ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in (fake.api_url, fake.ws_url)]

    leftover = [t.name for t in set(threading.enumerate()) - before
                if t.is_alive() and not t.name.startswith("ThreadPoolExecutor")]  # Bolt's listener pool
    assert leftover == []
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)


def test_proxy_in_environment_is_refused_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")

    with pytest.raises(RuntimeError, match="HTTPS_PROXY"):
        FakeSlack().open()


def test_a_streamed_reply_grows_then_stops_and_slacks_stream_errors_come_back(fake: FakeSlack) -> None:
    client = fake.web_client()
    channel = fake.dm_channel()
    question = client.chat_postMessage(channel=channel, text="my vpn is down")  # stands in for the user's message
    stream = client.chat_stream(channel=channel, thread_ts=question["ts"], buffer_size=1,
                                recipient_user_id=fake.workspace.user.id, recipient_team_id=fake.workspace.team_id)
    stream.append(markdown_text="1. Open the ")
    stream.append(markdown_text="VPN client.")
    stream.stop(blocks=[section("Was this helpful?")])
    [reply] = fake.messages(channel, thread_ts=question["ts"])[1:]
    assert reply["text"] == "1. Open the VPN client." and reply["blocks"][0]["text"]["text"] == "Was this helpful?"
    assert fake.stream(channel, reply["ts"])["stopped"]
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_appendStream(channel=channel, ts=reply["ts"], markdown_text="more")
    with pytest.raises(SlackApiError, match="missing_recipient_user_id"):  # required in channels
        client.chat_startStream(channel="C0GENERAL", thread_ts=question["ts"], markdown_text="x")
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_startStream(channel=channel, thread_ts=question["ts"], markdown_text="x" * 12_001)
    started = client.chat_startStream(channel=channel, thread_ts=question["ts"], markdown_text="x")
    fake.end_streams()  # Slack ends streams after about five minutes
    with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
        client.chat_appendStream(channel=channel, ts=started["ts"], markdown_text="y")
