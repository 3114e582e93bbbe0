import { strict as assert } from "node:assert";
import { test } from "node:test";
import { isServerStatus, statusView, toggledEnabled } from "../src/status";

test("ready shows the backend and model in the tooltip", () => {
  const v = statusView({ state: "ready", backend: "openai", model: "starcoder2-3b" });
  assert.equal(v.text, "$(sparkle) Tandem");
  assert.match(v.tooltip, /Backend: openai \(starcoder2-3b\)/);
  assert.match(v.tooltip, /Click to disable/);
  assert.equal(v.severity, "normal");
});

test("busy is 'thinking'", () => {
  assert.equal(statusView({ state: "busy", backend: "embedded" }).text, "$(loading~spin) Tandem: thinking");
});

test("down is 'backend down' with the server's message as tooltip", () => {
  const message = "backend `ollama` at http://127.0.0.1:11434 could not be reached";
  const v = statusView({ state: "down", backend: "ollama", message });
  assert.equal(v.text, "$(warning) Tandem: backend down");
  assert.ok(v.tooltip.startsWith(message));
  assert.equal(v.severity, "warning");
});

test("disabled offers to enable", () => {
  const v = statusView({ state: "disabled", backend: "embedded" });
  assert.equal(v.text, "$(circle-slash) Tandem: off");
  assert.match(v.tooltip, /Click to enable/);
});

test("unknown states and client states have labels", () => {
  assert.equal(statusView({ state: "warming" }).text, "Tandem: warming");
  assert.match(statusView("notFound").tooltip, /cargo install --path crates\/tandem/);
  assert.equal(statusView("stopped").severity, "error");
  assert.match(statusView("starting").text, /Tandem/);
});

test("isServerStatus accepts only objects with a string state", () => {
  assert.ok(isServerStatus({ state: "ready" }));
  assert.ok(!isServerStatus(null));
  assert.ok(!isServerStatus({ state: 1 }));
  assert.ok(!isServerStatus("ready"));
});

test("toggle follows the server's state, else the setting", () => {
  assert.equal(toggledEnabled({ state: "disabled" }, true), true);
  assert.equal(toggledEnabled({ state: "ready" }, true), false);
  assert.equal(toggledEnabled({ state: "down" }, false), false);
  assert.equal(toggledEnabled(undefined, true), false);
  assert.equal(toggledEnabled(undefined, false), true);
});
