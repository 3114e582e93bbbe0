import { strict as assert } from "node:assert";
import { test } from "node:test";
import { serverLogLine } from "../src/serverLog";

test("tracing lines keep their level, without the server's timestamp", () => {
  assert.deepEqual(
    serverLogLine("2026-11-24T00:36:19.529650Z  INFO tandem_server::handlers::initialize: initialized encoding=Utf16"),
    { level: "info", text: "tandem_server::handlers::initialize: initialized encoding=Utf16" },
  );
  assert.equal(serverLogLine("2026-11-24T00:36:19.566973Z  WARN tandem_server::handlers::did_close: closed").level, "warn");
  assert.equal(serverLogLine("2026-11-24T00:36:19.566973Z DEBUG hyper_util::client: connecting").level, "debug");
  assert.equal(serverLogLine("2026-11-24T00:36:19.566973Z ERROR tandem_models: refused").level, "error");
  assert.equal(serverLogLine("2026-11-24T00:36:19.566973Z TRACE tandem_core: x").level, "trace");
});

test("colours are removed", () => {
  const coloured =
    "\x1b[2m2026-11-24T00:25:01.218317Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mtandem_workspace\x1b[0m\x1b[2m:\x1b[0m workspace scanned";
  assert.deepEqual(serverLogLine(coloured), { level: "info", text: "tandem_workspace: workspace scanned" });
});

test("anything else, such as a panic, is an error", () => {
  assert.deepEqual(serverLogLine("thread 'main' panicked at src/main.rs:1:1:"), {
    level: "error",
    text: "thread 'main' panicked at src/main.rs:1:1:",
  });
  assert.equal(serverLogLine("INFO without a timestamp").level, "error");
});
