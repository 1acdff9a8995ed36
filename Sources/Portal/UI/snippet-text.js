// The snippets' code: a client of one endpoint in JavaScript, Swift or
// Python (the SDKs'), with its literals escaped for each language.

// Literals for each language: JSON's string escapes are valid JavaScript and Python.
const jsString = (s) => JSON.stringify(s);
const pyString = (s) => JSON.stringify(s);
function swiftString(s) {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === "\\" || ch === "\"") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `"${out}"`;
}

/** Text for a line comment: a line break in an API's version must not end the comment. */
const oneLine = (text) => String(text).replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " ");

function header(comment, { api, endpoint }) {
  return [`${comment} Streamgate API "${oneLine(api.name)}" ${oneLine(api.version)}, `
    + `endpoint ${oneLine(endpoint.path)} (${endpoint.actions.join(", ")}).`];
}

export const SNIPPETS = {
  js(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    const file = `${c.api.name}.mjs`;
    return [
      ...header("//", c),
      `// Save as ${file}, next to the SDK:  curl -O ${c.origin}/sdk/streamgate.js`,
      `// Run:  node --experimental-websocket ${file}   (Node 20; Node 22+ needs no flag)`,
      `import { StreamgateClient } from "./streamgate.js";`,
      "",
      "const client = new StreamgateClient({",
      `  urls: [${c.urls.map(jsString).join(", ")}],`,
      `  token: ${jsString(c.token)},`,
      "});",
      "client.on(\"state\", (state) => console.error(`[${state}] ${client.node}`));",
      "client.on(\"disconnected\", (e) => console.error(`disconnected: ${e.code} ${e.reason}`));",
      "client.on(\"error\", (error) => console.error(`error ${error.code}: ${error.message}`));",
      "",
      `const endpoint = ${jsString(c.target)}; // ${oneLine(c.endpoint.path)}`,
      ...(sub ? [
        "const subscription = client.subscribe(endpoint);",
        "subscription.on(\"ended\", (reason) => console.error(`ended (${reason.code}) ${reason.message ?? \"\"}`));",
      ] : []),
      "await client.connect();",
      ...(pub ? [
        "",
        "try {",
        `  const published = await client.publish(endpoint, ${jsString("hello from JavaScript")});`,
        "  console.log(`published: partition ${published.partition}, offset ${published.offset}`);",
        "} catch (error) {",
        "  console.error(`publish refused: ${error.code}: ${error.message}`);",
        "}",
      ] : []),
      ...(sub ? [
        "",
        "for await (const message of subscription) {",
        "  console.log(message.seq, message.text());",
        "}",
      ] : []),
      "client.close();",
      "",
    ].join("\n");
  },

  swift(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    return [
      ...header("//", c),
      "// An executable package using the SDK (Package.swift):",
      "//   platforms: [.macOS(.v15)],",
      "//   dependencies: [.package(url: \"https://github.com/<you>/streamgate\", from: \"...\")],",
      "//   target dependencies: [.product(name: \"StreamgateClient\", package: \"streamgate\")]",
      "// Save as Sources/<target>/main.swift; run: swift run",
      "import StreamgateClient",
      "",
      `let endpoint = ${swiftString(c.target)}  // ${oneLine(c.endpoint.path)}`,
      "let client = try StreamgateClient(configuration: .init(",
      `    urls: [${c.urls.map(swiftString).join(", ")}],`,
      `    token: .fixed(${swiftString(c.token)})))`,
      "",
      "try await withThrowingDiscardingTaskGroup { group in",
      "    group.addTask { try await client.run() }",
      "    group.addTask {",
      "        for await event in client.events {",
      "            if case .disconnected(let url, let code, let reason) = event {",
      "                print(\"disconnected from \\(url): \\(code.map { String($0) } ?? \"-\") \\(reason)\")",
      "            }",
      "        }",
      "    }",
      ...(sub ? ["    let subscription = client.subscribe(endpoint)"] : []),
      ...(pub ? [
        "    do {",
        `        let published = try await client.publish(endpoint, text: ${swiftString("hello from Swift")})`,
        "        print(\"published: partition \\(published.partition), offset \\(published.offset)\")",
        "    } catch {",
        "        print(\"publish refused: \\(error)\")",
        "    }",
      ] : []),
      ...(sub ? [
        "    for try await message in subscription {",
        "        print(message.seq, message.text ?? \"<\\(message.payload.count) bytes>\")",
        "    }",
      ] : []),
      "    await client.close()",
      "}",
      "",
    ].join("\n");
  },

  python(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    const file = `${c.api.name.replace(/-/g, "_")}.py`;
    return [
      ...header("#", c),
      "# Needs the Python SDK (it brings websockets): pip install ./sdk/python  (from a Streamgate checkout)",
      `# Run:  python ${file}`,
      "import asyncio",
      "",
      pub ? "from streamgate import Client, StreamgateError" : "from streamgate import Client",
      "",
      `URLS = [${c.urls.map(pyString).join(", ")}]`,
      `TOKEN = ${pyString(c.token)}`,
      `ENDPOINT = ${pyString(c.target)}  # ${oneLine(c.endpoint.path)}`,
      "",
      "",
      "async def main() -> None:",
      "    client = Client(URLS, token=TOKEN)",
      "    client.on(\"state\", lambda state: print(f\"[{state}] {client.node}\"))",
      "    client.on(\"disconnected\", lambda e: print(f\"disconnected: {e['code']} {e['reason']}\"))",
      "    await client.connect()",
      "    try:",
      ...(sub ? ["        subscription = client.subscribe(ENDPOINT)"] : []),
      ...(pub ? [
        "        try:",
        `            published = await client.publish(ENDPOINT, ${pyString("hello from Python")})`,
        "            print(f\"published: partition {published.partition}, offset {published.offset}\")",
        "        except StreamgateError as error:",
        "            print(f\"publish refused: {error}\")",
      ] : []),
      ...(sub ? [
        "        async for message in subscription:",
        "            print(message.seq, message.text())",
      ] : []),
      "    finally:",
      "        await client.close()",
      "",
      "",
      "asyncio.run(main())",
      "",
    ].join("\n");
  },
};
