"""Smoke check of the conformance fixture over stdio, the way the gateway spawns it.

The conformance suite only speaks HTTP to servers, so this covers the fixture's stdio face:
for each era (legacy handshake and 2026-07-28) it lists tools, resources and prompts, calls
the content tools, and drives one sampling, one elicitation and one roots round trip (real
server->client requests on legacy; MRTR retries on 2026-07-28), plus a multi-round MRTR call.

    peers/venv/bin/python conformance/fixture_stdio_check.py

Exits 0 and prints one line per era when everything answered as expected.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters

FIXTURE = Path(__file__).with_name("fixture_server.py")

EXPECTED_TOOLS = {
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_missing_capability",
    "test_trigger_tool_change",
    "test_trigger_prompt_change",
    "test_reconnection",
    "test_streaming_elicitation",
    "json_schema_2020_12_tool",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
}


async def sampling(_ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="Paris"),
        model="stdio-check",
        stop_reason="endTurn",
    )


async def elicitation(_ctx: Any, params: Any) -> types.ElicitResult:
    props = params.requested_schema.get("properties", {})
    content: dict[str, Any] = {}
    for key, schema in props.items():
        content[key] = {"string": "Alice", "integer": 1, "number": 1.5, "boolean": True}.get(schema.get("type"), "x")
    return types.ElicitResult(action="accept", content=content)


async def roots(_ctx: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/stdio-check", name="check")])


def text_of(result: types.CallToolResult) -> str:
    return " ".join(getattr(block, "text", f"<{block.type}>") for block in result.content)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


async def run(mode: str) -> str:
    params = StdioServerParameters(command=sys.executable, args=[str(FIXTURE)])
    async with Client(
        params,
        mode=mode,  # type: ignore[arg-type]
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
    ) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        missing = EXPECTED_TOOLS - tools
        check(not missing, f"tools missing: {sorted(missing)}")
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        check({"test://static-text", "test://static-binary", "test://watched-resource"} <= resources, "resources")
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        check("test://template/{id}/data" in templates, "resource template")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        check({"test_simple_prompt", "test_prompt_with_arguments"} <= prompts, "prompts")

        simple = await client.call_tool("test_simple_text", {})
        check(text_of(simple) == "This is a simple text response for testing.", "test_simple_text")
        mixed = await client.call_tool("test_multiple_content_types", {})
        check([b.type for b in mixed.content] == ["text", "image", "resource"], "mixed content")
        error = await client.call_tool("test_error_handling", {})
        check(error.is_error is True, "test_error_handling isError")

        sampled = await client.call_tool("test_sampling", {"prompt": "Capital of France?"})
        check(text_of(sampled) == "LLM response: Paris", f"test_sampling: {text_of(sampled)}")
        elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
        check("action=accept" in text_of(elicited), f"test_elicitation: {text_of(elicited)}")
        listed = await client.call_tool("test_input_required_result_list_roots", {})
        check("file:///tmp/stdio-check" in text_of(listed), f"roots: {text_of(listed)}")
        rounds = await client.call_tool("test_input_required_result_multi_round", {})
        check(text_of(rounds) == "Alice likes Alice", f"multi-round: {text_of(rounds)}")

        read = await client.read_resource("test://template/7/data")
        check('"id":"7"' in getattr(read.contents[0], "text", ""), "template read")
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        check(len(prompt.messages) == 1, "prompt with arguments")
        version = client.session.protocol_version if hasattr(client.session, "protocol_version") else "?"
        return f"{mode}: ok ({len(tools)} tools, protocol {version})"


async def main() -> None:
    for mode in ("legacy", "2026-07-28"):
        print(await run(mode), flush=True)


if __name__ == "__main__":
    anyio.run(main)
