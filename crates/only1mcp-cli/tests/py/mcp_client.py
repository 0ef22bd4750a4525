#!/usr/bin/env python3
"""Scripted MCP test client built on the official Python SDK (`mcp==2.3.0`).

Usage:
    python mcp_client.py [--mode legacy|auto|2026-07-28] [--timeout SECS] [--no-discover] \
        -- COMMAND [ARGS...] < ops.json

Connects to --url (Streamable HTTP), --sse (HTTP+SSE) or launches COMMAND as a stdio MCP server (with this process's full environment), reads a JSON
array of operations from stdin, runs them in order in one session and prints ONE JSON object:

    {"protocol_version": "...", "server_name": "..." | null,
     "capabilities": {...}, "results": [<one entry per op>]}

Operations:
    {"op": "list_tools"}                                   -> [tool, ...]      (all pages)
    {"op": "call_tool", "name": N, "arguments": {...}}     -> CallToolResult
    {"op": "list_prompts"}                                 -> [prompt, ...]    (all pages)
    {"op": "get_prompt", "name": N, "arguments": {...}}    -> GetPromptResult
    {"op": "list_resources"}                               -> [resource, ...]  (all pages)
    {"op": "list_resource_templates"}                      -> [template, ...]  (all pages)
    {"op": "read_resource", "uri": U}                      -> ReadResourceResult
    {"op": "ping"}                                         -> {} (legacy only; an error on 2026-07-28)
    {"op": "call_tool", ..., "progress": true}             -> as call_tool; progress goes to "received"
    {"op": "subscribe_resource", "uri": U}                 -> {}
    {"op": "set_logging_level", "level": L}                -> {} (legacy)
    {"op": "complete", "prompt": P, "argument": {"name": A, "value": V}, "context": {...}}
                                                           -> CompleteResult
    {"op": "sleep", "seconds": S}                          -> null (lets notifications arrive)

Every server notification and log message the session surfaces, and every progress
notification of a "progress" call, is appended to the output's "received" list as
{"kind": "notification" | "log" | "progress", "params": ...}.

Every model is dumped with `model_dump(mode="json", by_alias=True, exclude_none=True)`.
If an op fails, its entry is {"error": {"code": C, "message": M[, "data": D]}} for an MCP
error, or {"error": {"exception": TYPE, "message": M}} for anything else, and the next op
runs. Exit status: 0 when the session was established (whatever the ops returned), 1 when
it could not be (the exception goes to stderr), 2 on bad usage or bad input.

Modes are the SDK's `Client(mode=...)`: "legacy" (initialize handshake), "auto" (probe
`server/discover`, fall back to initialize) and a modern version such as "2026-07-28". The
SDK's modern mode adopts the version without any wire traffic; this script then sends one
`server/discover` at that version and adopts its answer, so `server_name` and
`capabilities` are the server's own (and a server that cannot answer discover fails the
session). `--no-discover` skips that and keeps the SDK's purely local adoption.

The SDK's client-side response cache is disabled, so every op reaches the server.

With --callbacks the client declares sampling, elicitation and roots and answers them:
sampling with the text "sampled: <text of the last message>" (model "only1mcp-test-model"),
elicitation by accepting with {"name": "Ada Lovelace", "check": true}, roots with
[{"uri": "file:///only1mcp/test-root", "name": "test root"}]. What each callback received is
in the output's "received" list ({"kind": ..., "params": ...}).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, MCPDeprecationWarning, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

# `ping` and friends are deprecated for 2026-07-28; this client calls them on purpose.
warnings.simplefilter("ignore", MCPDeprecationWarning)

MODES = ("legacy", "auto", *MODERN_PROTOCOL_VERSIONS)
PAGE_CAP = 1000  # a paginator that never ends must not hang a test


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def list_all(fetch: Any, attr: str) -> list[Any]:
    """Follow `next_cursor` through every page and return the dumped items."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(PAGE_CAP):
        page = await fetch(cursor=cursor)
        items.extend(dump(item) for item in getattr(page, attr))
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise RuntimeError(f"more than {PAGE_CAP} pages")


async def run_op(client: Client, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind == "list_tools":
        return await list_all(client.list_tools, "tools")
    if kind == "call_tool":
        progress = None
        if op.get("progress"):

            async def progress(value: float, total: float | None, message: str | None) -> None:
                RECEIVED.append({"kind": "progress", "params": {"progress": value, "total": total, "message": message}})

        return dump(await client.call_tool(op["name"], op.get("arguments"), progress_callback=progress))
    if kind == "subscribe_resource":
        return dump(await client.subscribe_resource(op["uri"]))
    if kind == "set_logging_level":
        return dump(await client.set_logging_level(op["level"]))
    if kind == "complete":
        ref = types.PromptReference(type="ref/prompt", name=op["prompt"])
        return dump(await client.complete(ref, op["argument"], op.get("context")))
    if kind == "sleep":
        await anyio.sleep(float(op["seconds"]))
        return None
    if kind == "list_prompts":
        return await list_all(client.list_prompts, "prompts")
    if kind == "get_prompt":
        return dump(await client.get_prompt(op["name"], op.get("arguments")))
    if kind == "list_resources":
        return await list_all(client.list_resources, "resources")
    if kind == "list_resource_templates":
        return await list_all(client.list_resource_templates, "resource_templates")
    if kind == "read_resource":
        return dump(await client.read_resource(op["uri"]))
    if kind == "ping":
        return dump(await client.send_ping())
    raise ValueError(f"unknown op {kind!r}")


def error_entry(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MCPError):
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.data is not None:
            error["data"] = exc.data
        return {"error": error}
    return {"error": {"exception": type(exc).__name__, "message": str(exc)}}


RECEIVED: list[dict[str, Any]] = []


async def sampling_callback(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    RECEIVED.append({"kind": "sampling", "params": dump(params)})
    last = params.messages[-1].content if params.messages else None
    text = getattr(last, "text", "") if last is not None else ""
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled: {text}"),
        model="only1mcp-test-model",
        stop_reason="endTurn",
    )


async def elicitation_callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    RECEIVED.append({"kind": "elicitation", "params": dump(params)})
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})


async def list_roots_callback(context: Any) -> types.ListRootsResult:
    RECEIVED.append({"kind": "roots", "params": {}})
    return types.ListRootsResult(roots=[types.Root(uri="file:///only1mcp/test-root", name="test root")])


async def message_handler(message: Any) -> None:
    if isinstance(message, Exception):
        return
    inner = getattr(message, "root", message)
    params = getattr(inner, "params", None)
    RECEIVED.append(
        {
            "kind": "notification",
            "method": getattr(inner, "method", None),
            "params": dump(params) if isinstance(params, BaseModel) else params,
        }
    )


async def logging_callback(params: types.LoggingMessageNotificationParams) -> None:
    RECEIVED.append({"kind": "log", "params": dump(params)})


async def session(args: argparse.Namespace, ops: list[dict[str, Any]]) -> int:
    if args.url:
        server: Any = args.url
    elif args.sse:
        server = sse_client(args.sse)
    else:
        server = StdioServerParameters(command=args.command[0], args=args.command[1:], env=dict(os.environ))
    callbacks: dict[str, Any] = {}
    if args.callbacks:
        callbacks = {
            "sampling_callback": sampling_callback,
            "elicitation_callback": elicitation_callback,
            "list_roots_callback": list_roots_callback,
        }
    if args.log_level:
        callbacks["log_level"] = args.log_level
    client = Client(
        server,
        message_handler=message_handler,
        logging_callback=logging_callback,
        mode=args.mode,
        cache=None,
        read_timeout_seconds=args.timeout,
        client_info=types.Implementation(name="only1mcp-test-client", version="0"),
        **callbacks,
    )
    output: dict[str, Any] | None = None
    stage = "establish a session with"
    try:
        async with client:
            if args.mode in MODERN_PROTOCOL_VERSIONS and not args.no_discover:
                stage = f"run server/discover at {args.mode} against"
                with anyio.fail_after(args.timeout):
                    raw = await client.session.send_discover(args.mode)
                client.session.adopt(types.DiscoverResult.model_validate(raw))
            stage = "run the ops against"
            results: list[Any] = []
            for op in ops:
                try:
                    results.append(await run_op(client, op))
                except Exception as exc:  # noqa: BLE001 - recorded, then the next op runs
                    results.append(error_entry(exc))
            info = client.server_info
            output = {
                "protocol_version": client.protocol_version,
                "server_name": info.name if info is not None else None,
                "capabilities": dump(client.server_capabilities),
                "results": results,
                "received": RECEIVED,
            }
            stage = "shut down the session with"
    except Exception as exc:  # noqa: BLE001
        print(f"mcp_client.py: could not {stage} {args.command!r}:", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        if output is None:
            return 1
        # The results are complete; a failed teardown does not invalidate them.

    json.dump(output, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a JSON list of MCP operations (read from stdin) against a stdio server.",
        usage="%(prog)s [--mode MODE] [--timeout SECS] [--no-discover] (--url URL | --sse URL | -- COMMAND [ARGS...])",
    )
    parser.add_argument("--url", help="a Streamable HTTP server URL instead of a stdio command")
    parser.add_argument("--sse", help="a 2024-11-05 HTTP+SSE server URL (GET /sse) instead of a stdio command")
    parser.add_argument("--mode", choices=MODES, default="auto", help="SDK connect mode (default: auto)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds (default: 30)")
    parser.add_argument("--log-level", help="ask for log messages at this level (SDK `log_level`)")
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="declare sampling, elicitation and roots, and answer them (see the module doc)",
    )
    parser.add_argument(
        "--no-discover",
        action="store_true",
        help="with a modern --mode, do not send server/discover (the SDK adopts the version locally)",
    )
    if "--" not in argv:
        args = parser.parse_args(argv)
        if not (args.url or args.sse):
            parser.error("missing `--url URL`, `--sse URL` or `-- COMMAND [ARGS...]`")
        args.command = [args.url or args.sse]
        return args
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    if not args.command:
        parser.error("missing COMMAND after `--`")
    return args


def read_ops() -> list[dict[str, Any]]:
    try:
        ops = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        print(f"mcp_client.py: stdin is not JSON: {exc}", file=sys.stderr)
        sys.exit(2)
    if not isinstance(ops, list) or not all(isinstance(op, dict) and "op" in op for op in ops):
        print('mcp_client.py: stdin must be a JSON array of {"op": ...} objects', file=sys.stderr)
        sys.exit(2)
    return ops


def main() -> int:
    args = parse_args(sys.argv[1:])
    ops = read_ops()
    return anyio.run(session, args, ops)


if __name__ == "__main__":
    sys.exit(main())
