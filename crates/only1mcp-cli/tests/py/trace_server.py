"""A stdio (or Streamable HTTP) MCP server on the official Python SDK that
records the trace context each tool call brought, for the gateway's traces
test (tests/it/traces.rs).

Its one tool, `whoami {text}`, appends one JSON line to the file named by
`TRACE_RECORD`: `{"text": ..., "meta": <the request's params._meta as the SDK
read it>, "headers": {"traceparent": ..., "tracestate": ...} (HTTP only)}`, and
answers the text.

    peers/venv/bin/python trace_server.py            # stdio
    peers/venv/bin/python trace_server.py --http 8123  # http://127.0.0.1:8123/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

app = MCPServer("trace-recorder")


def plain(meta: Any) -> Any:
    """The SDK's `_meta` object as JSON data."""
    if meta is None:
        return None
    if hasattr(meta, "model_dump"):
        return meta.model_dump(by_alias=True, exclude_none=True)
    return dict(meta)


@app.tool()
async def whoami(text: str, ctx: Context) -> str:
    """Records this call's `_meta` (and W3C headers on HTTP), answers `text`."""
    headers = ctx.headers or {}
    line = {
        "text": text,
        "meta": plain(ctx.request_context.meta),
        "headers": {k: headers.get(k) for k in ("traceparent", "tracestate") if headers.get(k)},
    }
    with open(os.environ["TRACE_RECORD"], "a") as f:
        f.write(json.dumps(line) + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT/mcp")
    args = parser.parse_args()
    if args.http is None:
        app.run()
        return
    print(f"trace_server: serving http://127.0.0.1:{args.http}/mcp", file=sys.stderr, flush=True)
    asyncio.run(app.run_streamable_http_async(host="127.0.0.1", port=args.http))


if __name__ == "__main__":
    main()
