"""The client actions of the conformance client scenarios, on the Python SDK (`mcp==2.3.0`).

Imported by `client_adapter.py` once it holds a slot (the SDK import alone costs 0.7 s of CPU).
Each action gets an SDK `Client` connected to the gateway over stdio and does what the
scenario expects of a client; the suite judges what the gateway then sends to its mock server.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters, types

MODERN = "2026-07-28"

# The SDK's default per-request read timeout is unbounded; a gateway that stops answering should
# fail the scenario with a clear error, well before the suite's own timeout.
READ_TIMEOUT_S = 20.0


def log(message: str) -> None:
    print(f"[adapter] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Client-side callbacks (the end client behind the gateway)
# ---------------------------------------------------------------------------------------------


def elicit_answer(_params: Any) -> types.ElicitResult:
    """Accept every elicitation, with no content of the client's own: the adapter is a plain
    client, so whatever the backend finds in the answer (a schema's defaults, SEP-1034) is the
    gateway's work, not the adapter's."""
    return types.ElicitResult(action="accept", content={})


async def on_elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    log(f"elicitation/create received: {params.model_dump(by_alias=True, exclude_none=True)}")
    return elicit_answer(params)


async def on_sample(_context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    log("sampling/createMessage received")
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="conformance adapter sample"),
        model="conformance-adapter",
        stop_reason="endTurn",
    )


async def on_roots(_context: Any) -> types.ListRootsResult:
    log("roots/list received")
    return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/conformance", name="conformance")])


# ---------------------------------------------------------------------------------------------
# Scenario actions
# ---------------------------------------------------------------------------------------------

Action = Callable[[Client, str], Awaitable[None]]


async def list_tools(client: Client) -> list[types.Tool]:
    result = await client.list_tools(cache_mode="bypass")
    names = [tool.name for tool in result.tools]
    log(f"tools/list -> {names}")
    return list(result.tools)


async def call(client: Client, name: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
    result = await client.call_tool(name, arguments or {}, read_timeout_seconds=READ_TIMEOUT_S)
    text = [c.text for c in result.content if isinstance(c, types.TextContent)]
    log(f"tools/call {name} -> isError={result.is_error} {text}")
    return result


async def connect_only(client: Client, _scenario: str) -> None:
    """`initialize`: the handshake with the backend happens when the gateway starts; listing the
    tools shows the gateway serves."""
    await list_tools(client)


async def call_first_tool(client: Client, _scenario: str) -> None:
    """`tools_call`: list the tools and call the first with {a: 2, b: 3}."""
    tools = await list_tools(client)
    if not tools:
        raise RuntimeError("the gateway lists no tools")
    await call(client, tools[0].name, {"a": 2, "b": 3})


async def call_every_tool(client: Client, _scenario: str) -> None:
    """Call every listed tool once with empty arguments (`sse-retry`,
    `elicitation-sep1034-client-defaults`). A tool result with `isError` is logged, not fatal."""
    tools = await list_tools(client)
    if not tools:
        raise RuntimeError("the gateway lists no tools")
    for tool in tools:
        await call(client, tool.name, {})


async def standard_headers(client: Client, _scenario: str) -> None:
    """`http-standard-headers`: one request of each kind, so every Mcp-Method / Mcp-Name check runs."""
    tools = await list_tools(client)
    for tool in tools:
        await call(client, tool.name, {})
    resources = await client.list_resources(cache_mode="bypass")
    log(f"resources/list -> {[str(r.uri) for r in resources.resources]}")
    for resource in resources.resources:
        await client.read_resource(str(resource.uri), cache_mode="bypass")
        log(f"resources/read {resource.uri} ok")
    prompts = await client.list_prompts(cache_mode="bypass")
    log(f"prompts/list -> {[p.name for p in prompts.prompts]}")
    for prompt in prompts.prompts:
        await client.get_prompt(prompt.name, {})
        log(f"prompts/get {prompt.name} ok")


async def context_tool_calls(client: Client, scenario: str) -> None:
    """`http-custom-headers`: the calls the suite lists in MCP_CONFORMANCE_CONTEXT.toolCalls."""
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    calls = context.get("toolCalls") or []
    if not calls:
        raise RuntimeError(f"{scenario}: MCP_CONFORMANCE_CONTEXT has no toolCalls")
    await list_tools(client)
    for item in calls:
        await call(client, item["name"], item.get("arguments") or {})


async def call_listed_tools_tolerant(client: Client, _scenario: str) -> None:
    """`http-invalid-tool-headers`: call whatever the gateway lists. Tools with invalid
    `x-mcp-header` annotations must not be listed (or at least not be called on the backend)."""
    for tool in await list_tools(client):
        try:
            await call(client, tool.name, sample_arguments(tool.input_schema))
        except Exception as exc:  # noqa: BLE001 - a refused invalid tool is the expected outcome
            log(f"tools/call {tool.name} refused: {exc!r}")


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """A value of the declared type for every required property."""
    samples = {"string": "us-west1", "integer": 1, "number": 1.5, "boolean": True, "object": {}, "array": []}
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or []:
        kind = (properties.get(name) or {}).get("type", "string")
        arguments[name] = samples.get(kind) if kind in samples else None
    return arguments


async def echo_schema(client: Client, _scenario: str) -> None:
    """`json-schema-2020-12-preservation`: send the focal tool's inputSchema, as the gateway
    listed it, back through `json_schema_echo`."""
    tools = {tool.name: tool for tool in await list_tools(client)}
    focal = tools.get("json_schema_2020_12_tool")
    if focal is None or "json_schema_echo" not in tools:
        raise RuntimeError("json_schema_2020_12_tool or json_schema_echo is not listed")
    await call(client, "json_schema_echo", {"schema": focal.input_schema})


async def list_only(client: Client, _scenario: str) -> None:
    """`json-schema-ref-no-deref`, `request-metadata`: list the tools (the suite watches what the
    gateway sends and fetches)."""
    await list_tools(client)


async def mrtr(client: Client, _scenario: str) -> None:
    """`sep-2322-client-request-state`: drive the input-required rounds by hand, with an
    unrelated call between a first round and its retry."""
    session = client.session
    await list_tools(client)

    async def first_round(name: str) -> types.InputRequiredResult | types.CallToolResult:
        result = await session.call_tool(name, {}, READ_TIMEOUT_S, allow_input_required=True)
        log(f"tools/call {name} (round 1) -> {type(result).__name__}")
        return result

    async def retry(name: str, first: types.InputRequiredResult) -> None:
        responses: dict[str, Any] = {}
        for key, request in (first.input_requests or {}).items():
            if request.method == "elicitation/create":
                responses[key] = elicit_answer(request.params)
            else:
                raise RuntimeError(f"{name}: unexpected input request {request.method}")
        result = await session.call_tool(
            name,
            {},
            READ_TIMEOUT_S,
            input_responses=responses,
            request_state=first.request_state,
            allow_input_required=True,
        )
        log(f"tools/call {name} (retry) -> {type(result).__name__}")

    echo = await first_round("test_mrtr_echo_state")
    await call(client, "test_mrtr_unrelated")
    if isinstance(echo, types.InputRequiredResult):
        await retry("test_mrtr_echo_state", echo)
    no_state = await first_round("test_mrtr_no_state")
    if isinstance(no_state, types.InputRequiredResult):
        await retry("test_mrtr_no_state", no_state)
    no_type = await first_round("test_mrtr_no_result_type")
    if isinstance(no_type, types.InputRequiredResult):
        raise RuntimeError("test_mrtr_no_result_type: a result without resultType came back as input_required")


ACTIONS: dict[str, Action] = {
    "initialize": connect_only,
    "tools_call": call_first_tool,
    "request-metadata": list_only,
    "json-schema-ref-no-deref": list_only,
    "json-schema-2020-12-preservation": echo_schema,
    "http-standard-headers": standard_headers,
    "http-custom-headers": context_tool_calls,
    "http-invalid-tool-headers": call_listed_tools_tolerant,
    "sep-2322-client-request-state": mrtr,
    "elicitation-sep1034-client-defaults": call_every_tool,
    "sse-retry": call_every_tool,
}


def action_for(scenario: str) -> Action:
    if scenario in ACTIONS:
        return ACTIONS[scenario]
    return call_first_tool


async def run(binary: Path, config: Path, scenario: str, version: str) -> None:
    """Starts the gateway on stdio with `config`, in the client era `version` asks for, and runs
    the scenario's action."""
    mode = MODERN if version == MODERN else "legacy"
    params = StdioServerParameters(
        command=str(binary),
        args=["start", "--stdio", "--config", str(config)],
        cwd=str(config.parent),
    )
    started = time.monotonic()
    async with Client(
        params,
        mode=mode,
        read_timeout_seconds=READ_TIMEOUT_S,
        elicitation_callback=on_elicit,
        sampling_callback=on_sample,
        list_roots_callback=on_roots,
        client_info=types.Implementation(name="only1mcp-conformance-adapter", version="1.0.0"),
        cache=None,
    ) as client:
        log(f"connected to the gateway in {time.monotonic() - started:.2f}s ({client.protocol_version})")
        await action_for(scenario)(client, scenario)
