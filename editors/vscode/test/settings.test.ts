import { strict as assert } from "node:assert";
import { test } from "node:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  didChangeConfigurationParams,
  enabledTarget,
  explicitValue,
  Inspected,
  serverSettingKeys,
  serverSettings,
  setKeys,
  unsetSinceStart,
} from "../src/settings";

// out/test/settings.test.js → the extension's package.json
const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));

test("server keys come from the generated categories, without extension-only keys", () => {
  const keys = serverSettingKeys(pkg);
  const names = keys.map((k) => k.key);
  assert.ok(names.includes("backend.kind"));
  assert.ok(names.includes("completion.debounceMs"));
  assert.ok(names.includes("trustWorkspaceConfig"));
  assert.ok(!names.includes("serverPath"));
  assert.ok(!names.includes("trace.server"));
  assert.equal(keys.find((k) => k.key === "backend.url")?.machine, true);
  assert.equal(keys.find((k) => k.key === "completion.debounceMs")?.machine, false);
});

test("only values the user set are sent, nested under their sections", () => {
  const keys = serverSettingKeys(pkg);
  const values: Record<string, Inspected> = {
    "backend.kind": { globalValue: "openai" },
    "backend.model": { globalValue: "starcoder2-3b" },
    "backend.headers": { globalValue: { "X-A": "1" } },
    "completion.debounceMs": { globalValue: 50, workspaceValue: 120 },
    "completion.languages": { workspaceFolderValue: { markdown: false } },
    "completion.enabled": {},
    "trustWorkspaceConfig": { globalValue: true },
  };
  const s = serverSettings(keys, (k) => values[k]);
  assert.deepEqual(s, {
    backend: { kind: "openai", model: "starcoder2-3b", headers: { "X-A": "1" } },
    completion: { debounceMs: 120, languages: { markdown: false } },
    trustWorkspaceConfig: true,
  });
  assert.deepEqual(serverSettings(keys, () => undefined), {});
  assert.deepEqual(didChangeConfigurationParams(s), { settings: { tandem: s } });
});

test("machine-scoped keys ignore workspace values", () => {
  assert.equal(explicitValue({ workspaceValue: "http://evil/v1" }, true), undefined);
  assert.equal(explicitValue({ globalValue: "http://me/v1", workspaceValue: "http://evil/v1" }, true), "http://me/v1");
  assert.equal(explicitValue({ globalValue: 1, workspaceValue: 2 }, false), 2);
  const keys = [{ key: "backend.url", machine: true }];
  assert.deepEqual(serverSettings(keys, () => ({ workspaceValue: "http://evil/v1" })), {});
});

test("explicit null is sent (null means 'not set here' to the server)", () => {
  const s = serverSettings([{ key: "backend.fallback", machine: true }], () => ({ globalValue: null }));
  assert.deepEqual(s, { backend: { fallback: null } });
});

test("unsetting a key sent at start is detected", () => {
  const keys = [
    { key: "backend.model", machine: false },
    { key: "completion.debounceMs", machine: false },
  ];
  const start = setKeys(keys, (k) => (k === "backend.model" ? { globalValue: "m" } : undefined));
  assert.deepEqual(start, ["backend.model"]);
  assert.deepEqual(unsetSinceStart(start, setKeys(keys, () => undefined)), ["backend.model"]);
  assert.deepEqual(unsetSinceStart(start, ["backend.model", "completion.debounceMs"]), []);
});

test("the toggle writes where the effective value comes from", () => {
  assert.equal(enabledTarget(undefined), "global");
  assert.equal(enabledTarget({ globalValue: false }), "global");
  assert.equal(enabledTarget({ workspaceValue: false }), "workspace");
  assert.equal(enabledTarget({ workspaceValue: true, workspaceFolderValue: false }), "workspaceFolder");
});
