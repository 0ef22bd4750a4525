"""A small dual-era MCP server for the transport tests, on the Python SDK (`mcp` 2.3.0).

Run as `python modern_server.py PORT [streamable-http|streamable-http-json|sse]`; it serves
http://127.0.0.1:PORT/mcp (streamable HTTP, both eras on one endpoint) or GET
/sse + POST /messages/ (the 2024-11-05 transport). `streamable-http-json` answers every POST
with JSON (never SSE) and closes a keep-alive connection after one idle second.

Tools:
- `echo(message)` -> "Echo: <message>";
- `slow(seconds)` sleeps; if the call is cancelled (HTTP stream closed, or
  `notifications/cancelled`), it counts the cancellation;
- `cancelled_count()` -> how many `slow` calls were cancelled so far;
- `progress(steps)` reports progress `steps` times, then answers "done".
"""

import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer

app = MCPServer("only1mcp-transport-fixture", version="1.0.0")
cancelled = 0


@app.tool()
def echo(message: str) -> str:
    """Echoes the message back."""
    return f"Echo: {message}"


@app.tool()
async def slow(seconds: float) -> str:
    """Sleeps for `seconds`; counts the call if it is cancelled."""
    global cancelled
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        cancelled += 1
        raise
    return "slept"


@app.tool()
def cancelled_count() -> int:
    """How many `slow` calls were cancelled."""
    return cancelled


@app.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Reports progress `steps` times."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
        await anyio.sleep(0.05)
    return "done"


def run_json_keep_alive(port: int) -> None:
    """Streamable HTTP answering JSON (no SSE), with uvicorn closing a keep-alive connection
    after one idle second instead of five."""
    import uvicorn

    starlette_app = app.streamable_http_app(json_response=True, host="127.0.0.1")
    uvicorn.Server(
        uvicorn.Config(starlette_app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=1)
    ).run()


if __name__ == "__main__":
    port = int(sys.argv[1])
    transport = sys.argv[2] if len(sys.argv) > 2 else "streamable-http"
    if transport == "streamable-http-json":
        run_json_keep_alive(port)
    else:
        app.run(transport, host="127.0.0.1", port=port)
