// A deterministic OpenAI-compatible model server on 127.0.0.1, for the end-to-end tests: each
// `POST /v1/completions` is answered by `answer(prompt)` and each `POST /v1/chat/completions`
// (the code actions' `openai-chat` backend) by `chat(messages)`, both as Server-Sent Events
// streams (the shape vLLM and llama.cpp's server send), so what the editor shows is exact.

import * as http from "node:http";

/**
 * Starts the server on a free loopback port.
 * @param {{ answer: (prompt: unknown) => string[], chat?: (messages: any[]) => string[] }} options
 *   the pieces of text streamed for a completion prompt (none: an empty completion, as a model
 *   that has nothing to add), and for a chat's messages (`chat` unset: chat answers 404)
 * @returns {Promise<{ url: string, requests: { method: string, path: string, body: any }[], close: () => Promise<void> }>}
 *   `url` is the base URL as Tandem's `backend.url` takes it (ending in `/v1`); `requests`
 *   records every request received, in order.
 */
export async function startFakeModel({ answer, chat }) {
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
      if (req.method === "POST" && req.url === "/v1/chat/completions" && chat) {
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
        const chunk = (delta, finish_reason) =>
          `data: ${JSON.stringify({ object: "chat.completion.chunk", model: body?.model, choices: [{ index: 0, delta, finish_reason }] })}\n\n`;
        res.write(chunk({ role: "assistant" }, null));
        for (const content of chat(body?.messages ?? [])) res.write(chunk({ content }, null));
        res.write(chunk({}, "stop"));
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
