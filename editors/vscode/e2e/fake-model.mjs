// A deterministic OpenAI-compatible model server on 127.0.0.1, for the end-to-end test: each
// `POST /v1/completions` is answered by `answer(prompt)` as a Server-Sent Events stream (the
// shape vLLM and llama.cpp's server send), so the ghost text the editor shows is exact.

import * as http from "node:http";

/**
 * Starts the server on a free loopback port.
 * @param {{ answer: (prompt: unknown) => string[] }} options the pieces of text streamed for a
 *   prompt (none: an empty completion, as a model that has nothing to add)
 * @returns {Promise<{ url: string, requests: { method: string, path: string, body: any }[], close: () => Promise<void> }>}
 *   `url` is the base URL as Tandem's `backend.url` takes it (ending in `/v1`); `requests`
 *   records every request received, in order.
 */
export async function startFakeModel({ answer }) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      let body;
      try {
        body = raw === "" ? undefined : JSON.parse(raw);
      } catch {
        body = raw;
      }
      requests.push({ method: req.method ?? "", path: req.url ?? "", body });
      if (req.method === "GET" && req.url === "/v1/models") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ object: "list", data: [{ id: "fake-coder", object: "model" }] }));
        return;
      }
      if (req.method === "POST" && req.url === "/v1/completions") {
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
        for (const text of answer(body?.prompt)) {
          res.write(`data: ${JSON.stringify({ choices: [{ text, index: 0, finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ choices: [{ text: "", index: 0, finish_reason: "stop" }] })}\n\n`);
        res.end("data: [DONE]\n\n");
        return;
      }
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { message: `the fake model serves no ${req.method} ${req.url}` } }));
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
