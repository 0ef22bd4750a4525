#!/usr/bin/env python3
"""Capture the tool catalogs of six real MCP servers into docs/corpus/<id>.json.

Usage: capture.py PEERS_DIR [OUT_DIR]

PEERS_DIR is the directory `cargo xtask peers` installs into (`<workspace>/peers`): the npm
servers in `node/node_modules`, the PyPI servers in `venv/bin`. OUT_DIR defaults to the
directory of this script. `cargo xtask corpus` runs this with the peers venv's python.
Progress goes to stderr; stdout gets one line per server written, tab-separated: id, number
of tools, package, version.

Each server is started over stdio, sent `initialize` (protocol 2025-11-25, no client
capabilities), `notifications/initialized`, then `tools/list` until `nextCursor` runs out.
The tools are written exactly as received (key order kept). The output has no timestamps and
no temporary paths, so two runs against the same installed versions are byte-identical; a
catalog that mentions one of the temporary paths is refused.

Standard library only: the script must run before anything else is installed.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "only1mcp-corpus", "version": "0"}

# Every wait on a server is bounded: start-up plus one answer, then each later answer.
FIRST_ANSWER_TIMEOUT = 60.0
ANSWER_TIMEOUT = 30.0
EXIT_TIMEOUT = 2.0
# A runaway cursor loop is an error, not an endless capture.
MAX_PAGES = 100


@dataclass
class Server:
    """One server of the corpus and how to start it."""

    id: str
    registry: str  # "npm" or "pypi"
    package: str
    # Command relative to the peers directory; "{root}" and "{tmp}" are filled in at start.
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


SERVERS = [
    Server(
        "everything",
        "npm",
        "@modelcontextprotocol/server-everything",
        ["node/node_modules/.bin/mcp-server-everything", "stdio"],
    ),
    Server(
        "filesystem",
        "npm",
        "@modelcontextprotocol/server-filesystem",
        ["node/node_modules/.bin/mcp-server-filesystem", "{root}"],
    ),
    Server(
        "memory",
        "npm",
        "@modelcontextprotocol/server-memory",
        ["node/node_modules/.bin/mcp-server-memory"],
        env={"MEMORY_FILE_PATH": "{tmp}/memory.jsonl"},
    ),
    Server("git", "pypi", "mcp-server-git", ["venv/bin/mcp-server-git"]),
    # The time server names the local timezone in its argument descriptions: pin it.
    Server(
        "time",
        "pypi",
        "mcp-server-time",
        ["venv/bin/mcp-server-time", "--local-timezone", "UTC"],
    ),
    Server("fetch", "pypi", "mcp-server-fetch", ["venv/bin/mcp-server-fetch"]),
]

# Only these variables reach the servers (plus each server's own), so the catalogs do not
# depend on whoever runs the capture.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")


class CaptureError(Exception):
    pass


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    peers = Path(argv[1]).resolve()
    out_dir = Path(argv[2]).resolve() if len(argv) == 3 else Path(__file__).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)

    failed = []
    for server in SERVERS:
        try:
            doc = capture(peers, server)
        except CaptureError as err:
            print(f"capture: {server.id}: {err}", file=sys.stderr)
            failed.append(server.id)
            continue
        path = out_dir / f"{server.id}.json"
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        print(f"capture: {server.id}: {len(doc['tools'])} tools -> {path}", file=sys.stderr)
        # The summary `cargo xtask corpus` prints: id, tool count, package, version.
        print(f"{server.id}\t{len(doc['tools'])}\t{server.package}\t{doc['version']}")
    if failed:
        print(f"capture: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def capture(peers: Path, server: Server) -> dict:
    version = installed_version(peers, server)
    with tempfile.TemporaryDirectory(prefix=f"only1mcp-corpus-{server.id}-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        # Real paths: a server that resolves its arguments would print these, not the links.
        fill = {"{root}": str(root.resolve()), "{tmp}": str(Path(tmp).resolve())}
        command = [expand(arg, fill) for arg in server.command]
        command[0] = str(peers / command[0])
        env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        env.update({name: expand(value, fill) for name, value in server.env.items()})

        with Session(command, env, cwd=tmp) as session:
            init = session.request(
                "initialize",
                {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": CLIENT_INFO,
                },
                FIRST_ANSWER_TIMEOUT,
            )
            session.notify("notifications/initialized")
            tools = []
            cursor = None
            for _ in range(MAX_PAGES):
                params = {} if cursor is None else {"cursor": cursor}
                page = session.request("tools/list", params, ANSWER_TIMEOUT)
                tools.extend(page.get("tools", []))
                cursor = page.get("nextCursor")
                if cursor is None:
                    break
            else:
                raise CaptureError(f"tools/list still had a nextCursor after {MAX_PAGES} pages")

        doc = {
            "server": server.id,
            "package": server.package,
            "version": version,
            "registry": server.registry,
            "protocolVersion": init.get("protocolVersion"),
            "serverInfo": init.get("serverInfo"),
            "tools": tools,
        }
        # Determinism: nothing of this run's temporary directory may end up in the file.
        text = json.dumps(doc, ensure_ascii=False)
        for needle in {tmp, str(Path(tmp).resolve()), Path(tmp).name}:
            if needle in text:
                raise CaptureError(f"the catalog mentions the temporary path {needle!r}")
        return doc


def expand(text: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def installed_version(peers: Path, server: Server) -> str:
    if server.registry == "npm":
        manifest = peers / "node/node_modules" / server.package / "package.json"
        try:
            return json.loads(manifest.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError) as err:
            raise CaptureError(f"cannot read the version from {manifest}: {err}") from err
    python = peers / "venv/bin/python"
    script = "import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))"
    try:
        res = subprocess.run(
            [str(python), "-c", script, server.package],
            capture_output=True,
            text=True,
            timeout=ANSWER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CaptureError(f"cannot ask {python} for the version: {err}") from err
    if res.returncode != 0:
        raise CaptureError(f"{server.package} is not installed in {python}: {res.stderr.strip()}")
    return res.stdout.strip()


class Session:
    """A stdio MCP server as a child process, spoken to one JSON-RPC line at a time."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: str):
        self.command = command
        try:
            self.child = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
            )
        except OSError as err:
            raise CaptureError(f"cannot start {command[0]}: {err}") from err
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr: list[bytes] = []
        self.next_id = 1
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.stderr_reader.start()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.child.stdin.close()
        except OSError:
            pass
        try:
            self.child.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait(EXIT_TIMEOUT)

    def _read_stdout(self) -> None:
        for line in self.child.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        for line in self.child.stderr:
            self.stderr.append(line)

    def _send(self, message: dict) -> None:
        try:
            self.child.stdin.write(json.dumps(message).encode() + b"\n")
            self.child.stdin.flush()
        except OSError as err:
            raise self._failure(f"cannot write to the server: {err}") from err

    def notify(self, method: str) -> None:
        self._send({"jsonrpc": "2.0", "method": method})

    def request(self, method: str, params: dict, timeout: float) -> dict:
        """Sends a request and returns its result; skips logs, notifications and other ids."""
        request_id = self.next_id
        self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.0))
            except queue.Empty:
                raise self._failure(f"no answer to {method} within {timeout:.0f}s") from None
            if line is None:
                raise self._failure(f"the server closed stdout before answering {method}")
            try:
                message = json.loads(line, object_pairs_hook=dict)
            except ValueError:
                continue  # a log line on stdout
            if not isinstance(message, dict):
                continue
            if "method" in message:
                if "id" in message:
                    self._answer_server_request(message)
                continue  # a notification
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise self._failure(f"{method} failed: {json.dumps(message['error'])}")
            result = message.get("result")
            if not isinstance(result, dict):
                raise self._failure(f"{method} answered without a result object: {line!r}")
            return result

    def _answer_server_request(self, message: dict) -> None:
        # No client capabilities were offered, so only ping deserves a real answer.
        if message["method"] == "ping":
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        else:
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32601, "message": "Method not found"},
                }
            )

    def _failure(self, why: str) -> CaptureError:
        if self.child.poll() is None:
            self.child.kill()
        try:
            self.child.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self.stderr_reader.join(EXIT_TIMEOUT)
        stderr = b"".join(self.stderr).decode(errors="replace").strip()
        return CaptureError(f"{' '.join(self.command)}: {why}\n--- its stderr ---\n{stderr}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
