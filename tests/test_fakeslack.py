"""Tests of the fake Slack: the real slack_sdk / slack_bolt clients run against it unmodified."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakeslack import (
    FakeSlack,
    sign_slack_request,
    signed_slash_command_request,
    slash_command_payload,
)

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"

BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*queue id* `4F2A1B`"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "delivered"}]},
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake_slack:
        yield fake_slack


def web_client(fake: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url, **kwargs)


def bolt_app(fake: FakeSlack) -> AsyncApp:
    return AsyncApp(signing_secret=SIGNING_SECRET, client=web_client(fake))


# ---------------------------------------------------------------------- Web API


async def test_auth_test_answers_and_records_bearer_token(fake: FakeSlack) -> None:
    """auth.test through a real AsyncWebClient returns the bot identity and records the token."""
    response = await web_client(fake).auth_test()

    assert response["ok"] is True
    assert response["user_id"] == "UBOT"
    assert response["bot_id"] == "BBOT"
    assert response["team_id"] == "T1"
    assert response["url"].startswith("https://")
    call = fake.last_call("auth.test")
    assert call.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.token == BOT_TOKEN
    assert call.path == "/api/auth.test"
    assert call.received_at <= time.time()


async def test_base_url_without_trailing_slash_still_reaches_the_fake(fake: FakeSlack) -> None:
    """slack_sdk appends the missing '/' to base_url, so both spellings hit /api/<method>."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url.rstrip("/"))

    await client.auth_test()

    assert fake.last_call("auth.test").path == "/api/auth.test"


async def test_post_message_records_parsed_blocks_and_returns_increasing_ts(
    fake: FakeSlack,
) -> None:
    """chat.postMessage records blocks as Python objects and answers with unique, rising ts."""
    client = web_client(fake)

    first = await client.chat_postMessage(channel="C1", text="trace", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="C1", text="again", thread_ts=first["ts"])

    assert first["channel"] == "C1"
    assert first["message"]["text"] == "trace"
    assert float(second["ts"]) > float(first["ts"])
    assert first["ts"] == "1700000000.000100"
    calls = fake.calls_to("chat.postMessage")
    assert [c.params["text"] for c in calls] == ["trace", "again"]
    assert calls[0].params["blocks"] == BLOCKS
    assert calls[0].headers["content-type"].startswith("application/json")
    assert calls[1].params["thread_ts"] == first["ts"]
    assert fake.messages[("C1", first["ts"])]["blocks"] == BLOCKS


async def test_form_encoded_json_string_fields_are_decoded_and_raw_kept(fake: FakeSlack) -> None:
    """A form body's JSON-string blocks are decoded in params while raw_params keeps the string."""
    client = web_client(fake)

    await client.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "x", "blocks": json.dumps(BLOCKS)}
    )

    call = fake.last_call("chat.postMessage")
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == BLOCKS
    assert call.raw_params["blocks"] == json.dumps(BLOCKS)


async def test_chat_update_and_post_ephemeral(fake: FakeSlack) -> None:
    """chat.update edits a posted message, rejects unknown ts, and chat.postEphemeral answers."""
    client = web_client(fake)
    posted = await client.chat_postMessage(channel="C1", text="working")

    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="done", blocks=BLOCKS)
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C1", ts="1.000000", text="nope")
    ephemeral = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")

    assert updated["ts"] == posted["ts"]
    assert updated["message"]["text"] == "done"
    assert fake.calls_to("chat.update")[0].params["blocks"] == BLOCKS
    assert missing.value.response["error"] == "message_not_found"
    assert ephemeral["message_ts"]
    assert fake.last_call("chat.postEphemeral").params["user"] == "U1"


async def test_users_info_returns_configured_timezone(fake: FakeSlack) -> None:
    """users.info (sent as GET with query params) returns per-user overrides like tz."""
    fake.users["U42"] = {
        "tz": "Europe/Berlin",
        "tz_label": "Central European Time",
        "tz_offset": 3600,
        "profile": {"display_name": "ops"},
    }
    client = web_client(fake)

    configured = await client.users_info(user="U42")
    default = await client.users_info(user="U7")

    assert configured["user"]["tz"] == "Europe/Berlin"
    assert configured["user"]["tz_offset"] == 3600
    assert configured["user"]["tz_label"] == "Central European Time"
    assert configured["user"]["profile"]["display_name"] == "ops"
    assert configured["user"]["profile"]["real_name"] == "User U42"
    assert default["user"]["tz"] == "America/Los_Angeles"
    call = fake.calls_to("users.info")[0]
    assert call.http_method == "GET"
    assert call.params["user"] == "U42"


async def test_conversations_info_and_usergroups_users_list(fake: FakeSlack) -> None:
    """conversations.info and usergroups.users.list answer from the fake's configuration."""
    fake.channels["C9"] = {"name": "postmaster", "is_member": False}
    fake.usergroups["S1"] = ["U1", "U2"]
    client = web_client(fake)

    channel = await client.conversations_info(channel="C9")
    members = await client.usergroups_users_list(usergroup="S1")
    with pytest.raises(SlackApiError) as unknown:
        await client.usergroups_users_list(usergroup="S404")

    assert channel["channel"]["name"] == "postmaster"
    assert channel["channel"]["is_member"] is False
    assert members["users"] == ["U1", "U2"]
    assert unknown.value.response["error"] == "no_such_subteam"


async def test_fail_next_returns_slack_error_once(fake: FakeSlack) -> None:
    """fail_next makes exactly the next call fail with the given Slack error."""
    fake.fail_next("chat.postMessage", error="not_in_channel")
    client = web_client(fake)

    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C1", text="hi")
    retried = await client.chat_postMessage(channel="C1", text="hi")

    assert failed.value.response["error"] == "not_in_channel"
    assert retried["ok"] is True
    assert [c.response["ok"] for c in fake.calls_to("chat.postMessage")] == [False, True]


async def test_token_rules_and_unknown_methods(fake: FakeSlack) -> None:
    """Missing tokens, wrong token types and unknown methods get Slack's error codes."""
    with pytest.raises(SlackApiError) as no_token:
        await AsyncWebClient(base_url=fake.api_url).chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError) as bot_token_for_socket:
        await web_client(fake).apps_connections_open(app_token=BOT_TOKEN)
    with pytest.raises(SlackApiError) as unknown:
        await web_client(fake).api_call("chat.fly")
    opened = await web_client(fake).apps_connections_open(app_token=APP_TOKEN)

    assert no_token.value.response["error"] == "not_authed"
    assert bot_token_for_socket.value.response["error"] == "not_allowed_token_type"
    assert unknown.value.response["error"] == "unknown_method"
    assert opened["url"] == fake.socket_url
    assert fake.last_call("apps.connections.open").token == APP_TOKEN


async def test_custom_handler_overrides_a_method(fake: FakeSlack) -> None:
    """fake.on replaces the default answer of a method with a test-supplied one."""
    fake.on("conversations.info", lambda call: {"ok": False, "error": "channel_not_found"})

    with pytest.raises(SlackApiError) as failed:
        await web_client(fake).conversations_info(channel="C404")

    assert failed.value.response["error"] == "channel_not_found"


async def test_rate_limited_call_is_retried_after_retry_after(fake: FakeSlack) -> None:
    """A 429 with Retry-After is retried by AsyncRateLimitErrorRetryHandler and then succeeds."""
    fake.rate_limit_next("chat.postMessage", retry_after=1)
    client = web_client(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])

    response = await client.chat_postMessage(channel="C1", text="eventually")

    assert response["ok"] is True
    limited, accepted = fake.calls_to("chat.postMessage")
    assert (limited.status, accepted.status) == (429, 200)
    assert accepted.monotonic - limited.monotonic >= 1.0


async def test_rate_limit_without_retry_handler_surfaces_retry_after(fake: FakeSlack) -> None:
    """Without a retry handler the 429 reaches the caller as ratelimited with Retry-After."""
    fake.rate_limit_next("users.info", retry_after=7)

    with pytest.raises(SlackApiError) as limited:
        await web_client(fake).users_info(user="U1")

    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "7"


async def test_server_error_fails_once_and_is_retryable(fake: FakeSlack) -> None:
    """An HTTP 500 raises SlackApiError by default and is retried by the server-error handler."""
    fake.server_error_next("auth.test")
    with pytest.raises(SlackApiError) as failed:
        await web_client(fake).auth_test()
    fake.server_error_next("auth.test", status=503)
    retrying = web_client(fake, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)])

    response = await retrying.auth_test()

    assert failed.value.response.status_code == 500
    assert response["ok"] is True
    assert [c.status for c in fake.calls_to("auth.test")] == [500, 503, 200]


async def test_wait_for_call_times_out_with_what_was_seen(fake: FakeSlack) -> None:
    """wait_for_call raises TimeoutError naming the calls recorded so far."""
    await web_client(fake).auth_test()

    with pytest.raises(TimeoutError, match=r"chat\.update.*auth\.test"):
        await fake.wait_for_call("chat.update", timeout=0.2)


# ---------------------------------------------------------------------- files


async def test_files_upload_v2_end_to_end(fake: FakeSlack) -> None:
    """files_upload_v2 runs getUploadURLExternal, the upload POST and completeUploadExternal."""
    content = "postfix/smtp[123]: 4F2A1B: to=<a@example.invalid>, status=sent\n" * 3
    client = web_client(fake)

    response = await client.files_upload_v2(
        channel="C1",
        filename="trace.log",
        content=content,
        title="Trace 4F2A1B",
        initial_comment="full log",
    )

    assert [c.method for c in fake.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    get_url, upload, complete = fake.calls
    file_id = get_url.response["file_id"]
    assert get_url.params["filename"] == "trace.log"
    assert int(get_url.params["length"]) == len(content.encode())
    assert get_url.response["upload_url"].startswith(fake.base_url)
    assert upload.body == content.encode()
    assert upload.token is None
    assert complete.params["files"] == [{"id": file_id, "title": "Trace 4F2A1B"}]
    assert complete.params["channel_id"] == "C1"
    assert fake.files[file_id].content == content.encode()
    assert fake.files[file_id].completed is True
    assert fake.files[file_id].initial_comment == "full log"
    assert response["file"]["id"] == file_id
    assert response["file"]["size"] == len(content.encode())


async def test_failed_upload_post_makes_files_upload_v2_raise(fake: FakeSlack) -> None:
    """A 500 from the upload URL makes files_upload_v2 raise and nothing is completed."""
    fake.server_error_next("upload")

    with pytest.raises(SlackRequestError, match="status: 500"):
        await web_client(fake).files_upload_v2(channel="C1", filename="a.txt", content="a")

    assert fake.calls_to("files.completeUploadExternal") == []


async def test_upload_url_accepts_multipart_bodies(fake: FakeSlack) -> None:
    """The upload URL also takes a multipart 'file' field, binary content intact."""
    issued = await web_client(fake).files_getUploadURLExternal(filename="b.bin", length=4)
    form = aiohttp.FormData()
    form.add_field("file", b"\x00\r\n\xff", filename="b.bin")

    async with (
        aiohttp.ClientSession() as session,
        session.post(issued["upload_url"], data=form) as response,
    ):
        text = await response.text()

    assert response.status == 200
    assert text == "OK - 4"
    assert fake.files[issued["file_id"]].content == b"\x00\r\n\xff"
    assert fake.last_call("upload").files["file"].filename == "b.bin"


# ---------------------------------------------------------------------- response_url


async def test_response_url_posts_are_recorded(fake: FakeSlack) -> None:
    """POSTs to fake.response_url(name) are recorded as respond:<name> and can be failed."""
    webhook = AsyncWebhookClient(url=fake.response_url("cmd"))
    fake.fail_next("respond:cmd", error="expired_url")

    rejected = await webhook.send(text="first", response_type="ephemeral")
    accepted = await webhook.send(text="second", replace_original=True)

    assert (rejected.status_code, rejected.body) == (400, "expired_url")
    assert (accepted.status_code, accepted.body) == (200, "ok")
    calls = fake.calls_to("respond:cmd")
    assert calls[1].params == {"text": "second", "replace_original": True}


# ---------------------------------------------------------------------- Socket Mode


async def test_bolt_socket_mode_slash_command_is_acked_and_answered(fake: FakeSlack) -> None:
    """A real Bolt app behind AsyncSocketModeHandler acks a slash command and posts back."""
    app = bolt_app(fake)
    finished = asyncio.Event()

    @app.command("/mailtrace")
    async def mailtrace(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack(f"Tracing {command['text']}...")
        await client.chat_postMessage(
            channel=command["channel_id"], text="delivered", blocks=BLOCKS
        )
        await respond("posted the trace")
        finished.set()

    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN, ping_interval=1)
    try:
        await handler.connect_async()
        await fake.wait_for_socket_client()
        payload = slash_command_payload(
            text="4F2A1B", user_id="U1", channel_id="C1", response_url=fake.response_url("c1")
        )
        envelope_id = await fake.send_socket_envelope(type="slash_commands", payload=payload)

        ack = await fake.wait_for_ack(envelope_id)
        [post] = await fake.wait_for_call("chat.postMessage")
        [respond_call] = await fake.wait_for_call("respond:c1")
        await asyncio.wait_for(finished.wait(), 5)
    finally:
        await handler.close_async()

    assert ack == {"envelope_id": envelope_id, "payload": {"text": "Tracing 4F2A1B..."}}
    assert fake.socket_envelopes[0]["accepts_response_payload"] is True
    assert fake.last_call("apps.connections.open").token == APP_TOKEN
    assert fake.last_call("auth.test").token == BOT_TOKEN
    assert post.token == BOT_TOKEN
    assert post.params["channel"] == "C1"
    assert post.params["blocks"] == BLOCKS
    assert respond_call.params["text"] == "posted the trace"


async def test_socket_mode_client_gets_hello_and_ping_pong_works(fake: FakeSlack) -> None:
    """slack_sdk's SocketModeClient receives Slack's hello and ping/pong works both ways."""
    received: list[dict[str, Any]] = []

    async def on_message(
        client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        received.append(message)

    client = SocketModeClient(app_token=APP_TOKEN, web_client=web_client(fake), ping_interval=1)
    client.message_listeners.append(on_message)
    try:
        await client.connect()
        await fake.wait_for_socket_client()
        await fake.wait_until(lambda: received, what="hello to reach the client")
        await fake.wait_until(lambda: fake.socket_pings, what="the SDK's first ping")
        await fake.ping_socket_clients(b"are-you-there")
        await fake.wait_until(lambda: b"are-you-there" in fake.socket_pongs, what="a pong")
        pong_time = client.last_ping_pong_time
    finally:
        await client.close()

    hello = received[0]
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A1"}
    assert fake.socket_pings[0].startswith(b"sdk-ping-pong:")
    assert pong_time is not None


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-cut"])
async def test_socket_mode_reconnects_after_drop(fake: FakeSlack, abrupt: bool) -> None:
    """After the fake drops the websocket, the handler reconnects and still acks envelopes."""
    app = bolt_app(fake)

    @app.command("/mailtrace")
    async def mailtrace(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN, ping_interval=1)
    try:
        await handler.connect_async()
        await fake.wait_for_socket_client()
        await fake.drop_socket_connections(abrupt=abrupt)
        await fake.wait_for_socket_client(total=2)
        payload = slash_command_payload(
            text="x", user_id="U1", channel_id="C1", response_url=fake.response_url("r")
        )
        envelope_id = await fake.send_socket_envelope(type="slash_commands", payload=payload)
        ack = await fake.wait_for_ack(envelope_id)
    finally:
        await handler.close_async()

    assert ack == {"envelope_id": envelope_id}
    assert len(fake.calls_to("apps.connections.open")) == 2


async def test_socket_mode_reconnects_after_disconnect_message(fake: FakeSlack) -> None:
    """Slack's 'disconnect' message makes the SDK fetch a new URL and reconnect."""
    client = SocketModeClient(app_token=APP_TOKEN, web_client=web_client(fake), ping_interval=1)
    try:
        await client.connect()
        await fake.wait_for_socket_client()
        await fake.send_socket_disconnect()
        await fake.wait_for_socket_client(total=2)
    finally:
        await client.close()

    assert len(fake.calls_to("apps.connections.open")) == 2


# ---------------------------------------------------------------------- HTTP mode signatures


async def test_signed_slash_command_matches_slack_sdk_verifier() -> None:
    """The helper's v0 signature is what slack_sdk's SignatureVerifier expects."""
    body, headers = signed_slash_command_request(
        SIGNING_SECRET,
        text="4F2A1B",
        user_id="U1",
        channel_id="C1",
        response_url="http://127.0.0.1:9/respond/x",
    )
    verifier = SignatureVerifier(SIGNING_SECRET)
    timestamp = headers["X-Slack-Request-Timestamp"]

    assert verifier.is_valid(body, timestamp, headers["X-Slack-Signature"])
    assert headers["X-Slack-Signature"] == sign_slack_request(SIGNING_SECRET, body, timestamp)
    assert "command=%2Fmailtrace" in body
    assert not SignatureVerifier("other-secret").is_valid(
        body, timestamp, headers["X-Slack-Signature"]
    )


@pytest.mark.parametrize(
    ("secret", "age", "tamper", "expected_status"),
    [
        (SIGNING_SECRET, 0, False, 200),
        ("wrong-secret", 0, False, 401),
        (SIGNING_SECRET, 301, False, 401),
        (SIGNING_SECRET, 0, True, 401),
    ],
    ids=["valid", "wrong-signature", "stale-301s", "tampered-body"],
)
async def test_bolt_http_dispatch_verifies_signatures(
    fake: FakeSlack, secret: str, age: int, tamper: bool, expected_status: int
) -> None:
    """AsyncApp.async_dispatch accepts a correctly signed command and rejects bad or stale ones."""
    app = bolt_app(fake)
    handled: list[str] = []

    @app.command("/mailtrace")
    async def mailtrace(ack: AsyncAck, command: dict[str, Any]) -> None:
        handled.append(command["text"])
        await ack()

    body, headers = signed_slash_command_request(
        secret,
        text="4F2A1B",
        user_id="U1",
        channel_id="C1",
        response_url=fake.response_url("http"),
        timestamp=int(time.time()) - age,
    )
    if tamper:
        body = body.replace("4F2A1B", "DEADBEEF")

    bolt_headers: dict[str, str | Sequence[str]] = {**headers}
    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=bolt_headers))

    assert response.status == expected_status
    assert handled == (["4F2A1B"] if expected_status == 200 else [])


async def test_fake_stops_cleanly_as_context_manager() -> None:
    """The async context manager starts on a free port and refuses connections after exit."""
    async with FakeSlack() as fake:
        url = fake.api_url
        assert url.startswith("http://127.0.0.1:")
        await web_client(fake).auth_test()

    with pytest.raises(aiohttp.ClientConnectionError):
        await AsyncWebClient(token=BOT_TOKEN, base_url=url, retry_handlers=[]).auth_test()
