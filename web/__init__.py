"""The web chat and its HTTP API: a second door onto the conversation use cases of ``bot.conversation``.

``create_app(context)`` builds the ASGI app (``web.app``); ``WebServer`` runs it with uvicorn (``web.server``),
from ``itbot web`` (``web.standalone``: with the ticket job of ``itbot run``) or inside ``itbot run`` when
``ITBOT_WEB_PORT`` is set.
"""
