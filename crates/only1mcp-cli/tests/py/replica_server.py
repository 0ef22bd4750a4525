"""A stdio MCP backend run as several replicas of one server, for the
balancing tests (tests/it/replicas.rs). Legacy era only, no SDK: one
JSON-RPC message per line, each request answered from its own thread.

- whoami {key?}: read-only (annotations say so); answers its process id.
- record {n}: not marked safe to repeat; appends `n` and its pid to the
  file given with `--calls FILE`, then answers its process id. A call sent
  twice shows up twice in that file.
- slow {ms}: read-only; waits `ms` milliseconds, then answers its process id.
- logging/setLevel: appends `setLevel <level> <pid>` to the `--calls` file.

With `--only-one FILE`, the replica that creates FILE first (O_EXCL) also
lists a tool `only_here`, so the replicas' tool lists differ.
"""

import json
import os
import sys
import threading
import time

LOCK = threading.Lock()
CALLS = None
ONLY_HERE = False


def send(message):
    data = json.dumps(message).encode() + b"\n"
    with LOCK:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def text_result(text):
    return {"content": [{"type": "text", "text": text}]}


def tools():
    read_only = {"readOnlyHint": True}
    listed = [
        {"name": "whoami", "inputSchema": {"type": "object"}, "annotations": read_only},
        {"name": "record", "inputSchema": {"type": "object"}},
        {"name": "slow", "inputSchema": {"type": "object"}, "annotations": read_only},
    ]
    if ONLY_HERE:
        listed.append({"name": "only_here", "inputSchema": {"type": "object"}})
    return listed


def call(req_id, name, args):
    pid = str(os.getpid())
    if name == "whoami" or name == "only_here":
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(pid)})
    elif name == "record":
        with LOCK:
            with open(CALLS, "a") as f:
                f.write(f"{args.get('n')} {pid}\n")
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(pid)})
    elif name == "slow":
        time.sleep(int(args.get("ms", 0)) / 1000)
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(pid)})
    else:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32602, "message": f"Unknown tool: {name}"}})


def handle(message):
    method = message.get("method")
    req_id = message.get("id")
    if req_id is None:
        return
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": req_id, "result": {
            "protocolVersion": message.get("params", {}).get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}, "logging": {}},
            "serverInfo": {"name": "replica", "version": "1.0.0"},
        }})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": req_id, "result": {"tools": tools()}})
    elif method == "tools/call":
        params = message.get("params", {})
        threading.Thread(
            target=call, args=(req_id, params.get("name"), params.get("arguments") or {}), daemon=True
        ).start()
    elif method == "logging/setLevel":
        if CALLS:
            with LOCK:
                with open(CALLS, "a") as f:
                    f.write(f"setLevel {message.get('params', {}).get('level')} {os.getpid()}\n")
        send({"jsonrpc": "2.0", "id": req_id, "result": {}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": req_id, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": f"Method not found: {method}"}})


def main():
    global CALLS, ONLY_HERE
    if "--calls" in sys.argv:
        CALLS = sys.argv[sys.argv.index("--calls") + 1]
    if "--only-one" in sys.argv:
        try:
            os.close(os.open(sys.argv[sys.argv.index("--only-one") + 1], os.O_CREAT | os.O_EXCL))
            ONLY_HERE = True
        except FileExistsError:
            pass
    for line in sys.stdin.buffer:
        if line.strip():
            handle(json.loads(line))


if __name__ == "__main__":
    main()
