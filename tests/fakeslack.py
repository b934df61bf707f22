"""A local fake of Slack's Web API, upload URLs, response URLs and Socket Mode.

Slack itself is unreachable from the test environment, so this module is the one
stand-in the test suite uses for it. The real clients run against it unmodified and
are pointed at it by URL only:

* ``AsyncWebClient(token="xoxb-...", base_url=fake.api_url)`` for the Web API;
* ``AsyncSocketModeHandler(app, app_token="xapp-...")`` for Socket Mode, because
  ``apps.connections.open`` (called through the app's web client) answers with the
  fake's own websocket URL;
* ``fake.response_url(name)`` as the ``response_url`` of slash commands, so Bolt's
  ``respond()`` posts back to the fake.

Everything the clients send is recorded as :class:`Call` objects in ``fake.calls``;
failures (Slack errors, HTTP 429 with ``Retry-After``, HTTP 5xx) can be queued per
method; Socket Mode envelopes can be pushed to the connected client and their acks
awaited. :func:`signed_slash_command_request` builds HTTP-mode slash command requests
signed with Slack's v0 scheme.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import mimetypes
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "Call",
    "FakeFile",
    "FakeSlack",
    "UploadedPart",
    "sign_slack_request",
    "signed_slash_command_request",
    "slash_command_payload",
]

T = TypeVar("T")

#: Parameters that Slack clients send as JSON strings inside form bodies (or sometimes
#: inside JSON bodies); :attr:`Call.params` holds them decoded.
JSON_STRING_FIELDS = frozenset(
    {
        "attachments",
        "blocks",
        "files",
        "metadata",
        "outputs",
        "unfurls",
        "user_auth_blocks",
        "view",
    }
)

#: Methods that take an app-level (``xapp-``) token instead of a bot or user token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
#: Methods that accept any token type.
ANY_TOKEN_METHODS = frozenset({"auth.test", "api.test"})
#: Methods that need no token at all.
NO_TOKEN_METHODS = frozenset({"api.test"})

_FIRST_TS_MICROS = 1_700_000_000_000_100
_TS_STEP_MICROS = 100
_EPOCH_FOR_FAKE_OBJECTS = 1_700_000_000


@dataclass(frozen=True)
class UploadedPart:
    """A file part of a ``multipart/form-data`` body."""

    filename: str
    content_type: str
    content: bytes


@dataclass
class Call:
    """One HTTP request the fake received (Web API, upload URL or response URL)."""

    method: str
    """Web API method (``"chat.postMessage"``), ``"upload"`` or ``"respond:<name>"``."""
    params: dict[str, Any]
    """Query string and body merged; JSON-string fields such as ``blocks`` decoded."""
    raw_params: dict[str, Any]
    """Query string and body merged, exactly as received (form values are strings)."""
    headers: CIMultiDictProxy[str]
    """Request headers (case-insensitive)."""
    body: bytes
    """The raw request body."""
    http_method: str
    """``"GET"`` or ``"POST"``."""
    path: str
    """The request path, e.g. ``"/api/chat.postMessage"``."""
    received_at: float
    """Wall-clock time (``time.time()``) when the request arrived."""
    monotonic: float
    """``time.monotonic()`` when the request arrived (for measuring gaps)."""
    files: dict[str, UploadedPart] = field(default_factory=dict)
    """File parts of a multipart body, by form field name."""
    status: int = 0
    """The HTTP status the fake answered with."""
    response: Any = None
    """The body the fake answered with (a dict for JSON answers, else a string)."""
    invalid_json: bool = False
    """True when a JSON content type came with a body that is not valid JSON."""

    @property
    def token(self) -> str | None:
        """The bearer token of the ``Authorization`` header, else a ``token`` param."""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[len("bearer ") :].strip() or None
        token = self.raw_params.get("token")
        return token if isinstance(token, str) and token else None

    @property
    def json_body(self) -> Any:
        """The request body decoded as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class FakeFile:
    """A file going through the ``files_upload_v2`` flow."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    """The bytes POSTed to the upload URL (``None`` until uploaded)."""
    title: str | None = None
    completed: bool = False
    channel_id: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class _Failure:
    kind: Literal["error", "ratelimit", "http"]
    error: str = ""
    retry_after: int = 0
    status: int = 200
    extra: Mapping[str, Any] | None = None


@dataclass
class _SocketConnection:
    number: int
    ws: web.WebSocketResponse
    request: web.Request
    connected_at: float


ApiHandler = Callable[[Call], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]


class FakeSlack:
    """An aiohttp server on 127.0.0.1 that behaves like the parts of Slack the bot uses.

    Start it with ``await fake.start()`` (stop with ``await fake.stop()``) or use
    ``async with FakeSlack() as fake:``. Close Socket Mode clients *before* stopping
    the fake, otherwise they keep trying to reconnect.
    """

    def __init__(
        self,
        *,
        team_id: str = "T1",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        bot_name: str = "mailtrace",
        app_id: str = "A1",
        valid_tokens: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.host = host
        self.wanted_port = port
        """0: any free port; else this one (Slack coming back where it was)."""
        self.valid_tokens: set[str] | None = None if valid_tokens is None else set(valid_tokens)
        """When set, any other token is answered with ``invalid_auth``."""

        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        """Per-user overrides merged over the default ``users.info`` user."""
        self.channels: dict[str, dict[str, Any]] = {}
        """Per-channel overrides merged over the default ``conversations.info`` channel."""
        self.usergroups: dict[str, list[str]] = {}
        """Usergroup id -> member user ids for ``usergroups.users.list``."""
        self.files: dict[str, FakeFile] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        """(channel, ts) -> message posted by ``chat.postMessage``/updated by ``chat.update``."""

        self.socket_received: list[Any] = []
        """Every JSON message received from Socket Mode clients."""
        self.socket_acks: list[dict[str, Any]] = []
        """Received messages that carry an ``envelope_id`` (acks), in arrival order."""
        self.socket_pings: list[bytes] = []
        """Payloads of pings received from clients (each answered with a pong)."""
        self.socket_pongs: list[bytes] = []
        """Payloads of pongs received from clients."""
        self.socket_envelopes: list[dict[str, Any]] = []
        """Envelopes sent with :meth:`send_socket_envelope`."""
        self.socket_connections_total = 0
        """Number of Socket Mode connections accepted since start (hello sent)."""

        self._handlers: dict[str, Callable[[Call], Mapping[str, Any]]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self._overrides: dict[str, ApiHandler] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._ts_counter = itertools.count()
        self._file_counter = itertools.count(1)
        self._connection_counter = itertools.count(1)
        self._socket_connections: list[_SocketConnection] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start listening on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("FakeSlack is already started")
        app = web.Application()
        app.router.add_route("GET", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/respond/{name}", self._handle_respond)
        app.router.add_get("/socket", self._handle_socket)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.wanted_port))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        """Close Socket Mode connections and stop the server (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping = True
        try:
            await self.drop_socket_connections(code=WSCloseCode.GOING_AWAY)
            await runner.cleanup()
        finally:
            self._stopping = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ URLs

    @property
    def port(self) -> int:
        """The TCP port the fake listens on."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``AsyncWebClient(base_url=...)``; ends with ``/``."""
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        """The Socket Mode websocket URL that ``apps.connections.open`` hands out."""
        return f"ws://{self.host}:{self.port}/socket"

    def response_url(self, name: str) -> str:
        """A response_url whose POSTs are recorded as calls named ``respond:<name>``."""
        return f"{self.base_url}/respond/{name}"

    def upload_url(self, file_id: str) -> str:
        """The upload URL that ``files.getUploadURLExternal`` hands out for a file."""
        return f"{self.base_url}/upload/v1/{file_id}"

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method (``"chat.postMessage"``, ``"respond:x"``...)."""
        return [c for c in self.calls if c.method == method]

    def last_call(self, method: str) -> Call:
        """The most recent call of a method; raises ``LookupError`` if there is none."""
        calls = self.calls_to(method)
        if not calls:
            seen = sorted({c.method for c in self.calls})
            raise LookupError(f"no call to {method!r} recorded (seen: {seen})")
        return calls[-1]

    @property
    def socket_client_count(self) -> int:
        """Number of currently open Socket Mode connections."""
        return len(self._socket_connections)

    def reset(self) -> None:
        """Forget recorded calls, acks and queued failures (configuration stays)."""
        self.calls.clear()
        self.socket_received.clear()
        self.socket_acks.clear()
        self.socket_pings.clear()
        self.socket_pongs.clear()
        self.socket_envelopes.clear()
        self._failures.clear()

    # ------------------------------------------------------------------ programming

    def on(self, method: str, handler: ApiHandler) -> None:
        """Answer ``method`` with ``handler(call)`` (sync or async) instead of the default."""
        self._overrides[method] = handler

    def fail_next(
        self,
        method: str,
        error: str = "not_in_channel",
        *,
        times: int = 1,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``.

        On upload/response URLs (non-API endpoints) the answer is HTTP 400 with the
        error as plain text.
        """
        self._queue(method, _Failure("error", error=error, extra=extra), times)

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """Answer the next ``times`` calls with HTTP 429 and ``Retry-After: retry_after``."""
        self._queue(
            method, _Failure("ratelimit", error="ratelimited", retry_after=retry_after), times
        )

    def server_error_next(self, method: str, *, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` calls with an HTML HTTP ``status`` page (default 500)."""
        self._queue(method, _Failure("http", status=status), times)

    def _queue(self, method: str, failure: _Failure, times: int) -> None:
        self._failures.setdefault(method, deque()).extend([failure] * times)

    def _pop_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None

    # ------------------------------------------------------------------ waiting

    async def wait_until(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str = "condition"
    ) -> T:
        """Wait until ``predicate()`` returns something other than ``None``/``False``.

        The predicate is re-evaluated whenever the fake records something.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                while True:
                    result = predicate()
                    if result is not None and result is not False:
                        return result
                    await self._changed.wait()
        except TimeoutError:
            seen = [c.method for c in self.calls]
            raise TimeoutError(
                f"FakeSlack: timed out after {timeout}s waiting for {what}; calls so far: {seen}"
            ) from None

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``count`` calls to ``method`` are recorded; returns all of them."""

        def enough() -> list[Call] | None:
            calls = self.calls_to(method)
            return calls if len(calls) >= count else None

        return await self.wait_until(enough, timeout, f"{count} call(s) to {method!r}")

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the client's ack of an envelope and return it."""

        def ack() -> dict[str, Any] | None:
            return next((a for a in self.socket_acks if a.get("envelope_id") == envelope_id), None)

        return await self.wait_until(ack, timeout, f"ack of envelope {envelope_id!r}")

    async def wait_for_socket_client(self, timeout: float = 5.0, *, total: int = 1) -> None:
        """Wait until a Socket Mode client is connected (and greeted with ``hello``).

        ``total`` counts connections since start, so after
        :meth:`drop_socket_connections` use ``total=2`` to wait for the reconnection.
        """

        def connected() -> bool:
            return self.socket_connections_total >= total and bool(self._socket_connections)

        await self.wait_until(connected, timeout, f"socket mode connection #{total}")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ socket mode

    async def send_socket_envelope(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Send an envelope to the newest connection (or all with ``broadcast``).

        ``type`` is ``"slash_commands"``, ``"interactive"`` or ``"events_api"``.
        Returns the envelope id to pass to :meth:`wait_for_ack`.
        """
        if not self._socket_connections:
            raise RuntimeError("no Socket Mode client is connected")
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive"
                and payload.get("type") in {"view_submission", "block_suggestion"}
            )
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
            "payload": dict(payload),
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        else:
            if retry_attempt is not None:
                envelope["retry_attempt"] = retry_attempt
            if retry_reason is not None:
                envelope["retry_reason"] = retry_reason
        targets = self._socket_connections if broadcast else self._socket_connections[-1:]
        for conn in list(targets):
            await conn.ws.send_json(envelope)
        self.socket_envelopes.append(envelope)
        return envelope_id

    async def send_socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message (the client then reconnects by itself)."""
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "fake-applink"},
        }
        for conn in list(self._socket_connections):
            await conn.ws.send_json(message)

    async def ping_socket_clients(self, data: bytes = b"fake-slack-ping") -> None:
        """Send a websocket ping to every client; their pongs land in ``socket_pongs``."""
        for conn in list(self._socket_connections):
            await conn.ws.ping(data)

    async def drop_socket_connections(
        self, *, code: int = WSCloseCode.GOING_AWAY, abrupt: bool = False
    ) -> None:
        """Disconnect every Socket Mode client.

        By default with a close frame (the SDK reconnects right away); with
        ``abrupt=True`` the TCP connection is cut without one (the SDK notices on its
        next ping-interval check).
        """
        dropped = list(self._socket_connections)
        for conn in dropped:
            if abrupt:
                transport = conn.request.transport
                if transport is not None:
                    transport.close()
            else:
                await conn.ws.close(code=code, message=b"fake-slack: connection dropped")
        await self.wait_until(
            lambda: not any(conn in self._socket_connections for conn in dropped),
            5.0,
            "dropped socket mode connections to close",
        )

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return web.Response(status=503, text="fake-slack is stopping")
        ws = web.WebSocketResponse(autoping=False, timeout=2.0)
        await ws.prepare(request)
        conn = _SocketConnection(
            number=next(self._connection_counter),
            ws=ws,
            request=request,
            connected_at=time.time(),
        )
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._socket_connections) + 1,
                "debug_info": {
                    "host": "fake-applink",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._socket_connections.append(conn)
        self.socket_connections_total += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._record_socket_text(msg.data)
                elif msg.type is WSMsgType.PING:
                    self.socket_pings.append(msg.data)
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    self.socket_pongs.append(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
                await self._notify()
        finally:
            if conn in self._socket_connections:
                self._socket_connections.remove(conn)
            await self._notify()
        return ws

    def _record_socket_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.socket_received.append(data)
            return
        self.socket_received.append(message)
        if isinstance(message, dict) and "envelope_id" in message:
            self.socket_acks.append(message)

    # ------------------------------------------------------------------ HTTP endpoints

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        call = await _parse_call(request, request.match_info["method"])
        failure = self._pop_failure(call.method)
        if failure is not None:
            return await self._finish_failure(call, failure, api=True)
        payload: Mapping[str, Any]
        override = self._overrides.get(call.method)
        handler = self._handlers.get(call.method)
        if call.invalid_json:
            payload = {"ok": False, "error": "invalid_json"}
        elif override is None and handler is None:
            payload = {"ok": False, "error": "unknown_method", "req_method": call.method}
        elif (token_error := self._token_error(call)) is not None:
            payload = {"ok": False, "error": token_error}
        elif override is not None:
            result = override(call)
            payload = await result if isinstance(result, Awaitable) else result
        else:
            assert handler is not None
            payload = handler(call)
        return await self._finish(call, web.json_response(dict(payload)), dict(payload))

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        call = await _parse_call(request, "upload")
        failure = self._pop_failure(call.method)
        if failure is not None:
            return await self._finish_failure(call, failure, api=False)
        fake_file = self.files.get(request.match_info["file_id"])
        if fake_file is None:
            return await self._finish(call, web.Response(status=404, text="file_not_found"), "")
        if call.files:
            part = call.files.get("file") or next(iter(call.files.values()))
            fake_file.content = part.content
        else:
            fake_file.content = call.body
        text = f"OK - {len(fake_file.content)}"
        return await self._finish(call, web.Response(text=text), text)

    async def _handle_respond(self, request: web.Request) -> web.StreamResponse:
        call = await _parse_call(request, f"respond:{request.match_info['name']}")
        failure = self._pop_failure(call.method)
        if failure is not None:
            return await self._finish_failure(call, failure, api=False)
        return await self._finish(call, web.Response(text="ok"), "ok")

    async def _finish(self, call: Call, response: web.Response, body: Any) -> web.Response:
        call.status = response.status
        call.response = body
        self.calls.append(call)
        await self._notify()
        return response

    async def _finish_failure(self, call: Call, failure: _Failure, *, api: bool) -> web.Response:
        if failure.kind == "ratelimit":
            headers = {"Retry-After": str(failure.retry_after)}
            if api:
                body: Any = {"ok": False, "error": "ratelimited"}
                return await self._finish(
                    call, web.json_response(body, status=429, headers=headers), body
                )
            response = web.Response(status=429, text="ratelimited", headers=headers)
            return await self._finish(call, response, "ratelimited")
        if failure.kind == "http":
            html = f"<html><body><h1>{failure.status} Server Error</h1></body></html>"
            response = web.Response(status=failure.status, text=html, content_type="text/html")
            return await self._finish(call, response, html)
        if api:
            body = {"ok": False, "error": failure.error, **(failure.extra or {})}
            return await self._finish(call, web.json_response(body), body)
        return await self._finish(call, web.Response(status=400, text=failure.error), failure.error)

    def _token_error(self, call: Call) -> str | None:
        if call.method in NO_TOKEN_METHODS:
            return None
        token = call.token
        if not token:
            return "not_authed"
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return "invalid_auth"
        if call.method in ANY_TOKEN_METHODS:
            return None
        if (call.method in APP_TOKEN_METHODS) != token.startswith("xapp-"):
            return "not_allowed_token_type"
        return None

    # ------------------------------------------------------------------ Web API methods

    def _next_ts(self) -> str:
        micros = _FIRST_TS_MICROS + next(self._ts_counter) * _TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _api_test(self, call: Call) -> Mapping[str, Any]:
        return {"ok": True, "args": call.params}

    def _auth_test(self, call: Call) -> Mapping[str, Any]:
        result: dict[str, Any] = {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
        if (call.token or "").startswith("xoxp-"):
            del result["bot_id"]
        return result

    def _apps_connections_open(self, call: Call) -> Mapping[str, Any]:
        return {"ok": True, "url": self.socket_url}

    def _message_fields(self, params: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"text": params.get("text") or ""}
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if params.get(key):
                message[key] = params[key]
        return message

    def _chat_post_message(self, call: Call) -> Mapping[str, Any]:
        params = call.params
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            **self._message_fields(params),
        }
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, call: Call) -> Mapping[str, Any]:
        params = call.params
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = self.messages.get((channel, ts)) if ts else None
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            return {"ok": False, "error": "no_text"}
        message.update(self._message_fields(params))
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": message,
        }

    def _chat_post_ephemeral(self, call: Call) -> Mapping[str, Any]:
        params = call.params
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _users_info(self, call: Call) -> Mapping[str, Any]:
        user_id = call.params.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        name = str(user_id).lower()
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": f"User {user_id}",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Standard Time",
            "tz_offset": -28800,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user_id == self.bot_user_id,
            "is_app_user": False,
            "updated": _EPOCH_FOR_FAKE_OBJECTS,
            "profile": {
                "real_name": f"User {user_id}",
                "display_name": name,
                "email": f"{name}@example.invalid",
                "team": self.team_id,
            },
        }
        override = self.users.get(user_id, {})
        profile = {**user["profile"], **override.get("profile", {})}
        user.update(override)
        user["profile"] = profile
        return {"ok": True, "user": user}

    def _conversations_info(self, call: Call) -> Mapping[str, Any]:
        channel_id = call.params.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel_id = str(channel_id)
        channel: dict[str, Any] = {
            "id": channel_id,
            "name": f"channel-{channel_id.lower()}",
            "is_channel": channel_id.startswith("C"),
            "is_group": False,
            "is_im": channel_id.startswith("D"),
            "is_mpim": False,
            "is_private": channel_id.startswith("G"),
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "created": _EPOCH_FOR_FAKE_OBJECTS,
            "creator": "U0",
            "context_team_id": self.team_id,
        }
        channel.update(self.channels.get(channel_id, {}))
        return {"ok": True, "channel": channel}

    def _usergroups_users_list(self, call: Call) -> Mapping[str, Any]:
        usergroup = call.params.get("usergroup")
        if not usergroup:
            return {"ok": False, "error": "invalid_arguments"}
        users = self.usergroups.get(str(usergroup))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _files_get_upload_url_external(self, call: Call) -> Mapping[str, Any]:
        params = call.params
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except (TypeError, ValueError):
            length = -1
        if not filename or length < 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_counter):08d}"
        self.files[file_id] = FakeFile(
            id=file_id,
            filename=str(filename),
            length=length,
            alt_txt=params.get("alt_txt"),
            snippet_type=params.get("snippet_type"),
        )
        return {"ok": True, "upload_url": self.upload_url(file_id), "file_id": file_id}

    def _files_complete_upload_external(self, call: Call) -> Mapping[str, Any]:
        params = call.params
        entries = params.get("files")
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        fake_files: list[tuple[FakeFile, dict[str, Any]]] = []
        for entry in entries:
            fake_file = self.files.get(entry.get("id", "")) if isinstance(entry, dict) else None
            if fake_file is None or fake_file.content is None:
                return {"ok": False, "error": "file_not_found"}
            fake_files.append((fake_file, entry))
        channel_id = params.get("channel_id")
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        if channel_id:
            channels = [channel_id, *channels]
        result = []
        for fake_file, entry in fake_files:
            fake_file.title = entry.get("title") or fake_file.filename
            fake_file.completed = True
            fake_file.channel_id = channel_id
            fake_file.channels = channels
            fake_file.initial_comment = params.get("initial_comment")
            fake_file.thread_ts = params.get("thread_ts")
            result.append(self._file_object(fake_file))
        return {"ok": True, "files": result}

    def _file_object(self, fake_file: FakeFile) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(fake_file.filename)[0] or "application/octet-stream"
        filetype = fake_file.filename.rsplit(".", 1)[-1] if "." in fake_file.filename else "binary"
        url = f"{self.base_url}/files/{fake_file.id}/{fake_file.filename}"
        return {
            "id": fake_file.id,
            "created": _EPOCH_FOR_FAKE_OBJECTS,
            "timestamp": _EPOCH_FOR_FAKE_OBJECTS,
            "name": fake_file.filename,
            "title": fake_file.title,
            "mimetype": mimetype,
            "filetype": filetype,
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "size": len(fake_file.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(fake_file.channels),
            "url_private": url,
            "permalink": url,
            "channels": list(fake_file.channels),
            "groups": [],
            "ims": [],
        }


# ---------------------------------------------------------------------- request parsing


async def _parse_call(request: web.Request, method: str) -> Call:
    received_at, monotonic = time.time(), time.monotonic()
    body = await request.read()
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedPart] = {}
    invalid_json = False
    content_type = request.content_type
    if body and content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            invalid_json = True
        else:
            if isinstance(decoded, dict):
                raw.update(decoded)
    elif body and content_type == "application/x-www-form-urlencoded":
        raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif body and content_type == "multipart/form-data":
        fields, files = _parse_multipart(body, request.headers.get("Content-Type", ""))
        raw.update(fields)
    params = {key: _decode_json_field(key, value) for key, value in raw.items()}
    return Call(
        method=method,
        params=params,
        raw_params=raw,
        headers=CIMultiDictProxy(CIMultiDict(request.headers)),
        body=body,
        http_method=request.method,
        path=request.path,
        received_at=received_at,
        monotonic=monotonic,
        files=files,
        invalid_json=invalid_json,
    )


def _decode_json_field(key: str, value: Any) -> Any:
    if key in JSON_STRING_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, UploadedPart]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    files: dict[str, UploadedPart] = {}
    if not isinstance(message, EmailMessage):
        return fields, files
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            files[name] = UploadedPart(filename, part.get_content_type(), content)
    return fields, files


# ---------------------------------------------------------------------- signed requests


def sign_slack_request(signing_secret: str, body: str | bytes, timestamp: int | str) -> str:
    """Slack's v0 signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    base = f"v0:{timestamp}:{text}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def slash_command_payload(
    *,
    command: str = "/mailtrace",
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    team_id: str = "T1",
    user_name: str | None = None,
    channel_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = "A1",
) -> dict[str, str]:
    """The fields Slack sends for a slash command (HTTP form body or Socket Mode payload)."""
    return {
        "token": "fake-verification-token",
        "team_id": team_id,
        "team_domain": "fake-workspace",
        "channel_id": channel_id,
        "channel_name": channel_name or f"channel-{channel_id.lower()}",
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**13}.{uuid.uuid4().hex[:24]}",
    }


def signed_slash_command_request(
    signing_secret: str,
    *,
    command: str = "/mailtrace",
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    team_id: str = "T1",
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """A form-encoded slash command body and headers signed like Slack's HTTP requests.

    ``timestamp`` defaults to now; pass ``int(time.time()) - 301`` for a stale request.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    body = urlencode(
        slash_command_payload(
            command=command,
            text=text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            team_id=team_id,
        )
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign_slack_request(signing_secret, body, ts),
    }
    return body, headers
