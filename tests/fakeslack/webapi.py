"""The Web API half of the fake: a stdlib HTTP server on a thread.

Routes, all POST (GET works too, as on Slack):

* ``/api/<method>``: a Web API method. Form-encoded, JSON and multipart
  bodies are read; the token comes from ``Authorization: Bearer ...`` or a
  ``token`` argument (``apps.connections.open`` insists on the header and the
  ``xapp-`` token, every other method on the ``xoxb-`` token). Unknown methods
  answer ``unknown_method``.
* ``/upload/v1/<token>``: the upload URLs ``files.getUploadURLExternal`` hands out.
* ``/hooks/<token>``: the ``response_url`` of pushed payloads.

Every request is recorded as a :class:`~fakeslack.records.Call`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import chat, directory, files, hooks, scopes, views
from .records import Call
from .state import ApiError, Handler, SlackState

__all__ = ["METHODS", "WebApiServer"]

logger = logging.getLogger("fakeslack.webapi")

METHODS: dict[str, Handler] = {**chat.METHODS, **directory.METHODS, **views.METHODS, **files.METHODS}

# Arguments Slack takes as JSON strings in form bodies; decoded so tests see one shape.
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "prompts", "loading_messages",
                "user_auth_blocks", "unfurls", "outputs")


def parse_params(content_type: str, query: str, body: bytes) -> dict[str, Any]:
    """Merge query string and body into one dict, decoding JSON-valued form fields."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if "application/json" in content_type:
        decoded = json.loads(body or b"{}")
        if not isinstance(decoded, dict):
            raise ApiError("invalid_json")
        params.update(decoded)
    elif "multipart/form-data" in content_type:
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            content = part.get_payload(decode=True) or b""
            params[name] = content if part.get_filename() else content.decode("utf-8")
    elif body:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                pass  # left as a string: the method's own checks reject it as Slack would
    return params


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.api.handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    # Non-daemon request threads are joined by server_close(), so nothing outlives stop().
    daemon_threads = False

    def __init__(self, api: WebApiServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


class WebApiServer:
    """Serves the fake Web API on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, state: SlackState, *, bot_token: str, app_token: str) -> None:
        self._state = state
        self._bot_token = bot_token
        self._app_token = app_token
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start listening; returns the base URL (``http://127.0.0.1:<port>``)."""
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakeslack-webapi", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop accepting requests and wait for those in flight."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # -- request handling --------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        at = time.monotonic()
        url = urlsplit(request.path)
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if url.path.startswith("/api/"):
            self._api_call(request, url.path[len("/api/"):], url.query, body, at)
        elif url.path.startswith("/upload/v1/"):
            status, text = files.receive_upload(self._state, url.path.rsplit("/", 1)[-1], body)
            self._state.record_call(Call("upload", {"url": request.path, "size": len(body)}, None, status, text, at))
            _send(request, status, text)
        elif url.path.startswith("/hooks/"):
            try:
                params = json.loads(body or b"{}")
            except json.JSONDecodeError:
                params = {"_raw": body.decode("utf-8", "replace")}
            status, response = hooks.receive(self._state, url.path.rsplit("/", 1)[-1], params)
            self._state.record_call(Call("response_url", params, None, status, response, at))
            _send(request, status, response)
        else:
            _send(request, 404, {"ok": False, "error": "not_found"})

    def _api_call(self, request: BaseHTTPRequestHandler, method: str, query: str, body: bytes, at: float) -> None:
        headers: dict[str, str] = {}
        params: dict[str, Any] = {}
        token: str | None = None
        status = 200
        try:
            params = parse_params(request.headers.get("Content-Type", ""), query, body)
            header = request.headers.get("Authorization", "")
            token = header[len("Bearer "):] if header.startswith("Bearer ") else None
            form_token = params.pop("token", None)
            fault = self._state.take_fault(method)
            if fault and fault.delay:
                time.sleep(fault.delay)
            failing = fault is not None and (fault.status != 200 or fault.error is not None)
            if failing and not fault.after:
                status, response = fault.status, {"ok": False, "error": fault.error or _default_error(fault.status)}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
            else:
                self._authorize(method, token, form_token)
                token = token or form_token
                self._check_scope(method, params)
                handler = self._state.handlers.get(method) or METHODS.get(method)
                if handler is None:
                    raise ApiError("unknown_method", req_method=method)
                response = handler(self._state, params)
                if failing and fault.after:
                    status, response = fault.status, {"ok": False, "error": fault.error or _default_error(fault.status)}
        except ApiError as error:
            response = error.response()
        except Exception:  # a bug in the fake or a custom handler: say so loudly, never hang the client
            detail = traceback.format_exc()
            self._state.warn(f"{method} crashed the fake:\n{detail}")
            logger.error("fakeslack: %s handler failed\n%s", method, detail)
            status, response = 500, {"ok": False, "error": "fakeslack_internal_error"}
        self._state.record_call(Call(method, params, token, status, response, at))
        _send(request, status, response, headers)

    def _check_scope(self, method: str, params: dict[str, Any]) -> None:
        """Slack's ``missing_scope`` when the fake was given the bot's scopes and they lack this method's."""
        granted = self._state.scopes
        lacking = None if granted is None else scopes.missing(method, params, granted)
        if lacking is not None:
            raise ApiError("missing_scope", needed=lacking, provided=",".join(sorted(granted or ())))

    def _authorize(self, method: str, header_token: str | None, form_token: str | None) -> None:
        if method == "apps.connections.open":
            # Slack takes the app-level token only from the Authorization header here.
            if header_token is None:
                raise ApiError("not_authed")
            if header_token != self._app_token:
                raise ApiError("not_allowed_token_type" if header_token == self._bot_token else "invalid_auth")
            return
        token = header_token or form_token
        if token is None:
            raise ApiError("not_authed")
        if token != self._bot_token:
            raise ApiError("not_allowed_token_type" if token == self._app_token else "invalid_auth")


def _default_error(status: int) -> str:
    return {429: "ratelimited", 503: "service_unavailable"}.get(status, "internal_error")


def _send(request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    is_text = isinstance(body, str)
    data = body.encode("utf-8") if is_text else json.dumps(body).encode("utf-8")
    request.send_response(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8" if is_text else "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)
