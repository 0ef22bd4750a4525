"""Only1MCP conformance fixture: a dual-era MCP server for the official conformance suite.

It implements every tool, resource and prompt that the SERVER scenarios of
`@modelcontextprotocol/conformance` (0.2.0-alpha.12) call, for both requirement
sets (2026-07-28 and 2025-11-25). Written from the scenario descriptions the
suite prints; it is our own code on the Python `mcp` 2.3.0 SDK.

Run:
    python fixture_server.py              # stdio (how the gateway spawns it)
    python fixture_server.py --http PORT  # Streamable HTTP on 127.0.0.1:PORT/mcp
    python fixture_server.py --half prefixed|bare   # one half of it (see `split`)

Era handling: the SDK serves 2026-07-28 (stateless, `_meta` per request) and the
legacy handshake era (2025-11-25 and older) on the same transport. Everything
that needs input from the client goes through `Inputs` below: on 2026-07-28 it
answers with an `InputRequiredResult` (MRTR) whose keys the scenarios expect,
and on legacy it sends real `elicitation/create`, `sampling/createMessage` and
`roots/list` requests tied to the running request. The SDK seals `requestState`
(AES-GCM, ephemeral key) so a tampered state is rejected with -32602.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import struct
import sys
import wave
import zlib
from typing import Annotated, Any

import anyio
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    Completion,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    PromptReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

SERVER_NAME = "only1mcp-conformance-fixture"
SERVER_VERSION = "1.0.0"

# --------------------------------------------------------------------------------------
# Static payloads
# --------------------------------------------------------------------------------------


def _png_1x1_red() -> bytes:
    """A valid 1x1 red PNG, built here rather than pasted as base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit, RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    """A tiny valid WAV file: 10 ms of 8 kHz mono 16-bit silence."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 80)
    return buf.getvalue()


PNG = _png_1x1_red()
PNG_B64 = base64.b64encode(PNG).decode()
WAV_B64 = base64.b64encode(_wav_silence()).decode()

# The inputSchema of `json_schema_2020_12_tool` (scenario json-schema-2020-12): published verbatim.
JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------

app: MCPServer[Any] = MCPServer(
    SERVER_NAME,
    version=SERVER_VERSION,
    instructions="Conformance fixture for Only1MCP: implements the conformance suite's server scenarios.",
    log_level="WARNING",
)
_low = app._lowlevel_server  # noqa: SLF001 - the handlers MCPServer has no decorator for

# Legacy initialize advertises listChanged (the 2026-07-28 capabilities derive from
# `subscriptions/listen`, which MCPServer serves).
_NOTIFY = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
_create_init_options = _low.create_initialization_options


def _init_options(notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any) -> Any:
    return _create_init_options(notification_options or _NOTIFY, *args, **kwargs)


_low.create_initialization_options = _init_options  # type: ignore[method-assign]


def is_modern(ctx: Context[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def text_result(text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=is_error)


# --------------------------------------------------------------------------------------
# Client input in both eras
# --------------------------------------------------------------------------------------

_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "elicitation/create": (ElicitResult,),
    "sampling/createMessage": (CreateMessageResult, CreateMessageResultWithTools),
    "roots/list": (ListRootsResult,),
}


def elicit_request(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def sample_request(text: str, max_tokens: int) -> CreateMessageRequest:
    return CreateMessageRequest(
        params=CreateMessageRequestParams(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=text))],
            max_tokens=max_tokens,
        )
    )


def roots_request() -> ListRootsRequest:
    return ListRootsRequest()


def declared(ctx: Context[Any, Any], method: str) -> bool:
    """Whether the client declared the capability `method` needs."""
    caps = ctx.client_capabilities
    if caps is None:
        return False
    if method == "elicitation/create":
        return caps.elicitation is not None and (caps.elicitation.form is not None or caps.elicitation.url is None)
    if method == "sampling/createMessage":
        return caps.sampling is not None
    return caps.roots is not None


_CAPABILITY_KEY = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}


class Inputs:
    """Collects client answers for one call, in whichever era the call runs.

    Modern (2026-07-28): answers arrive as `inputResponses` on retries; answers of
    earlier rounds ride our (SDK-sealed) `requestState`. A missing answer yields an
    `InputRequiredResult` asking for exactly the missing keys.
    Legacy: each request is sent to the client for real, tied to this request.
    """

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self.ctx = ctx
        self.modern = is_modern(ctx)
        self.answers: dict[str, dict[str, Any]] = {}
        self.state_seen = False
        if self.modern and ctx.request_state:
            state = json.loads(ctx.request_state)
            self.answers = dict(state.get("answers", {}))
            self.state_seen = True

    def require(self, requests: dict[str, Any]) -> None:
        """Fails (-32021 on 2026-07-28, a tool error on legacy) unless the client declared what `requests` need."""
        missing = sorted({r.method for r in requests.values() if not declared(self.ctx, r.method)})
        if not missing:
            return
        if self.modern:
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message=f"Client did not declare the capabilities required: {', '.join(missing)}",
                data={"requiredCapabilities": {_CAPABILITY_KEY[m]: {} for m in missing}},
            )
        raise ToolError(f"Client does not support {', '.join(missing)}")

    async def get(self, requests: dict[str, Any]) -> dict[str, Any] | InputRequiredResult:
        """Answers for `requests` (key -> request model), or the `InputRequiredResult` to return."""
        self.require(requests)
        if not self.modern:
            out: dict[str, Any] = {}
            for key, request in requests.items():
                result_type = _RESULT_TYPES[request.method][0]
                out[key] = await self.ctx.session.send_request(
                    request,
                    result_type,
                    metadata=ServerMessageMetadata(related_request_id=self.ctx.request_id),
                )
            return out

        fresh = self.ctx.input_responses or {}
        out = {}
        pending: dict[str, Any] = {}
        for key, request in requests.items():
            kinds = _RESULT_TYPES[request.method]
            answer = fresh.get(key)
            if isinstance(answer, kinds):
                self.answers[key] = {"method": request.method, "value": answer.model_dump(mode="json", by_alias=True)}
                out[key] = answer
            elif key in self.answers and self.answers[key].get("method") == request.method:
                out[key] = kinds[0].model_validate(self.answers[key]["value"])
            else:
                pending[key] = request
        if pending:
            return InputRequiredResult(input_requests=pending, request_state=self.state())
        return out

    def state(self) -> str:
        return json.dumps({"answers": self.answers}, separators=(",", ":"))


def elicit_summary(result: ElicitResult) -> str:
    return f"action={result.action}, content={json.dumps(result.content, sort_keys=True)}"


def sample_text(result: CreateMessageResult | CreateMessageResultWithTools) -> str:
    content = result.content
    blocks = content if isinstance(content, list) else [content]
    return " ".join(getattr(b, "text", f"<{b.type}>") for b in blocks)


def roots_summary(result: ListRootsResult) -> str:
    return ", ".join(root.uri if isinstance(root.uri, str) else str(root.uri) for root in result.roots) or "(none)"


# --------------------------------------------------------------------------------------
# Logging (legacy `logging/setLevel`; 2026-07-28 uses the per-request `_meta` level,
# which the SDK applies itself)
# --------------------------------------------------------------------------------------

_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
_min_level = "debug"


async def _set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
    global _min_level
    _min_level = params.level
    return EmptyResult()


_low.add_request_handler("logging/setLevel", SetLevelRequestParams, _set_level)


async def log(ctx: Context[Any, Any], level: str, message: str) -> None:
    if not is_modern(ctx) and _LEVELS.index(level) < _LEVELS.index(_min_level):
        return
    await ctx.log(level, message, logger_name="fixture")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Legacy resource subscriptions (2026-07-28 uses `subscriptions/listen`, served by the SDK)
# --------------------------------------------------------------------------------------

_subscribed: set[str] = set()


async def _subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
    _subscribed.add(str(params.uri))
    return EmptyResult()


async def _unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
    _subscribed.discard(str(params.uri))
    return EmptyResult()


_low.add_request_handler("resources/subscribe", SubscribeRequestParams, _subscribe)
_low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, _unsubscribe)

# --------------------------------------------------------------------------------------
# Tools: content types
# --------------------------------------------------------------------------------------


@app.tool(structured_output=False)
def test_simple_text() -> CallToolResult:
    """Returns a simple text content block."""
    return text_result("This is a simple text response for testing.")


@app.tool(structured_output=False)
def test_image_content() -> CallToolResult:
    """Returns an image content block (1x1 red PNG)."""
    return CallToolResult(content=[ImageContent(type="image", data=PNG_B64, mime_type="image/png")])


@app.tool(structured_output=False)
def test_audio_content() -> CallToolResult:
    """Returns an audio content block (a short silent WAV)."""
    return CallToolResult(content=[AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")])


@app.tool(structured_output=False)
def test_embedded_resource() -> CallToolResult:
    """Returns an embedded text resource."""
    resource = TextResourceContents(
        uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
    )
    return CallToolResult(content=[EmbeddedResource(type="resource", resource=resource)])


@app.tool(structured_output=False)
def test_multiple_content_types() -> CallToolResult:
    """Returns text, image and embedded resource content together."""
    resource = TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=json.dumps({"test": "data", "value": 123}, separators=(",", ":")),
    )
    return CallToolResult(
        content=[
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
            EmbeddedResource(type="resource", resource=resource),
        ]
    )


@app.tool(structured_output=False)
def test_error_handling() -> CallToolResult:
    """Always fails with a tool execution error (isError: true)."""
    return text_result("This tool intentionally returns an error for testing", is_error=True)


# --------------------------------------------------------------------------------------
# Tools: logging and progress
# --------------------------------------------------------------------------------------


@app.tool(structured_output=False)
async def test_tool_with_logging(ctx: Context[Any, Any]) -> CallToolResult:
    """Sends three info log notifications ~50 ms apart, then returns."""
    await log(ctx, "info", "Tool execution started")
    await anyio.sleep(0.05)
    await log(ctx, "info", "Tool processing data")
    await anyio.sleep(0.05)
    await log(ctx, "info", "Tool execution completed")
    return text_result("Tool with logging executed successfully")


@app.tool(structured_output=False)
async def test_logging_tool(ctx: Context[Any, Any]) -> CallToolResult:
    """Logs at every level; on 2026-07-28 only what the request's `_meta` log level allows is sent."""
    for level in ("debug", "info", "warning", "error"):
        await log(ctx, level, f"test_logging_tool {level} message")
    return text_result("Logging tool executed")


@app.tool(structured_output=False)
async def test_tool_with_progress(ctx: Context[Any, Any]) -> CallToolResult:
    """Reports progress 0/100, 50/100, 100/100 (~50 ms apart) when a progressToken is given."""
    for step, progress in enumerate((0, 50, 100)):
        if step:
            await anyio.sleep(0.05)
        await ctx.report_progress(progress, 100, f"step {step + 1} of 3")
    return text_result("Tool with progress executed successfully")


# --------------------------------------------------------------------------------------
# Tools: sampling and elicitation (legacy scenarios; MRTR on 2026-07-28)
# --------------------------------------------------------------------------------------


@app.tool(structured_output=False)
async def test_sampling(prompt: str, ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks the client's LLM (sampling/createMessage) with the given prompt and returns its answer."""
    got = await Inputs(ctx).get({"sampling": sample_request(prompt, 100)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"LLM response: {sample_text(got['sampling'])}")


_USER_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}


@app.tool(structured_output=False)
async def test_elicitation(message: str, ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks the user (elicitation/create) for a username and email, showing the given message."""
    got = await Inputs(ctx).get({"elicitation": elicit_request(message, _USER_SCHEMA)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"User response: {elicit_summary(got['elicitation'])}")


_SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name", "default": "John Doe"},
        "age": {"type": "integer", "description": "Age", "default": 30},
        "score": {"type": "number", "description": "Score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "Status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verified", "default": True},
    },
}


@app.tool(structured_output=False)
async def test_elicitation_sep1034_defaults(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Elicits a form whose primitive fields all carry default values (SEP-1034)."""
    request = elicit_request("Please review and update the form fields with defaults", _SEP1034_SCHEMA)
    got = await Inputs(ctx).get({"defaults": request})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Elicitation completed: {elicit_summary(got['defaults'])}")


_SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Untitled single-select",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Titled single-select",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Legacy titled enum (enumNames, deprecated)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Untitled multi-select",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Titled multi-select",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


@app.tool(structured_output=False)
async def test_elicitation_sep1330_enums(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Elicits a form with all five enum schema variants (SEP-1330)."""
    got = await Inputs(ctx).get({"enums": elicit_request("Please pick from the enum fields", _SEP1330_SCHEMA)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Elicitation completed: {elicit_summary(got['enums'])}")


# --------------------------------------------------------------------------------------
# Tools: 2026-07-28 diagnostics (server-stateless)
# --------------------------------------------------------------------------------------


@app.tool(structured_output=False)
async def test_missing_capability(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Needs the client's sampling capability; without it the call fails with -32021 (modern)."""
    got = await Inputs(ctx).get({"sample": sample_request("Say something", 20)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Sampled: {sample_text(got['sample'])}")


@app.tool(structured_output=False)
async def test_streaming_elicitation(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Reports progress, then asks for input (an InputRequiredResult on 2026-07-28, never a standalone request)."""
    await ctx.report_progress(1, 2, "preparing the question")
    got = await Inputs(ctx).get({"answer": elicit_request("Streaming question: your name?", _NAME_SCHEMA)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Streaming elicitation answered: {elicit_summary(got['answer'])}")


_dynamic_tool_on = False
_dynamic_prompt_on = False

# The prefix `--half prefixed` takes off the names it serves (see `split`).
PREFIX = "test_"
# Which half this process serves: None (everything), "prefixed" or "bare".
_half: str | None = None


def own(name: str) -> str:
    """The name this process serves the scenarios' tool or prompt `name` under."""
    if _half == "prefixed" and name.startswith(PREFIX):
        return name[len(PREFIX) :]
    return name


def test_dynamic_tool() -> CallToolResult:
    """A tool that test_trigger_tool_change adds and removes."""
    return text_result("dynamic tool")


def test_dynamic_prompt() -> str:
    """A prompt that test_trigger_prompt_change adds and removes."""
    return "dynamic prompt"


async def _notify_list_changed(ctx: Context[Any, Any], kind: str) -> None:
    if kind == "tools":
        await ctx.notify_tools_changed()
    else:
        await ctx.notify_prompts_changed()
    if not is_modern(ctx):
        session = ctx.session
        await (session.send_tool_list_changed() if kind == "tools" else session.send_prompt_list_changed())


@app.tool(structured_output=False)
async def test_trigger_tool_change(ctx: Context[Any, Any]) -> CallToolResult:
    """Adds or removes `test_dynamic_tool`, then announces that the tool list changed."""
    global _dynamic_tool_on
    if _dynamic_tool_on:
        app.remove_tool(own("test_dynamic_tool"))
    else:
        app.add_tool(test_dynamic_tool, name=own("test_dynamic_tool"), structured_output=False)
    _dynamic_tool_on = not _dynamic_tool_on
    await _notify_list_changed(ctx, "tools")
    return text_result(f"Tool list changed (test_dynamic_tool {'added' if _dynamic_tool_on else 'removed'})")


@app.tool(structured_output=False)
async def test_trigger_prompt_change(ctx: Context[Any, Any]) -> CallToolResult:
    """Adds or removes `test_dynamic_prompt`, then announces that the prompt list changed."""
    global _dynamic_prompt_on
    if _dynamic_prompt_on:
        app.remove_prompt(own("test_dynamic_prompt"))
    else:
        app.prompt(name=own("test_dynamic_prompt"))(test_dynamic_prompt)
    _dynamic_prompt_on = not _dynamic_prompt_on
    await _notify_list_changed(ctx, "prompts")
    return text_result(f"Prompt list changed (test_dynamic_prompt {'added' if _dynamic_prompt_on else 'removed'})")


@app.tool(structured_output=False)
async def test_reconnection(ctx: Context[Any, Any]) -> CallToolResult:
    """Closes its SSE response stream mid-call (legacy HTTP with an event store), then returns (SEP-1699)."""
    await anyio.sleep(0.05)
    await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    return text_result("Reconnection test completed")


@app.tool(structured_output=False)
def test_custom_header(
    region: Annotated[
        str,
        Field(description="Mirrored as the Mcp-Param-Region header", json_schema_extra={"x-mcp-header": "Region"}),
    ],
) -> CallToolResult:
    """Echoes `region`, a parameter annotated with `x-mcp-header` (SEP-2243 custom headers)."""
    return text_result(f"region={region}")


def json_schema_2020_12_tool(**kwargs: Any) -> CallToolResult:
    """Tool with JSON Schema 2020-12 features"""
    return text_result(f"json_schema_2020_12_tool called with {json.dumps(kwargs, sort_keys=True)}")


app.add_tool(json_schema_2020_12_tool, structured_output=False)
# Publish the schema verbatim instead of the one derived from the signature.
app._tool_manager.get_tool("json_schema_2020_12_tool").parameters = JSON_SCHEMA_2020_12  # noqa: SLF001

# --------------------------------------------------------------------------------------
# Tools: MRTR (input-required-result-*); dual-era through `Inputs`
# --------------------------------------------------------------------------------------

_NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _name(result: ElicitResult) -> str:
    content = result.content or {}
    return str(content.get("name", "")) if result.action == "accept" else f"({result.action})"


@app.tool(structured_output=False)
async def test_input_required_result_elicitation(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for the user's name (input key `user_name`), then greets them."""
    got = await Inputs(ctx).get({"user_name": elicit_request("What is your name?", _NAME_SCHEMA)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Hello, {_name(got['user_name'])}!")


@app.tool(structured_output=False)
async def test_input_required_result_sampling(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks the client's LLM for the capital of France (input key `capital_question`)."""
    got = await Inputs(ctx).get({"capital_question": sample_request("What is the capital of France?", 100)})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"The model said: {sample_text(got['capital_question'])}")


@app.tool(structured_output=False)
async def test_input_required_result_list_roots(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for the client's roots (input key `client_roots`) and lists them."""
    got = await Inputs(ctx).get({"client_roots": roots_request()})
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Client roots: {roots_summary(got['client_roots'])}")


_CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


async def _confirm_with_state(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for confirmation; on 2026-07-28 completes only on a retry that echoed our requestState."""
    inputs = Inputs(ctx)
    request = {"confirm": elicit_request("Please confirm", _CONFIRM_SCHEMA)}
    if inputs.modern and not inputs.state_seen:
        # Round one (or an answer that came without our requestState): ask, with the state attached.
        inputs.require(request)
        return InputRequiredResult(input_requests=request, request_state=inputs.state())
    got = await inputs.get(request)
    if isinstance(got, InputRequiredResult):
        return got
    verified = "state-ok: requestState verified" if inputs.modern else "confirmed"
    return text_result(f"{verified}; {elicit_summary(got['confirm'])}")


@app.tool(structured_output=False)
async def test_input_required_result_request_state(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for confirmation with a requestState; the retry must echo it (the answer says `state-ok`)."""
    return await _confirm_with_state(ctx)


@app.tool(structured_output=False)
async def test_input_required_result_multiple_inputs(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for a name, a sampled greeting and the roots in one round."""
    got = await Inputs(ctx).get(
        {
            "user_name": elicit_request("What is your name?", _NAME_SCHEMA),
            "greeting": sample_request("Generate a greeting", 50),
            "client_roots": roots_request(),
        }
    )
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(
        f"{sample_text(got['greeting'])} {_name(got['user_name'])} (roots: {roots_summary(got['client_roots'])})"
    )


@app.tool(structured_output=False)
async def test_input_required_result_multi_round(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Two rounds of questions (`step1` name, then `step2` colour), then a complete result."""
    inputs = Inputs(ctx)
    first = await inputs.get({"step1": elicit_request("Step 1: What is your name?", _NAME_SCHEMA)})
    if isinstance(first, InputRequiredResult):
        return first
    color_schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    second = await inputs.get({"step2": elicit_request("Step 2: What is your favorite color?", color_schema)})
    if isinstance(second, InputRequiredResult):
        return second
    color = (second["step2"].content or {}).get("color", "")
    return text_result(f"{_name(first['step1'])} likes {color}")


@app.tool(structured_output=False)
async def test_input_required_result_tampered_state(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks for confirmation with an integrity-protected requestState (a tampered echo gets -32602)."""
    return await _confirm_with_state(ctx)


@app.tool(structured_output=False)
async def test_input_required_result_capabilities(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
    """Asks only for what the client declared (elicitation, sampling, roots)."""
    wanted = {
        "user_name": elicit_request("What is your name?", _NAME_SCHEMA),
        "greeting": sample_request("Generate a greeting", 50),
        "client_roots": roots_request(),
    }
    allowed = {key: req for key, req in wanted.items() if declared(ctx, req.method)}
    if not allowed:
        return text_result("The client declared none of elicitation, sampling or roots; nothing to ask.")
    got = await Inputs(ctx).get(allowed)
    if isinstance(got, InputRequiredResult):
        return got
    return text_result(f"Answered: {', '.join(sorted(got))}")


# --------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------


@app.resource(
    "test://static-text",
    name="static-text",
    description="A static text resource",
    mime_type="text/plain",
)
def static_text() -> str:
    return "This is the content of the static text resource."


@app.resource(
    "test://static-binary",
    name="static-binary",
    description="A static binary resource (1x1 PNG)",
    mime_type="image/png",
)
def static_binary() -> bytes:
    return PNG


@app.resource(
    "test://watched-resource",
    name="watched-resource",
    description="A resource clients may subscribe to",
    mime_type="text/plain",
)
def watched_resource() -> str:
    return "Watched resource content."


@app.resource(
    "test://embedded-resource",
    name="embedded-resource",
    description="The resource test_embedded_resource embeds",
    mime_type="text/plain",
)
def embedded_resource() -> str:
    return "This is an embedded resource content."


@app.resource(
    "test://template/{id}/data",
    name="template-data",
    description="A resource template: data for one id",
    mime_type="application/json",
)
def template_data(id: str) -> str:  # noqa: A002 - the template variable is called `id`
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------


@app.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage("This is a simple prompt for testing.")]


@app.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@app.prompt(description="A prompt that embeds the resource named by resourceUri")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 - wire name
    resource = TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(EmbeddedResource(type="resource", resource=resource)),
        UserMessage("Please process the embedded resource above."),
    ]


@app.prompt(description="A prompt with image content")
def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
        UserMessage("Please analyze the image above."),
    ]


@app.prompt(description="A prompt that first asks the user for context (MRTR on prompts/get)")
async def test_input_required_result_prompt(ctx: Context[Any, Any]) -> list[UserMessage] | InputRequiredResult:
    schema = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
    got = await Inputs(ctx).get({"user_context": elicit_request("What context should the prompt use?", schema)})
    if isinstance(got, InputRequiredResult):
        return got
    answer = got["user_context"]
    context = (answer.content or {}).get("context", "") if answer.action == "accept" else f"({answer.action})"
    return [UserMessage(f"Use this context: {context}")]


# --------------------------------------------------------------------------------------
# Completion
# --------------------------------------------------------------------------------------

_COMPLETIONS = {"arg1": ["paris", "park", "party"], "arg2": ["world", "word", "work"]}


@app.completion()
async def complete(ref: Any, argument: Any, context: Any) -> Completion:
    """Completes `test_prompt_with_arguments` and the template's `id`. A prompt or template this
    process does not serve is an error (-32602), not an empty answer: a gateway that forwards
    the reference under the wrong name must not pass for one that completes nothing."""
    values: list[str] = []
    if isinstance(ref, PromptReference):
        if ref.name not in app._prompt_manager._prompts:  # noqa: SLF001
            raise MCPError(code=-32602, message=f"Unknown prompt: {ref.name}")
        if ref.name == own("test_prompt_with_arguments"):
            values = [v for v in _COMPLETIONS.get(argument.name, []) if v.startswith(argument.value or "")]
    else:
        uri = getattr(ref, "uri", None)
        if uri not in app._resource_manager._templates:  # noqa: SLF001
            raise MCPError(code=-32602, message=f"Unknown resource template: {uri}")
        if uri == "test://template/{id}/data" and argument.name == "id":
            values = [v for v in ("1", "123", "42") if v.startswith(argument.value or "")]
    return Completion(values=values, total=len(values), has_more=False)


# --------------------------------------------------------------------------------------
# Transports
# --------------------------------------------------------------------------------------


class MemoryEventStore(EventStore):
    """In-memory event store so legacy SSE streams can be resumed (server-sse-polling)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []  # (event id, stream id, message or None)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(len(self._events) + 1)
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        index = next((i for i, (eid, _, _) in enumerate(self._events) if eid == last_event_id), None)
        if index is None:
            return None
        stream_id = self._events[index][1]
        for event_id, sid, message in self._events[index + 1 :]:
            if sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def split(half: str) -> None:
    """Keeps one half of the fixture, for a gateway that puts the two halves behind one face.

    - `prefixed`: the tools and prompts whose names start with `test_`, served without it
      (`simple_text`). Behind a gateway with separator `_` and this backend named `test`, the
      gateway's default prefixing (`always`) gives the scenarios their names back, so every
      call, prompt and completion of theirs goes through its renaming.
    - `bare`: everything else (resources, templates, `json_schema_2020_12_tool`), for an
      unprefixed backend.
    """
    global _half
    _half = half
    tools = app._tool_manager._tools  # noqa: SLF001 - the SDK has no rename
    prompts = app._prompt_manager._prompts  # noqa: SLF001
    for registry in (tools, prompts):
        for name, item in list(registry.items()):
            del registry[name]
            if (half == "prefixed") == name.startswith(PREFIX):
                renamed = own(name)
                registry[renamed] = item.model_copy(update={"name": renamed})
    if half == "prefixed":
        app._resource_manager._resources.clear()  # noqa: SLF001
        app._resource_manager._templates.clear()  # noqa: SLF001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT/mcp")
    parser.add_argument(
        "--half",
        choices=["prefixed", "bare"],
        help="serve one half: the test_* tools and prompts without test_, or everything else",
    )
    args = parser.parse_args()
    if args.half is not None:
        split(args.half)
    if args.http is None:
        app.run()
        return
    print(f"fixture: serving http://127.0.0.1:{args.http}/mcp", file=sys.stderr, flush=True)
    asyncio.run(
        app.run_streamable_http_async(
            host="127.0.0.1",
            port=args.http,
            event_store=MemoryEventStore(),
            retry_interval=500,
        )
    )


if __name__ == "__main__":
    main()
