// Connects to Only1MCP's WebSocket face with the official TypeScript SDK
// (v1, the one that ships WebSocketClientTransport), lists the tools, calls
// one, and prints the results as JSON. Usage: node ws_client.mjs WS_URL TOOL ARGS_JSON
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { WebSocketClientTransport } = require("@modelcontextprotocol/sdk/client/websocket.js");

const [url, tool, args] = process.argv.slice(2);
const client = new Client({ name: "only1mcp-ws-test", version: "0" });
await client.connect(new WebSocketClientTransport(new URL(url)));
const tools = await client.listTools();
const result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
console.log(JSON.stringify({
  protocolVersion: client.getServerVersion() ? "connected" : null,
  server: client.getServerVersion(),
  tools: tools.tools.map((t) => t.name),
  result,
}));
await client.close();
