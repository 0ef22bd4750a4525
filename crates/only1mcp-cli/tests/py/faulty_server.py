"""A misbehaving stdio MCP backend for the gateway's fault tests
(tests/it/backend_faults.rs). Legacy era only, no SDK: one JSON-RPC message
per line, answered in order. Each tool is one fault, done on demand:

- echo {text}: answers the text (the backend still works).
- pid {}: answers its process id.
- stderr_flood {lines, bytes}: writes `lines` stderr lines of `bytes` bytes
  each, then answers how much it wrote (it blocks, or dies of a broken pipe,
  if the gateway stops reading its stderr).
- stderr_bad_utf8 {}: writes a stderr line with bytes that are not UTF-8.
- hang {}: never answers.
- close_stdout {}: closes its stdout without answering and runs on (it keeps
  reading stdin, and stays alive after end of input).
- big_answer {mib, id_last}: answers with a line of `mib` MiB; the `id`
  member comes last when `id_last` (as the TypeScript SDK writes it).
- grandchild {hold_stdout}: starts a sleeping grandchild (inheriting this
  stdout if `hold_stdout`) and answers its process id.
- exit {code}: exits at once without answering.
- argv {env}: answers its arguments and the value of the variable `env`.

With `--linger FILE`, end of input and SIGTERM are recorded in FILE
(`eof <time>`, `term <time>`) and neither makes it exit: only SIGKILL does.
"""

import json
import os
import signal
import subprocess
import sys
import time

MIB = 1024 * 1024


def record(path, what):
    with open(path, "a") as f:
        f.write(f"{what} {time.monotonic():.3f}\n")


def write_out(data):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def send(message):
    write_out(json.dumps(message).encode() + b"\n")


def text_result(text):
    return {"content": [{"type": "text", "text": text}]}


TOOLS = [
    "echo", "pid", "stderr_flood", "stderr_bad_utf8", "hang", "close_stdout",
    "big_answer", "grandchild", "exit", "argv",
]


def big_answer(req_id, mib, id_last):
    head = b'{"jsonrpc":"2.0",'
    if not id_last:
        head += b'"id":' + json.dumps(req_id).encode() + b","
    head += b'"result":{"content":[{"type":"text","text":"'
    tail = b'"}]}'
    tail += (b',"id":' + json.dumps(req_id).encode()) if id_last else b""
    tail += b"}\n"
    chunk = b"x" * MIB
    sys.stdout.buffer.write(head)
    for _ in range(mib):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.write(tail)
    sys.stdout.buffer.flush()


def call(req_id, name, args):
    """Answers a tools/call; returns False if it must not be answered."""
    if name == "echo":
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(args.get("text", ""))})
    elif name == "pid":
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(str(os.getpid()))})
    elif name == "stderr_flood":
        lines, size = int(args["lines"]), int(args["bytes"])
        chunk = b"e" * min(size, MIB)
        for _ in range(lines):
            left = size
            while left > 0:
                n = min(left, len(chunk))
                sys.stderr.buffer.write(chunk[:n])
                left -= n
            sys.stderr.buffer.write(b"\n")
            sys.stderr.buffer.flush()
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(f"wrote {lines * (size + 1)} bytes")})
    elif name == "stderr_bad_utf8":
        sys.stderr.buffer.write(b"bad \xff\xfe bytes\n")
        sys.stderr.buffer.flush()
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result("written")})
    elif name == "hang":
        pass
    elif name == "close_stdout":
        sys.stdout.flush()
        os.close(1)
    elif name == "big_answer":
        big_answer(req_id, int(args["mib"]), bool(args.get("id_last")))
    elif name == "grandchild":
        out = None if args.get("hold_stdout") else subprocess.DEVNULL
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL,
        )
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(str(child.pid))})
    elif name == "exit":
        os._exit(int(args.get("code", 0)))
    elif name == "argv":
        answer = {"argv": sys.argv[1:], "env": os.environ.get(args.get("env", ""), "(unset)")}
        send({"jsonrpc": "2.0", "id": req_id, "result": text_result(json.dumps(answer))})
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
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "faulty", "version": "1.0.0"},
        }})
    elif method == "tools/list":
        tools = [{"name": t, "inputSchema": {"type": "object"}} for t in TOOLS]
        send({"jsonrpc": "2.0", "id": req_id, "result": {"tools": tools}})
    elif method == "tools/call":
        params = message.get("params", {})
        call(req_id, params.get("name"), params.get("arguments") or {})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": req_id, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": f"Method not found: {method}"}})


def main():
    linger = None
    if "--linger" in sys.argv:
        linger = sys.argv[sys.argv.index("--linger") + 1]
        signal.signal(signal.SIGTERM, lambda *_: record(linger, "term"))
    stdout_closed = False
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = json.loads(line)
        if stdout_closed:
            continue
        if message.get("method") == "tools/call" and message["params"].get("name") == "close_stdout":
            stdout_closed = True
        handle(message)
    if linger:
        record(linger, "eof")
    if linger or stdout_closed:
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
