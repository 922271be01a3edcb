"""What `itbot run` checks before it starts: tokens, the way to Slack (proxy included), channel names, and a
database that went missing. Each failure is one line that says what to fix, never a traceback."""

from __future__ import annotations

import select
import signal
import socket
import socketserver
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import run_itbot, start_itbot

HELPDESK_ID = "C0HELPDESK"


def slack_env(fake, tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of an `itbot run` on ``fake``, its database under ``tmp_path``."""
    return {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_APP_TOKEN": fake.app_token, "SLACK_API_URL": fake.api_url,
            "ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}", "ITBOT_METRICS_PORT": "0", **more}


def one_line(result, code: int) -> str:
    """The single line `itbot` wrote to standard error, after checking the exit code."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- tokens and the network --------------------------------------------------------------------------------------


def test_a_revoked_bot_token_stops_start_up_with_one_line(fake, tmp_path):
    fake.fail_next("auth.test", error="token_revoked")
    line = one_line(run_itbot("run", env=slack_env(fake, tmp_path)), 2)
    assert line.startswith("itbot: SLACK_BOT_TOKEN: it was revoked (token_revoked)")
    assert "OAuth & Permissions" in line and fake.bot_token not in line


def test_a_wrong_app_token_stops_start_up_with_one_line(fake, tmp_path):
    env = slack_env(fake, tmp_path, SLACK_APP_TOKEN="xapp-1-A0FAKEAPP1-0000-not-this-one")
    line = one_line(run_itbot("run", env=env), 2)
    assert line.startswith("itbot: SLACK_APP_TOKEN: Slack does not accept it (invalid_auth)")
    assert "App-Level Tokens" in line and "not-this-one" not in line


@pytest.mark.parametrize("through", ["firewall", "proxy"])
def test_slack_unreachable_at_start_up_is_one_line(fake, tmp_path, through):
    port = closed_port()
    if through == "firewall":
        env = slack_env(fake, tmp_path, SLACK_API_URL=f"http://127.0.0.1:{port}/api/")
        expected = f"itbot: cannot reach Slack at 127.0.0.1:{port}: Connection refused; check the network"
    else:
        env = slack_env(fake, tmp_path, HTTPS_PROXY=f"http://itbot:s3cret@127.0.0.1:{port}", NO_PROXY="")
        expected = (f"itbot: cannot reach Slack at {urlsplit(fake.api_url).netloc} through the proxy "
                    f"127.0.0.1:{port}: Connection refused; check HTTPS_PROXY")
    line = one_line(run_itbot("run", env=env), 3)
    assert line.startswith(expected) and "s3cret" not in line
    assert not fake.calls()  # and nothing else was tried


class Proxy(socketserver.ThreadingTCPServer):
    """A tiny HTTP proxy on 127.0.0.1, as a company's would be: ``CONNECT`` tunnels and absolute-URI requests.

    ``seen`` lists each request line it was sent (``CONNECT host:port``, ``POST http://host:port/api/...``).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyRequest)
        self.seen: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyRequest(socketserver.BaseRequestHandler):
    server: Proxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode().split(" ", 2)
        self.server.seen.append(f"{method} {target}")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(rest.partition(b"\r\n\r\n")[2])
        else:
            url = urlsplit(target)
            upstream = socket.create_connection((url.hostname, url.port or 80))
            upstream.sendall(f"{method} {url.path}{'?' + url.query if url.query else ''} {version}\r\n".encode() + rest)
        with upstream:
            _pipe(self.request, upstream)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    while True:
        readable, _, _ = select.select([client, upstream], [], [], 30)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


def test_both_slack_clients_go_through_the_proxy_from_the_environment(fake, tmp_path):
    proxy = Proxy()
    env = slack_env(fake, tmp_path, HTTPS_PROXY=proxy.url, https_proxy=proxy.url, NO_PROXY="", no_proxy="")
    process = start_itbot("run", env=env)
    try:
        fake.wait_for_connection(timeout=300)  # the router is trained first when the cache is cold
        fake.push(fake.payloads.message("my vpn keeps disconnecting"))
        fake.wait_for_call("chat.postMessage", timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=60)
        proxy.stop()
    assert process.returncode == 0, log
    api = fake.api_url
    assert f"CONNECT 127.0.0.1:{urlsplit(fake.ws_url).port}" in proxy.seen  # the Socket Mode WebSocket
    for method in ("auth.test", "apps.connections.open", "chat.postMessage"):  # start-up, Bolt, a listener
        assert f"POST {api}{method}" in proxy.seen, proxy.seen


def test_no_proxy_keeps_slack_off_the_proxy():
    from bot.settings import Settings

    behind = Settings(_env_file=None, https_proxy="proxy.example.com:3128")
    assert behind.slack_proxy() == "http://proxy.example.com:3128"
    assert Settings(_env_file=None, https_proxy="http://proxy.example.com:3128", no_proxy="localhost,.slack.com") \
        .slack_proxy() is None
    assert Settings(_env_file=None, https_proxy="http://u:pw@proxy:3128").secrets() == ["pw"]


# -- channel names -------------------------------------------------------------------------------------------------


def channel_directory(fake, channels: dict[str, str]) -> None:
    """Make ``conversations.list`` list ``channels`` (name -> id), one per page, as a big workspace pages."""
    def conversations_list(state, params):
        names = sorted(channels)
        start = int(params.get("cursor") or 0)
        more = start + 1 < len(names)
        return {"ok": True, "channels": [{"id": channels[name], "name": name, "is_member": True}
                                         for name in names[start:start + 1]],
                "response_metadata": {"next_cursor": str(start + 1) if more else ""}}

    fake.set_handler("conversations.list", conversations_list)


def fake_settings(fake, **options):
    from bot.settings import Settings

    return Settings(_env_file=None, slack_bot_token=fake.bot_token, slack_app_token=fake.app_token,
                    slack_api_url=fake.api_url, **options)


def test_a_channel_name_is_resolved_to_its_id(fake):
    from bot.slack_startup import check_slack

    channel_directory(fake, {"general": "C0GENERAL1", "helpdesk": HELPDESK_ID, "random": "C0RANDOM01"})
    settings = check_slack(fake_settings(fake, escalation_channel="#helpdesk", digest_channel="C0DIGEST01"))
    assert settings.escalation_channel == HELPDESK_ID
    assert settings.digest_channel == "C0DIGEST01"  # an id stays as it is
    assert len(fake.calls("conversations.list")) == 2  # paged until found, not further
    by_bare_name = check_slack(fake_settings(fake, escalation_channel="Helpdesk", digest_channel="<#C0DIGEST01|d>"))
    assert (by_bare_name.escalation_channel, by_bare_name.digest_channel) == (HELPDESK_ID, "C0DIGEST01")


def test_ids_need_no_channel_lookup(fake):
    from bot.slack_startup import check_slack

    settings = check_slack(fake_settings(fake, escalation_channel=HELPDESK_ID))
    assert settings.escalation_channel == HELPDESK_ID and not fake.calls("conversations.list")


def test_an_unknown_channel_name_is_refused(fake, tmp_path):
    channel_directory(fake, {"general": "C0GENERAL1", "helpdesk": HELPDESK_ID})
    env = slack_env(fake, tmp_path, ITBOT_ESCALATION_CHANNEL="#help-desk")
    line = one_line(run_itbot("run", env=env), 2)
    assert line.startswith("itbot: ITBOT_ESCALATION_CHANNEL: no channel named #help-desk that the bot can see")
    assert "channel id" in line


def test_a_channel_name_without_the_scope_to_look_it_up_is_one_line(fake):
    from bot.errors import ConfigError
    from bot.slack_startup import check_slack
    from tests.fakeslack import ApiError

    def missing_scope(state, params):
        raise ApiError("missing_scope", needed="channels:read,groups:read", provided="chat:write")

    fake.set_handler("conversations.list", missing_scope)
    with pytest.raises(ConfigError, match=r"^ITBOT_DIGEST_CHANNEL: looking a channel up by name needs the "
                                          r"channels:read and groups:read scopes"):
        check_slack(fake_settings(fake, digest_channel="#it-digest"))


# -- a database that went missing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_run_refuses_an_empty_database_where_one_existed(tmp_path, loss):
    database = tmp_path / "itbot.db"
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-3", "SLACK_APP_TOKEN": "xapp-1-2-3",
           "ITBOT_DATABASE_URL": f"sqlite:///{database}"}
    assert run_itbot("db", "upgrade", env=env).returncode == 0
    database.unlink()
    if loss == "emptied":
        database.write_bytes(b"")
    line = one_line(run_itbot("run", env=env), 2)
    state = "missing" if loss == "deleted" else "empty"
    assert line.startswith(f"itbot: ITBOT_DATABASE_URL: the database {database} is {state}, but one has been in "
                           "use there since")
    assert "run `itbot db upgrade` to start a new, empty one" in line
    assert not database.exists() if loss == "deleted" else database.stat().st_size == 0  # left as it was
    upgraded = run_itbot("db", "upgrade", env=env)  # told to: a new, empty database
    assert upgraded.returncode == 0, upgraded.stderr
    refused_no_more = run_itbot("run", env={**env, "SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"})
    assert "ITBOT_DATABASE_URL" not in refused_no_more.stderr  # past the database, on to Slack


def test_a_fresh_install_creates_its_database_with_the_defaults(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-3", "SLACK_APP_TOKEN": "xapp-1-2-3",
           "SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"}
    result = run_itbot("run", env=env, cwd=tmp_path)  # sqlite:///itbot.db, never used on this machine
    assert "cannot reach Slack" in one_line(result, 3)
    assert (tmp_path / "itbot.db").stat().st_size > 0
