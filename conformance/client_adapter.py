"""Client-mode adapter: the MCP conformance suite's "client under test" is Only1MCP's backend leg.

The suite (`conformance client --command "<venv python> conformance/client_adapter.py"`) starts
a mock server for each scenario and runs this script with the mock's URL as the last argument,
plus `MCP_CONFORMANCE_SCENARIO`, `MCP_CONFORMANCE_PROTOCOL_VERSION` and (for some scenarios)
`MCP_CONFORMANCE_CONTEXT` in the environment.

What it does:

1. Waits for a slot (see `take_slot`), so that only a few scenarios run at a time.
2. Writes a temporary Only1MCP config whose only server is `backend: {url: <mock URL>,
   prefix: false}`: the gateway reaches the mock over Streamable HTTP and keeps its names.
3. Starts `only1mcp start --stdio --config <file>` and, as the end client in front of it, does
   what the scenario expects of a client (`client_scenarios.py`): list tools, call them, answer
   elicitations, drive input-required rounds, ... The client speaks the era the suite asks for:
   the Python SDK's (`mcp==2.3.0`) `mode="legacy"` for 2025-11-25, `mode="2026-07-28"` for the
   modern revision. The gateway picks the backend's era itself (`server/discover`, falling back
   to `initialize`). The suite judges what reaches its mock server, i.e. what the gateway sent.

   The `auth/*` scenarios use a minimal stdlib JSON-RPC client instead of the SDK (`LightClient`):
   the gateway meets the mock's 401 while it connects, before any client request, so all those
   scenarios need is the gateway started, its tools listed and each one called. This keeps 51
   SDK imports (0.7 s of CPU each) out of every run.

The gateway binary is `$ONLY1MCP_BIN`, else `$CARGO_TARGET_DIR/debug/only1mcp`, else
`<repo>/target/debug/only1mcp`. The gateway's log (stderr) goes to this script's stderr, which the
suite saves as `stderr.txt` next to the scenario's `checks.json`.

It is a plain client: it answers what the backend asks (elicitations are accepted with empty
content) and adds nothing of its own, so whatever the suite finds in the answers is the gateway's
work.

Exit status: 0 when the scenario's client actions all completed, 1 otherwise, after a line
`[adapter] FAILED ...` on stderr. The suite ignores the exit status (its verdict comes from the
checks); `cargo xtask conformance` reads that line from the saved `stderr.txt` and fails the run
unless the baseline's `client-adapter` lists expect it.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any

MODERN = "2026-07-28"
REPO = Path(__file__).resolve().parent.parent

# How long the light client waits for one answer from the gateway.
LIGHT_TIMEOUT_S = 20.0


def log(message: str) -> None:
    print(f"[adapter] {message}", file=sys.stderr, flush=True)


def take_slot() -> IO[str] | None:
    """Waits for one of N machine-wide slots: an exclusive `flock` on one of N files.

    The suite starts all of a requirement set's client scenarios at once. Forty SDK clients and
    gateways starting together on a 2-core machine starve each other, and the gateway's 5 s
    `server/discover` probe then times out. The slot is held until this process exits. N is
    `$ONLY1MCP_CONFORMANCE_JOBS`, else the CPU count; `0` turns the limit off. The lock files
    live in `$ONLY1MCP_CONFORMANCE_SLOTS`, else `<tmp>/only1mcp-conformance-slots`.
    """
    jobs = int(os.environ.get("ONLY1MCP_CONFORMANCE_JOBS") or os.cpu_count() or 2)
    if jobs <= 0:
        return None
    default = Path(tempfile.gettempdir()) / "only1mcp-conformance-slots"
    directory = Path(os.environ.get("ONLY1MCP_CONFORMANCE_SLOTS") or default)
    directory.mkdir(parents=True, exist_ok=True)
    handles = [open(directory / f"slot-{n}", "a") for n in range(jobs)]  # noqa: SIM115 - held until exit
    while True:
        for handle in handles:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for other in handles:
                if other is not handle:
                    other.close()
            return handle
        time.sleep(0.05)


def gateway_binary() -> Path:
    if explicit := os.environ.get("ONLY1MCP_BIN"):
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = (REPO / target) if target else REPO / "target"
    return base / "debug" / "only1mcp"


def write_config(directory: Path, url: str) -> Path:
    config = directory / "only1mcp.yaml"
    config.write_text(
        "# Written by conformance/client_adapter.py for one conformance client scenario.\n"
        "logging:\n"
        "  level: info\n"
        "servers:\n"
        "  backend:\n"
        f"    url: {json.dumps(url)}\n"  # a JSON string is a double-quoted YAML scalar
        "    prefix: false\n"
    )
    return config


class LightClient:
    """A minimal newline-delimited JSON-RPC client for the gateway's stdio face (stdlib only)."""

    def __init__(self, binary: Path, config: Path, version: str) -> None:
        self.version = version
        self.modern = version == MODERN
        self.next_id = 1
        self.process = subprocess.Popen(
            [str(binary), "start", "--stdio", "--config", str(config)],
            cwd=config.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the gateway's log goes to our stderr
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.fileno()
        self.selector.register(self.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def _meta(self) -> dict[str, Any]:
        return {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "only1mcp-conformance-adapter", "version": "1.0.0"},
        }

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def _read_line(self, deadline: float) -> bytes:
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the gateway did not answer in time")
            if not self.selector.select(remaining):
                continue
            chunk = os.read(self.stdout, 65536)
            if not chunk:
                raise ConnectionError(f"the gateway closed its stdout (exit status {self.process.poll()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Sends a request and returns its result; raises on a JSON-RPC error. Messages from the
        gateway that are not the answer (notifications, requests) are logged and skipped."""
        request_id = self.next_id
        self.next_id += 1
        params = dict(params or {})
        if self.modern:
            params["_meta"] = {**self._meta(), **params.get("_meta", {})}
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + LIGHT_TIMEOUT_S
        while True:
            message = json.loads(self._read_line(deadline))
            if message.get("id") == request_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result") or {}
            log(f"(skipped while waiting for {method}: {json.dumps(message)[:200]})")

    def connect(self) -> None:
        if not self.modern:
            result = self.request(
                "initialize",
                {
                    "protocolVersion": self.version,
                    "capabilities": {},
                    "clientInfo": {"name": "only1mcp-conformance-adapter", "version": "1.0.0"},
                },
            )
            log(f"initialized ({result.get('protocolVersion')})")
            self.notify("notifications/initialized")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_light(binary: Path, config: Path, version: str) -> None:
    """The `auth/*` scenarios: what the reference client does (connect, list the tools, call
    each; it calls `test-tool`), over a bare JSON-RPC client."""
    client = LightClient(binary, config, version)
    try:
        client.connect()
        tools = client.request("tools/list").get("tools") or []
        names = [tool.get("name") for tool in tools]
        log(f"tools/list -> {names}")
        if not names:
            raise RuntimeError("the gateway lists no tools")
        for name in names:
            result = client.request("tools/call", {"name": name, "arguments": {}})
            log(f"tools/call {name} -> isError={result.get('isError', False)}")
    finally:
        client.close()


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: client_adapter.py <server-url>", file=sys.stderr)
        return 2
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "2025-11-25")
    waited = time.monotonic()
    slot = take_slot()
    waited = time.monotonic() - waited
    started = time.monotonic()
    try:
        binary = gateway_binary()
        if not binary.exists():
            raise RuntimeError(f"{binary} does not exist; build it with `cargo build -p only1mcp-cli`")
        light = scenario.startswith("auth/")
        log(
            f"scenario {scenario} at {version}: gateway {binary}, backend {url}; "
            f"{'light client' if light else 'Python SDK client'}; waited {waited:.1f}s for a slot"
        )
        with tempfile.TemporaryDirectory(prefix="only1mcp-conformance-") as tmp:
            config = write_config(Path(tmp), url)
            if light:
                run_light(binary, config, version)
            else:
                sys.path.insert(0, str(Path(__file__).resolve().parent))
                import anyio
                import client_scenarios

                anyio.run(client_scenarios.run, binary, config, scenario, version)
    except BaseException as exc:  # noqa: BLE001 - report everything, including exception groups
        if isinstance(exc, KeyboardInterrupt):
            raise
        log(f"FAILED after {time.monotonic() - started:.2f}s: {exc!r}")
        traceback.print_exc(file=sys.stderr)
        return 1
    finally:
        if slot is not None:
            slot.close()
    log(f"done in {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
