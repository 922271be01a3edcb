"""A local fake Slack for end-to-end tests of the real Bolt app over real Socket Mode.

Usage::

    from slack_bolt import App
    from fakeslack import FakeSlack

    with FakeSlack.start() as fake:
        app = App(client=fake.web_client())          # auth.test answered by the fake
        register_listeners(app, services)
        with fake.connect(app):                       # builtin SocketModeHandler (or pass handler=), ws:// on 127.0.0.1
            envelope_id = fake.push(fake.payloads.message("my VPN keeps dropping"))
            fake.wait_for_ack(envelope_id)
            reply = fake.wait_for_call("chat.postMessage")
            assert fake.messages(fake.dm_channel())[-1]["text"] == reply.params["text"]

Nothing leaves 127.0.0.1: both servers bind OS-chosen ports and stop, with
their threads, when the ``with`` block ends. Run this package's own tests
with ``PYTHONPATH=. python -m pytest tests/fakeslack -q``.

Modules: ``fake`` (the facade), ``webapi`` and ``socketmode`` (the two
servers), ``chat``/``directory``/``views``/``files``/``hooks`` (Web API
methods), ``blockkit`` (Slack's limits), ``scopes`` (the scope each method
and event needs, enforced for a fake started with ``scopes=`` and
``bot_events=``, as an app installed from a manifest), ``payloads`` (envelope builders),
``state`` and ``records`` (what the fake knows and saw), ``workspace`` (ids).
"""

from .fake import FakeSlack
from .payloads import Payloads, redelivery
from .records import SLACK_ACK_DEADLINE_S, Ack, Call, Connection, Push
from .state import ApiError
from .workspace import User, Workspace, dm_channel_id, new_ts

__all__ = [
    "SLACK_ACK_DEADLINE_S",
    "Ack",
    "ApiError",
    "Call",
    "Connection",
    "FakeSlack",
    "Payloads",
    "Push",
    "User",
    "Workspace",
    "dm_channel_id",
    "new_ts",
    "redelivery",
]
